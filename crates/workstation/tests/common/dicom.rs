//! DICOM helpers for the networking tests: dcmtk runs, data-set bytes of Part 10 files, UIDs.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs a peer tool; its failure (or absence) fails the test with the tool's words.
pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (dcmtk: scripts/install-peers.sh)"));
    assert!(out.status.success(), "{cmd:?}: {}", super::text(&out.stderr));
}

/// A Part 10 file's data set bytes (after its meta group) and its transfer syntax.
pub fn data_set(path: &Path) -> (String, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[128..132], b"DICM", "{}", path.display());
    // (0002,0000) UL, explicit VR: tag 4, VR 2, length 2, value 4.
    assert_eq!(&bytes[132..138], &[2, 0, 0, 0, b'U', b'L'], "{}: meta group length first", path.display());
    let group = u32::from_le_bytes(bytes[140..144].try_into().unwrap()) as usize;
    let start = 144 + group;
    let meta = &bytes[144..start];
    let at = meta.windows(4).position(|w| w == [2, 0, 0x10, 0]).expect("transfer syntax element");
    let len = u16::from_le_bytes([meta[at + 6], meta[at + 7]]) as usize;
    let ts = String::from_utf8_lossy(&meta[at + 8..at + 8 + len]).trim_end_matches(['\0', ' ']).to_owned();
    let mut data = bytes[start..].to_vec();
    if ts == "1.2.840.10008.1.2.1.99" {
        // Deflate streams may differ in their compressed bytes: compare what they inflate to.
        let mut inflated = Vec::new();
        flate2_inflate(&data, &mut inflated);
        data = inflated;
    }
    (ts, data)
}

/// Raw deflate (PS3.5 A.5) through Python's zlib, to keep flate2 out of this crate's tests.
fn flate2_inflate(data: &[u8], out: &mut Vec<u8>) {
    let mut child = Command::new("python3")
        .args(["-c", "import sys,zlib; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read(), -15))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    child.stdout.take().unwrap().read_to_end(out).unwrap();
    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success());
}

/// A file's SOP Instance UID, read by dcmtk's `dcmdump`.
pub fn sop_instance_uid(path: &Path) -> String {
    let out = Command::new("dcmdump").args(["+P", "0008,0018", "-s"]).arg(path).output().unwrap();
    let text = super::text(&out.stdout);
    text.split('[').nth(1).and_then(|s| s.split(']').next()).unwrap_or_else(|| panic!("no UID in {text}")).to_owned()
}
