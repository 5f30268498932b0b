//! `csnav listen`, the storage SCP, against real peers: dcmtk's `storescu` sends 20 runs in
//! five transfer syntaxes concurrently (all stored, data sets byte-identical, none lost);
//! `echoscu` from an AE off the allow-list is rejected; a peer that vanishes mid-transfer leaves
//! no file; malformed PDUs are refused and the SCP carries on. dcmtk comes from
//! scripts/install-peers.sh (run by scripts/test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failure is a failed test")]

mod common;

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `csnav listen` and what it has printed.
struct Listener {
    child: Child,
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    store: tempfile::TempDir,
}

impl Listener {
    fn start(allow: &[&str]) -> Self {
        Self::start_with(allow, &[])
    }

    fn start_with(allow: &[&str], extra: &[&str]) -> Self {
        let store = tempfile::tempdir().unwrap();
        let mut cmd = common::csnav_command();
        cmd.args(["listen", "--ae", "CSNAV", "--port", "0", "--bind", "127.0.0.1", "--idle-timeout-s", "5", "--store"])
            .arg(store.path());
        for a in allow {
            cmd.args(["--allow", a]);
        }
        cmd.args(extra);
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let port: u16 = first
            .split_whitespace()
            .nth(2)
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {first:?}"));
        let lines = Arc::new(Mutex::new(vec![first]));
        for stream in [Box::new(out) as Box<dyn BufRead + Send>, Box::new(BufReader::new(child.stderr.take().unwrap()))]
        {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in stream.lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Self { child, port, lines, store }
    }

    fn lines_with(&self, needle: &str) -> Vec<String> {
        self.lines.lock().unwrap().iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// Waits up to `timeout` for `n` lines containing `needle`.
    fn wait_for(&self, needle: &str, n: usize, timeout: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let found = self.lines_with(needle);
            if found.len() >= n || start.elapsed() > timeout {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn echo(&self, calling: &str) -> std::process::Output {
        Command::new("echoscu")
            .args(["-aet", calling, "-aec", "CSNAV", "127.0.0.1", &self.port.to_string()])
            .output()
            .expect("echoscu (dcmtk; scripts/install-peers.sh installs it)")
    }

    fn stored_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.store.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
            .collect();
        v.sort();
        v
    }

    fn part_files(&self) -> usize {
        std::fs::read_dir(self.store.path().join(".incoming")).map_or(0, |d| d.flatten().count())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 20 runs from the bundled case, each with its own SOP instance UID, in five transfer
/// syntaxes; with the `storescu` option that proposes each's syntax.
fn twenty_runs(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let case = PathBuf::from(common::case());
    let syntaxes: [(&str, &str); 5] =
        [("jpeg-lossless", "-xs"), ("explicit", "-xe"), ("implicit", "-xi"), ("rle", "-xr"), ("deflated", "-xd")];
    let mut runs = Vec::new();
    for k in 0..20 {
        let source = case.join(if k % 2 == 0 { "lao30.dcm" } else { "rao30.dcm" });
        let (name, propose) = syntaxes[k % 5];
        let path = dir.join(format!("run{k:02}-{name}.dcm"));
        let decompressed = dir.join(format!("run{k:02}-raw.dcm"));
        common::dicom::run(Command::new("dcmdjpeg").arg(&source).arg(&decompressed));
        match name {
            "jpeg-lossless" => common::dicom::run(Command::new("cp").arg(&source).arg(&path)),
            "explicit" => common::dicom::run(Command::new("dcmconv").arg("+te").arg(&decompressed).arg(&path)),
            "implicit" => common::dicom::run(Command::new("dcmconv").arg("+ti").arg(&decompressed).arg(&path)),
            "rle" => common::dicom::run(Command::new("dcmcrle").arg(&decompressed).arg(&path)),
            _ => common::dicom::run(Command::new("dcmconv").arg("+td").arg(&decompressed).arg(&path)),
        }
        std::fs::remove_file(&decompressed).unwrap();
        // A new SOP Instance UID in the data set and the meta group.
        common::dicom::run(Command::new("dcmodify").args(["-nb", "-gin"]).arg(&path));
        runs.push((path, propose));
    }
    runs
}

#[test]
fn twenty_runs_sent_concurrently_by_storescu_are_all_stored_byte_identical() {
    let listener = Listener::start(&["ANGIO"]);
    let work = tempfile::tempdir().unwrap();
    let runs = twenty_runs(work.path());
    let started = Instant::now();
    let senders: Vec<_> = runs
        .iter()
        .map(|(path, propose)| {
            Command::new("storescu")
                .args(["-aet", "ANGIO", "-aec", "CSNAV", propose, "127.0.0.1", &listener.port.to_string()])
                .arg(path)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (sender, (path, _)) in senders.into_iter().zip(&runs) {
        let out = sender.wait_with_output().unwrap();
        assert!(out.status.success(), "storescu {}: {}", path.display(), common::text(&out.stderr));
    }
    let stored = listener.wait_for("stored ", 20, Duration::from_secs(30));
    println!("20 runs stored in {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(stored.len(), 20, "{:?}", listener.lines.lock().unwrap());
    assert_eq!(listener.stored_files().len(), 20, "one file per run");
    assert_eq!(listener.part_files(), 0, "no part file left");
    for (path, _) in &runs {
        let uid = common::dicom::sop_instance_uid(path);
        let kept = listener.store.path().join(format!("{uid}.dcm"));
        assert!(kept.exists(), "{} not stored as {}", path.display(), kept.display());
        let ((ts_sent, sent), (ts_kept, kept_bytes)) = (common::dicom::data_set(path), common::dicom::data_set(&kept));
        assert_eq!(ts_sent, ts_kept, "{}: stored in the syntax it was sent in", path.display());
        assert!(sent == kept_bytes, "{}: the stored data set differs from the one sent", path.display());
        // And it is a run csnav reads: every frame decodes.
        let info = common::csnav(&["info", kept.to_str().unwrap()]);
        assert!(info.status.success(), "{}: {}", kept.display(), common::text(&info.stderr));
    }
    let syntaxes: std::collections::BTreeSet<String> = runs.iter().map(|(p, _)| common::dicom::data_set(p).0).collect();
    assert_eq!(syntaxes.len(), 5, "{syntaxes:?}");
}

#[test]
fn callers_off_the_allow_list_and_wrong_called_titles_are_rejected() {
    let listener = Listener::start(&["ANGIO", "PACS"]);
    assert!(listener.echo("ANGIO").status.success());
    assert!(listener.echo("PACS").status.success());
    let intruder = listener.echo("INTRUDER");
    assert!(!intruder.status.success());
    assert!(
        common::text(&intruder.stderr).contains("Calling AE Title Not Recognized"),
        "{}",
        common::text(&intruder.stderr)
    );
    let wrong_called = Command::new("echoscu")
        .args(["-aet", "ANGIO", "-aec", "NOTCSNAV", "127.0.0.1", &listener.port.to_string()])
        .output()
        .unwrap();
    assert!(!wrong_called.status.success());
    assert!(common::text(&wrong_called.stderr).contains("Called AE Title Not Recognized"));
    let rejected = listener.wait_for("rejected", 2, Duration::from_secs(5));
    assert_eq!(rejected.len(), 2, "{:?}", listener.lines.lock().unwrap());
    assert!(rejected.iter().any(|l| l.contains("calling AE title not recognized")), "{rejected:?}");
    assert_eq!(listener.wait_for("echo from", 2, Duration::from_secs(5)).len(), 2);
}

/// An association request PDU (PS3.8 9.3.2) from `calling` to CSNAV proposing XA storage in
/// explicit VR little endian as presentation context 1.
fn associate_rq(calling: &str) -> Vec<u8> {
    fn item(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![kind, 0];
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }
    let ae = |s: &str| format!("{s:<16}").into_bytes();
    let mut body = vec![0, 1, 0, 0];
    body.extend(ae("CSNAV"));
    body.extend(ae(calling));
    body.extend([0u8; 32]);
    body.extend(item(0x10, b"1.2.840.10008.3.1.1.1"));
    let mut pc = vec![1, 0, 0, 0];
    pc.extend(item(0x30, b"1.2.840.10008.5.1.4.1.1.12.1"));
    pc.extend(item(0x40, b"1.2.840.10008.1.2.1"));
    body.extend(item(0x20, &pc));
    let mut user = item(0x51, &16384u32.to_be_bytes());
    user.extend(item(0x52, b"1.2.3.4"));
    body.extend(item(0x50, &user));
    let mut pdu = vec![0x01, 0];
    pdu.extend_from_slice(&(body.len() as u32).to_be_bytes());
    pdu.extend(body);
    pdu
}

/// A P-DATA-TF PDU with one presentation data value on context 1.
fn p_data(command: bool, last: bool, data: &[u8]) -> Vec<u8> {
    let mut pdv = vec![1u8, u8::from(command) | (u8::from(last) << 1)];
    pdv.extend_from_slice(data);
    let mut pdu = vec![0x04, 0];
    pdu.extend_from_slice(&(pdv.len() as u32 + 4).to_be_bytes());
    pdu.extend_from_slice(&(pdv.len() as u32).to_be_bytes());
    pdu.extend(pdv);
    pdu
}

/// Connects and negotiates (raw), returning the socket once the A-ASSOCIATE-AC is in.
fn associate(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&associate_rq("ANGIO")).unwrap();
    let mut head = [0u8; 6];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[0], 0x02, "A-ASSOCIATE-AC expected");
    let mut rest = vec![0u8; u32::from_be_bytes(head[2..6].try_into().unwrap()) as usize];
    s.read_exact(&mut rest).unwrap();
    s
}

#[test]
fn a_peer_that_vanishes_mid_transfer_leaves_no_file() {
    let listener = Listener::start(&["ANGIO"]);
    let case = PathBuf::from(common::case());
    let (_, data) = common::dicom::data_set(&case.join("lao30.dcm"));
    let uid = common::dicom::sop_instance_uid(&case.join("lao30.dcm"));
    // The data set is JPEG lossless; sent here on an explicit-LE context it would be refused
    // once complete, but it never completes: half of it, then the socket closes.
    let mut s = associate(listener.port);
    let command = dicom_net::dimse::request(&dicom_net::dimse::Request {
        affected_sop_instance_uid: Some(&uid),
        has_data_set: true,
        ..dicom_net::dimse::Request::new(dicom_net::dimse::command_field::C_STORE_RQ, 1, dicom_net::sop_class::XA)
    })
    .unwrap();
    s.write_all(&p_data(true, true, &command)).unwrap();
    for chunk in data[..data.len() / 2].chunks(16_000) {
        s.write_all(&p_data(false, false, chunk)).unwrap();
    }
    // While the transfer is under way the part file exists, but only in .incoming.
    let start = Instant::now();
    while listener.part_files() == 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(listener.part_files(), 1, "the transfer is written to a part file");
    assert!(listener.stored_files().is_empty(), "nothing visible before it completes");
    drop(s);
    let dropped = listener.wait_for("dropped ANGIO", 1, Duration::from_secs(10));
    assert_eq!(dropped.len(), 1, "{:?}", listener.lines.lock().unwrap());
    assert!(dropped[0].contains("mid-transfer"), "{dropped:?}");
    assert!(listener.stored_files().is_empty(), "no file from a broken transfer");
    assert_eq!(listener.part_files(), 0, "the part file is deleted");
    assert!(listener.echo("ANGIO").status.success(), "the SCP carries on");
}

#[test]
fn malformed_pdus_are_refused_without_a_crash() {
    let listener = Listener::start(&[]);
    let port = listener.port;
    let send = |bytes: &[u8]| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(bytes);
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        reply
    };
    // Garbage instead of an association request.
    let _ = send(&[0xde; 200]);
    // An association request that claims 4 GB.
    let mut huge = associate_rq("ANGIO");
    huge[2..6].copy_from_slice(&u32::MAX.to_be_bytes());
    let _ = send(&huge);
    // A truncated association request, then the socket closes.
    let _ = send(&associate_rq("ANGIO")[..40]);
    // Negotiated, then: a PDV whose length runs past its PDU.
    let mut s = associate(port);
    let mut bad = p_data(true, true, &[0; 8]);
    bad[6..10].copy_from_slice(&1000u32.to_be_bytes());
    let _ = s.write_all(&bad);
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    // Negotiated, then a command that is not a command set.
    let mut s = associate(port);
    let _ = s.write_all(&p_data(true, true, &[0xff; 31]));
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert_eq!(reply.first(), Some(&0x07), "an unparseable command is answered with an A-ABORT");
    // Data with no C-STORE before it.
    let mut s = associate(port);
    let _ = s.write_all(&p_data(false, true, &[0; 64]));
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert_eq!(reply.first(), Some(&0x07), "stray data is answered with an A-ABORT");
    assert!(listener.echo("ANGIO").status.success(), "the SCP still serves after all that");
    let mut child_status = None;
    for _ in 0..3 {
        child_status = Command::new("kill").args(["-0", &listener.child.id().to_string()]).status().ok();
    }
    assert!(child_status.is_some_and(|s| s.success()), "the SCP process is alive");
    let problems = listener.lines_with("rejected").len() + listener.lines_with("dropped").len();
    println!("{}", listener.lines.lock().unwrap().join("\n"));
    assert!(problems >= 6, "each malformed exchange is reported ({problems})");
    assert!(listener.stored_files().is_empty());
}

#[test]
fn a_received_run_is_segmented_and_announced_to_the_app() {
    // The test plays the app: it listens where csnav listen announces.
    let app = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app_address = app.local_addr().unwrap().to_string();
    let listener = Listener::start_with(&["ANGIO"], &["--segment", "--announce", &app_address]);
    let run = PathBuf::from(common::case()).join("lao30.dcm");
    let uid = common::dicom::sop_instance_uid(&run);
    common::dicom::run(
        Command::new("storescu")
            .args(["-xs", "-aet", "ANGIO", "-aec", "CSNAV", "127.0.0.1", &listener.port.to_string()])
            .arg(&run),
    );
    app.set_nonblocking(false).unwrap();
    let (stream, _) = app.accept().unwrap();
    stream.set_read_timeout(Some(Duration::from_mins(1))).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    let announced: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(announced["schema"], "csnav.announce/1");
    assert_eq!(announced["sop_instance_uid"], uid.as_str());
    assert_eq!(announced["calling_ae_title"], "ANGIO");
    let stored = std::fs::canonicalize(listener.store.path().join(format!("{uid}.dcm"))).unwrap();
    assert_eq!(announced["file"], stored.to_str().unwrap());
    let tree: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(announced["segmentation"].as_str().unwrap()).join("tree.json")).unwrap(),
    )
    .unwrap();
    let branches = tree["branches"].as_array().unwrap().len();
    assert!(branches >= 3, "the bundled run's tree has its veins: {branches}");
    assert_eq!(announced["branches"], branches);
    assert_eq!(listener.wait_for("segmented", 1, Duration::from_secs(5)).len(), 1);
    assert_eq!(listener.wait_for("announced", 1, Duration::from_secs(5)).len(), 1);
}

#[test]
fn an_app_that_is_not_there_costs_an_announcement_not_the_run() {
    let nobody = format!("127.0.0.1:{}", common::free_port());
    let listener = Listener::start_with(&[], &["--segment", "--announce", &nobody]);
    let run = PathBuf::from(common::case()).join("rao30.dcm");
    common::dicom::run(
        Command::new("storescu").args(["-xs", "-aec", "CSNAV", "127.0.0.1", &listener.port.to_string()]).arg(&run),
    );
    let failed = listener.wait_for("announce", 1, Duration::from_mins(1));
    assert!(failed[0].contains("failed") && failed[0].contains("no app listening"), "{failed:?}");
    assert_eq!(listener.lines_with("segmented ").len(), 1, "the run is segmented all the same");
    // The listener carries on.
    assert!(listener.echo("ANYONE").status.success());
}
