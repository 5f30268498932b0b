//! Receive throughput of csnav's storage SCP against dcmtk's `storescp`, on the same loopback
//! link with the same sender (dcmtk's `storescu`): a 60-frame 1024x1024 12-bit XA run
//! (explicit VR little endian, 126 MB), sent 7 times to each; the median wall time of the
//! whole `storescu` run (association, transfer, the SCP's answer after its file is written).
//! csnav syncs each file and its folder before it answers (no acknowledged run is lost on a
//! power cut) and reads the file back to check it; `storescp` does neither. Needs dcmtk
//! (scripts/install-peers.sh). Run: `cargo bench -p dicom-net --bench receive`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, reason = "a benchmark binary")]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dicom_net::{StoreScp, StoreScpConfig};
use venogram::acquisition::PositionerGeometry;
use venogram::xa_writer::{XaWriteSpec, write_xa_file};

const REPEATS: usize = 7;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One `storescu` run to `ae` at `port`: its wall time.
fn send(file: &Path, ae: &str, port: u16) -> Duration {
    let started = Instant::now();
    let out = Command::new("storescu")
        .args(["-aec", ae, "127.0.0.1", &port.to_string()])
        .arg(file)
        .output()
        .expect("storescu (dcmtk: scripts/install-peers.sh)");
    assert!(out.status.success(), "storescu: {}", String::from_utf8_lossy(&out.stderr));
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Waits until something accepts connections on `port`.
fn wait_for_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let run = work.path().join("run.dcm");
    let cine = venogram::test_pattern::angiography_pattern(1024, 1024, 60, 12, 1).unwrap();
    let spec = XaWriteSpec {
        positioner: PositionerGeometry { positioner_primary_angle_deg: Some(30.0), ..PositionerGeometry::default() },
        frame_time_ms: Some(66.67),
        uid_seed: 1,
        ..XaWriteSpec::default()
    };
    write_xa_file(&run, &cine, &spec).unwrap();
    let bytes = std::fs::metadata(&run).unwrap().len() as f64;
    println!("receive throughput: 60 x 1024x1024 12-bit XA run, {:.1} MB, sent by storescu over loopback", bytes / 1e6);
    println!("(median of {REPEATS} sends after one warm-up; the store folder is on the same disk as the run)\n");
    println!("| receiver | max PDU | median s | MB/s |");
    println!("|---|---:|---:|---:|");

    // csnav, in process.
    let store = work.path().join("csnav-store");
    let scp = StoreScp::bind(
        "127.0.0.1:0",
        StoreScpConfig::new("CSNAV", &store, venogram::xa_writer::IMPLEMENTATION_CLASS_UID),
    )
    .unwrap();
    let port = scp.local_addr().unwrap().port();
    std::thread::spawn(move || scp.serve(|_| {}));
    wait_for_port(port);
    send(&run, "CSNAV", port);
    let times: Vec<Duration> = (0..REPEATS).map(|_| send(&run, "CSNAV", port)).collect();
    let m = median(times).as_secs_f64();
    println!("| csnav listen (fsync file + folder) | 262144 | {m:.3} | {:.0} |", bytes / 1e6 / m);

    // dcmtk's storescp as it ships, then with the largest PDU it takes (128 KiB).
    for max_pdu in [None, Some("131072")] {
        let out = work.path().join(format!("storescp-{}", max_pdu.unwrap_or("default")));
        std::fs::create_dir_all(&out).unwrap();
        let port = free_port();
        let mut args = vec!["-aet".to_owned(), "STORESCP".to_owned(), "-od".to_owned(), out.display().to_string()];
        if let Some(p) = max_pdu {
            args.extend(["--max-pdu".to_owned(), p.to_owned()]);
        }
        args.push(port.to_string());
        let mut child = Command::new("storescp")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("storescp (dcmtk)");
        wait_for_port(port);
        send(&run, "STORESCP", port);
        let times: Vec<Duration> = (0..REPEATS).map(|_| send(&run, "STORESCP", port)).collect();
        let _ = child.kill();
        let _ = child.wait();
        let m = median(times).as_secs_f64();
        println!("| dcmtk storescp | {} | {m:.3} | {:.0} |", max_pdu.unwrap_or("16384 (default)"), bytes / 1e6 / m);
    }
}
