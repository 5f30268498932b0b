//! csnav against a real PACS: Orthanc (the Debian package, installed by
//! scripts/install-peers.sh) started here on loopback with its own configuration, loaded with
//! two synthetic patients by dcmtk's `storescu`; csnav finds them (patient, study, series),
//! retrieves a run (C-MOVE to its own storage SCP: data set byte-identical), segments it and
//! sends the overlay (Secondary Capture) and the measurements (Comprehensive SR) back; Orthanc
//! then lists both under the run's study, the SR's evidence names the run, and dicom3tools'
//! `dciodvfy` finds no error in either object.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failure is a failed test")]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// An Orthanc of its own: a temporary storage, DICOM and HTTP ports on loopback, csnav's AE
/// known at `csnav_port` for C-MOVE.
struct Orthanc {
    child: Child,
    dicom_port: u16,
    http_port: u16,
    _dir: tempfile::TempDir,
}

impl Orthanc {
    fn start(csnav_port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (dicom_port, http_port) = (common::free_port(), common::free_port());
        let config = serde_json::json!({
            "Name": "csnav-test-pacs",
            "StorageDirectory": dir.path().join("storage"),
            "IndexDirectory": dir.path().join("index"),
            "DicomAet": "ORTHANC",
            "DicomPort": dicom_port,
            "HttpPort": http_port,
            "HttpBindAddress": "127.0.0.1",
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "DicomCheckCalledAet": true,
            "DicomModalities": { "csnav": ["CSNAV", "127.0.0.1", csnav_port] },
            "Plugins": [],
        });
        let config_path = dir.path().join("orthanc.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let binary = ["/usr/sbin/Orthanc", "/usr/bin/Orthanc"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("Orthanc is not installed: run scripts/install-peers.sh (the README's test command does)");
        let child = Command::new(binary)
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("orthanc.log")).unwrap())
            .spawn()
            .unwrap();
        let orthanc = Self { child, dicom_port, http_port, _dir: dir };
        let start = Instant::now();
        while orthanc.try_get("/system").is_none() {
            assert!(start.elapsed() < Duration::from_secs(30), "Orthanc did not answer within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        orthanc
    }

    fn peer(&self) -> String {
        format!("ORTHANC@127.0.0.1:{}", self.dicom_port)
    }

    /// An HTTP request to the REST API (HTTP/1.0, the whole answer read); the JSON body.
    fn request(&self, method: &str, path: &str, body: &str) -> Option<Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.http_port)).ok()?;
        write!(s, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}", body.len())
            .ok()?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).ok()?;
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n")?;
        assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{method} {path}: {head}");
        serde_json::from_str(body).ok()
    }

    fn try_get(&self, path: &str) -> Option<Value> {
        TcpStream::connect(("127.0.0.1", self.http_port)).ok()?;
        self.request("GET", path, "")
    }

    fn get(&self, path: &str) -> Value {
        self.request("GET", path, "").unwrap_or_else(|| panic!("GET {path}"))
    }

    /// Orthanc's identifier of the study with this Study Instance UID.
    fn study_id(&self, study_uid: &str) -> String {
        let found = self.request("POST", "/tools/lookup", study_uid).unwrap();
        found
            .as_array()
            .and_then(|a| a.iter().find(|r| r["Type"] == "Study"))
            .and_then(|r| r["ID"].as_str())
            .unwrap_or_else(|| panic!("Orthanc has no study {study_uid}: {found}"))
            .to_owned()
    }
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies of a case's runs with a pseudonymous Patient ID and name written by dcmtk.
fn patient_runs(case: &Path, out: &Path, patient_id: &str) -> Vec<PathBuf> {
    std::fs::create_dir_all(out).unwrap();
    ["lao30.dcm", "rao30.dcm"]
        .iter()
        .map(|name| {
            let path = out.join(name);
            std::fs::copy(case.join(name), &path).unwrap();
            common::dicom::run(
                Command::new("dcmodify")
                    .args(["-nb", "-i", &format!("(0010,0020)={patient_id}")])
                    .args(["-i", &format!("(0010,0010)=SIMULATED^{patient_id}")])
                    .arg(&path),
            );
            path
        })
        .collect()
}

fn csnav_ok(args: &[&str]) -> String {
    let out = common::csnav(args);
    assert!(out.status.success(), "csnav {args:?}: {}{}", common::text(&out.stdout), common::text(&out.stderr));
    common::text(&out.stdout)
}

fn find(orthanc: &Orthanc, args: &[&str]) -> Vec<Value> {
    let peer = orthanc.peer();
    let mut all = vec!["pacs", "find", "--peer", &peer, "--json"];
    all.extend_from_slice(args);
    serde_json::from_str::<Value>(&csnav_ok(&all)).unwrap().as_array().unwrap().clone()
}

/// Every string value of `key` in an Orthanc `?simplify` tags answer, through sequences.
fn uids_in(value: &Value, key: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key
                    && let Some(s) = v.as_str()
                {
                    out.push(s.to_owned());
                }
                uids_in(v, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| uids_in(v, key, out)),
        _ => {}
    }
}

#[test]
fn find_retrieve_segment_and_send_back_through_orthanc() {
    let csnav_port = common::free_port();
    let orthanc = Orthanc::start(csnav_port);
    let work = tempfile::tempdir().unwrap();

    // Two synthetic patients: the bundled case (JPEG lossless) and a fresh one (uncompressed).
    let fresh = work.path().join("seed11");
    csnav_ok(&["simulate", "--seed", "11", "--size", "256", "--frames", "6", "--out", fresh.to_str().unwrap()]);
    let mut runs = patient_runs(Path::new(&common::case()), &work.path().join("p7"), "CSNAV-SIM-0007");
    runs.extend(patient_runs(&fresh, &work.path().join("p11"), "CSNAV-SIM-0011"));
    let mut storescu = Command::new("storescu");
    storescu.args(["-xs", "-aet", "LOADER", "-aec", "ORTHANC", "127.0.0.1", &orthanc.dicom_port.to_string()]);
    common::dicom::run(storescu.args(&runs));

    // Echo, then find: two patients, one study each, two XA series in the bundled case's study.
    let echoed = csnav_ok(&["pacs", "echo", "--peer", &orthanc.peer()]);
    assert!(echoed.contains("success"), "{echoed}");
    let patients = find(&orthanc, &["--level", "patient"]);
    let mut ids: Vec<&str> = patients.iter().map(|p| p["PatientID"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["CSNAV-SIM-0007", "CSNAV-SIM-0011"]);
    let studies = find(&orthanc, &["--level", "study", "--patient-id", "CSNAV-SIM-0007"]);
    assert_eq!(studies.len(), 1, "{studies:?}");
    let study_uid = studies[0]["StudyInstanceUID"].as_str().unwrap().to_owned();
    assert_eq!(studies[0]["ModalitiesInStudy"], "XA");
    assert_eq!(studies[0]["NumberOfStudyRelatedInstances"], "2");
    let wildcard = find(&orthanc, &["--level", "study", "--patient-name", "SIMULATED^*11"]);
    assert_eq!(wildcard.len(), 1, "a wildcard name matches one patient's study: {wildcard:?}");
    assert_ne!(wildcard[0]["StudyInstanceUID"], study_uid.as_str());
    let series = find(&orthanc, &["--level", "series", "--study-uid", &study_uid]);
    assert_eq!(series.len(), 2, "{series:?}");
    assert!(series.iter().all(|s| s["Modality"] == "XA"));

    // A query below the study level without the study is refused by csnav, with the reason.
    let refused = common::csnav(&["pacs", "find", "--peer", &orthanc.peer(), "--level", "series"]);
    assert!(!refused.status.success());
    assert!(common::text(&refused.stderr).contains("Study Instance UID"), "{}", common::text(&refused.stderr));

    // Retrieve the LAO run: the data set arrives byte for byte as loaded.
    let lao = &runs[0];
    let lao_uid = common::dicom::sop_instance_uid(lao);
    let lao_series = series
        .iter()
        .map(|s| s["SeriesInstanceUID"].as_str().unwrap().to_owned())
        .find(|uid| {
            find(&orthanc, &["--level", "image", "--study-uid", &study_uid, "--series-uid", uid])
                .iter()
                .any(|i| i["SOPInstanceUID"] == lao_uid.as_str())
        })
        .expect("the LAO run's series");
    let retrieved = work.path().join("retrieved");
    let port = csnav_port.to_string();
    let got = csnav_ok(&[
        "pacs",
        "get",
        "--peer",
        &orthanc.peer(),
        "--study-uid",
        &study_uid,
        "--series-uid",
        &lao_series,
        "--out",
        retrieved.to_str().unwrap(),
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
    ]);
    assert!(got.contains("retrieved 1 instance(s)"), "{got}");
    let run = retrieved.join(format!("{lao_uid}.dcm"));
    assert_eq!(common::dicom::data_set(&run), common::dicom::data_set(lao), "byte-identical data set");

    // Segment and send back.
    let exported = work.path().join("export");
    let sent =
        csnav_ok(&["export", run.to_str().unwrap(), "--out", exported.to_str().unwrap(), "--send", &orthanc.peer()]);
    assert_eq!(sent.matches("sent ").count(), 2, "{sent}");
    for file in ["overlay-sc.dcm", "report-sr.dcm"] {
        let out = Command::new("dciodvfy").arg(exported.join(file)).output().expect("dciodvfy (dicom3tools)");
        let report = common::text(&out.stderr) + &common::text(&out.stdout);
        let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("Error")).collect();
        assert!(errors.is_empty(), "{file}: {errors:#?}");
    }

    // Orthanc lists the overlay and the report under the run's study.
    let study = orthanc.study_id(&study_uid);
    let listed = orthanc.get(&format!("/studies/{study}/series?expand"));
    let mut modalities: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["MainDicomTags"]["Modality"].as_str().unwrap_or("").to_owned())
        .collect();
    modalities.sort();
    assert_eq!(modalities, ["OT", "SR", "XA", "XA"], "{listed}");
    let report_series = listed.as_array().unwrap().iter().find(|s| s["MainDicomTags"]["Modality"] == "SR").unwrap();
    let report_instance = report_series["Instances"][0].as_str().unwrap();
    let tags = orthanc.get(&format!("/instances/{report_instance}/tags?simplify"));
    let mut referenced = Vec::new();
    uids_in(&tags["CurrentRequestedProcedureEvidenceSequence"], "ReferencedSOPInstanceUID", &mut referenced);
    assert!(referenced.contains(&lao_uid), "the SR's evidence names the source run: {referenced:?}");
    let overlay_series = listed.as_array().unwrap().iter().find(|s| s["MainDicomTags"]["Modality"] == "OT").unwrap();
    let overlay_tags =
        orthanc.get(&format!("/instances/{}/tags?simplify", overlay_series["Instances"][0].as_str().unwrap()));
    let mut sources = Vec::new();
    uids_in(&overlay_tags["SourceImageSequence"], "ReferencedSOPInstanceUID", &mut sources);
    assert_eq!(sources, std::slice::from_ref(&lao_uid), "the overlay is derived from the source run");
    assert_eq!(overlay_tags["PatientID"], "CSNAV-SIM-0007");
    assert!(
        referenced.contains(&overlay_tags["SOPInstanceUID"].as_str().unwrap().to_owned()),
        "the SR names the overlay"
    );
}

/// `csnav pacs get` with these arguments (and a fresh output folder); its stderr on failure.
fn failed_get(orthanc: &Orthanc, ae: &str, study_uid: &str) -> String {
    let out_dir = tempfile::tempdir().unwrap();
    let out = common::csnav(&[
        "pacs",
        "get",
        "--peer",
        &orthanc.peer(),
        "--ae",
        ae,
        "--study-uid",
        study_uid,
        "--out",
        out_dir.path().to_str().unwrap(),
        "--port",
        &common::free_port().to_string(),
        "--bind",
        "127.0.0.1",
    ]);
    assert!(!out.status.success(), "{}", common::text(&out.stdout));
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().filter(|e| e.as_ref().unwrap().path().is_file()).count(), 0);
    common::text(&out.stderr)
}

#[test]
fn retrieves_the_pacs_refuses_fail_with_its_reason() {
    let orthanc = Orthanc::start(common::free_port());
    // A calling AE the PACS does not know: Orthanc aborts the association.
    let err = failed_get(&orthanc, "STRANGER", "1.2.3");
    assert!(err.contains("aborted") && err.contains(&orthanc.peer()), "{err}");
    // A study the PACS does not have: a failure status, with csnav's reading of it.
    let err = failed_get(&orthanc, "CSNAV", "1.2.3.4.5.6.7");
    assert!(err.contains("C-MOVE") && err.contains("status 0xC"), "{err}");
}
