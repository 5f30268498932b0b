//! Transfer-syntax conformance matrix against real peers.
//!
//! csnav writes a small multi-frame XA object (8-bit and 12-bit, odd width so edge blocks and
//! padding are exercised); dcmtk and pydicom transcode it into every syntax csnav claims;
//! csnav decodes each result. Lossless syntaxes must give back the original samples exactly;
//! lossy ones must meet the tolerance stated per case; attributes must equal what `dcmdump`
//! prints. Needs `scripts/install-peers.sh` (the README's test command runs it).

#![allow(
    clippy::unwrap_used,
    clippy::float_cmp,
    reason = "a test: a failed unwrap is a failed test; compared values are parsed, not computed"
)]

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use common::{peers_python, repo_root, run, source_spec};
use venogram::transfer_syntax as ts;
use venogram::{Cine, XaRun, read_xa_file};

const ROWS: u32 = 97;
const COLUMNS: u32 = 131;
const FRAMES: u32 = 5;

/// How a decoded result must compare with the source samples.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Identical samples.
    Exact,
    /// JPEG-LS near-lossless: every sample within `near` of the source (the codec's guarantee).
    Near(u16),
    /// DCT JPEG: within `max_diff` of dcmtk's own decode (csnav's IDCT is IJG's islow, as
    /// in dcmtk, so 0 is expected) and at least `min_psnr_db` against the source.
    MatchesDcmtkDecode { max_diff: u16, min_psnr_db: f64 },
    /// Lossy JPEG 2000: at least `min_psnr_db` against the source.
    Psnr(f64),
}

struct Case {
    producer: &'static str,
    label: &'static str,
    uid: &'static str,
    bits: &'static [u16],
    expect: Expect,
}

fn dcmtk(label: &'static str, uid: &'static str, bits: &'static [u16], expect: Expect) -> Case {
    Case { producer: "dcmtk", label, uid, bits, expect }
}

fn pydicom(label: &'static str, uid: &'static str, bits: &'static [u16], expect: Expect) -> Case {
    Case { producer: "pydicom", label, uid, bits, expect }
}

const BOTH: &[u16] = &[8, 12];
const DCT: Expect = Expect::MatchesDcmtkDecode { max_diff: 0, min_psnr_db: 35.0 };

fn cases() -> Vec<Case> {
    vec![
        dcmtk("implicit", ts::IMPLICIT_VR_LITTLE_ENDIAN, BOTH, Expect::Exact),
        dcmtk("explicit", ts::EXPLICIT_VR_LITTLE_ENDIAN, BOTH, Expect::Exact),
        dcmtk("big-endian", ts::EXPLICIT_VR_BIG_ENDIAN, BOTH, Expect::Exact),
        dcmtk("deflated", ts::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, BOTH, Expect::Exact),
        dcmtk("rle", ts::RLE_LOSSLESS, BOTH, Expect::Exact),
        dcmtk("jpeg-baseline", ts::JPEG_BASELINE, &[8], DCT),
        dcmtk("jpeg-extended", ts::JPEG_EXTENDED, BOTH, DCT),
        dcmtk("jpeg-lossless-sv1", ts::JPEG_LOSSLESS_SV1, BOTH, Expect::Exact),
        dcmtk("jpeg-lossless-sv2", ts::JPEG_LOSSLESS, BOTH, Expect::Exact),
        dcmtk("jpeg-lossless-sv4", ts::JPEG_LOSSLESS, BOTH, Expect::Exact),
        dcmtk("jpeg-lossless-sv6", ts::JPEG_LOSSLESS, BOTH, Expect::Exact),
        dcmtk("jpeg-lossless-sv7", ts::JPEG_LOSSLESS, BOTH, Expect::Exact),
        dcmtk("jpeg-ls", ts::JPEG_LS_LOSSLESS, BOTH, Expect::Exact),
        dcmtk("jpeg-ls-near", ts::JPEG_LS_NEAR_LOSSLESS, BOTH, Expect::Near(2)),
        pydicom("implicit", ts::IMPLICIT_VR_LITTLE_ENDIAN, BOTH, Expect::Exact),
        pydicom("deflated", ts::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, BOTH, Expect::Exact),
        pydicom("rle", ts::RLE_LOSSLESS, BOTH, Expect::Exact),
        pydicom("jpeg-ls", ts::JPEG_LS_LOSSLESS, BOTH, Expect::Exact),
        pydicom("jpeg-ls-near", ts::JPEG_LS_NEAR_LOSSLESS, BOTH, Expect::Near(3)),
        pydicom("jpeg2000", ts::JPEG_2000_LOSSLESS, BOTH, Expect::Exact),
        pydicom("jpeg2000-lossy", ts::JPEG_2000, BOTH, Expect::Psnr(45.0)),
    ]
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Produces `dst` from `src` with the case's peer.
fn transcode(case: &Case, src: &Path, dst: &Path) {
    let (s, d) = (src.as_os_str(), dst.as_os_str());
    if case.producer == "pydicom" {
        let script = repo_root().join("scripts/peers/pydicom_transcode.py");
        run(peers_python(), &[script.as_os_str(), s, d, os(case.label)]);
        return;
    }
    match case.label {
        "implicit" => run("dcmconv", &[os("+ti"), s, d]),
        "explicit" => {
            // Round trip through implicit VR so dcmtk really re-encodes the data set.
            let implicit = dst.with_extension("implicit.dcm");
            run("dcmconv", &[os("+ti"), s, implicit.as_os_str()]);
            run("dcmconv", &[os("+te"), implicit.as_os_str(), d])
        }
        "big-endian" => run("dcmconv", &[os("+tb"), s, d]),
        "deflated" => run("dcmconv", &[os("+td"), s, d]),
        "rle" => run("dcmcrle", &[s, d]),
        // +sr: scale by the stored range, i.e. keep sample values (dcmtk's default +sp
        // stretches each image's min..max, which changes what the pixels mean).
        "jpeg-baseline" => run("dcmcjpeg", &[os("+eb"), os("+sr"), s, d]),
        "jpeg-extended" => run("dcmcjpeg", &[os("+ee"), os("+sr"), s, d]),
        "jpeg-lossless-sv1" => run("dcmcjpeg", &[os("+e1"), s, d]),
        "jpeg-ls" => run("dcmcjpls", &[os("+el"), s, d]),
        "jpeg-ls-near" => run("dcmcjpls", &[os("+en"), os("+md"), os("2"), s, d]),
        label => {
            let sv = label.strip_prefix("jpeg-lossless-sv").unwrap_or_else(|| panic!("no recipe for {label}"));
            run("dcmcjpeg", &[os("+el"), os("+sv"), os(sv), s, d])
        }
    };
}

fn max_abs_diff(a: &Cine, b: &Cine) -> u16 {
    a.samples().iter().zip(b.samples()).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0)
}

fn psnr_db(a: &Cine, b: &Cine) -> f64 {
    let mse = a.samples().iter().zip(b.samples()).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum::<f64>()
        / a.samples().len() as f64;
    let peak = f64::from(a.format.max_stored_value());
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (peak * peak / mse).log10() }
}

/// `dcmdump` values of the attributes csnav reads, by tag, as printed between VR and `#`.
fn dcmdump_values(file: &Path) -> std::collections::HashMap<String, String> {
    let tags = [
        "0002,0010",
        "0008,0018",
        "0028,0010",
        "0028,0011",
        "0028,0008",
        "0028,0101",
        "0018,1510",
        "0018,1511",
        "0018,1110",
        "0018,1111",
        "0018,1164",
        "0018,1063",
        "0028,6040",
    ];
    let mut args: Vec<&OsStr> = vec![os("-q"), os("-Un"), os("-M")];
    for t in &tags {
        args.push(os("+P"));
        args.push(os(t));
    }
    args.push(file.as_os_str());
    let out = run("dcmdump", &args);
    let mut values = std::collections::HashMap::new();
    for line in out.lines() {
        let line = line.trim();
        let (Some(tag), Some(rest)) = (line.get(1..10), line.get(15..)) else { continue };
        let value = rest.split('#').next().unwrap_or("").trim().trim_start_matches('[').trim_end_matches(']');
        values.insert(tag.to_ascii_uppercase(), value.trim_end_matches(['\0', ' ']).to_owned());
    }
    values
}

fn check_attributes(run_: &XaRun, file: &Path, context: &str) {
    let d = dcmdump_values(file);
    let get = |tag: &str| d.get(tag).unwrap_or_else(|| panic!("{context}: dcmdump printed no {tag}: {d:?}")).clone();
    let num = |tag: &str| get(tag).parse::<f64>().unwrap_or_else(|e| panic!("{context}: {tag}: {e}"));
    let nums = |tag: &str| get(tag).split('\\').map(|v| v.trim().parse::<f64>().unwrap()).collect::<Vec<_>>();
    let p = &run_.acquisition.positioner;
    let close = |a: Option<f64>, b: f64, what: &str| {
        let a = a.unwrap_or_else(|| panic!("{context}: csnav has no {what}"));
        assert!((a - b).abs() < 1e-9, "{context}: {what} csnav {a} vs dcmdump {b}");
    };
    assert_eq!(run_.transfer_syntax.uid, get("0002,0010"), "{context}: transfer syntax");
    assert_eq!(run_.acquisition.identity.sop_instance_uid.as_deref(), Some(get("0008,0018").as_str()), "{context}");
    assert_eq!(f64::from(run_.cine.rows()), num("0028,0010"), "{context}: Rows");
    assert_eq!(f64::from(run_.cine.columns()), num("0028,0011"), "{context}: Columns");
    assert_eq!(f64::from(run_.cine.frame_count()), num("0028,0008"), "{context}: NumberOfFrames");
    assert_eq!(f64::from(run_.cine.format.bits_stored), num("0028,0101"), "{context}: BitsStored");
    close(p.positioner_primary_angle_deg, num("0018,1510"), "PositionerPrimaryAngle");
    close(p.positioner_secondary_angle_deg, num("0018,1511"), "PositionerSecondaryAngle");
    close(p.distance_source_to_detector_mm, num("0018,1110"), "DistanceSourceToDetector");
    close(p.distance_source_to_patient_mm, num("0018,1111"), "DistanceSourceToPatient");
    assert_eq!(p.imager_pixel_spacing_mm.map(Vec::from), Some(nums("0018,1164")), "{context}: ImagerPixelSpacing");
    close(run_.acquisition.timing.frame_time_ms, num("0018,1063"), "FrameTime");
    let r_waves: Vec<f64> = run_.acquisition.timing.r_wave_frame_indices.iter().map(|i| f64::from(i + 1)).collect();
    assert_eq!(r_waves, nums("0028,6040"), "{context}: RWavePointer (1-based)");
}

struct Sources {
    dir: tempfile::TempDir,
}

impl Sources {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for bits in [8u16, 12] {
            let cine =
                venogram::test_pattern::angiography_pattern(ROWS, COLUMNS, FRAMES, bits, u64::from(bits)).unwrap();
            venogram::xa_writer::write_xa_file(
                &dir.path().join(format!("src{bits}.dcm")),
                &cine,
                &source_spec(u64::from(bits)),
            )
            .unwrap();
        }
        Self { dir }
    }

    fn path(&self, bits: u16) -> PathBuf {
        self.dir.path().join(format!("src{bits}.dcm"))
    }
}

#[test]
fn every_claimed_transfer_syntax_decodes_like_the_peers() {
    let sources = Sources::new();
    let mut report = Vec::new();
    for case in cases() {
        for &bits in case.bits {
            let context = format!("{} {} {bits}-bit", case.producer, case.label);
            let src = sources.path(bits);
            let original = read_xa_file(&src).unwrap().cine;
            let dst = sources.dir.path().join(format!("{}_{}_{bits}.dcm", case.producer, case.label));
            transcode(&case, &src, &dst);
            let decoded = read_xa_file(&dst).unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(decoded.transfer_syntax.uid, case.uid, "{context}: peer wrote another syntax");
            assert_eq!(decoded.cine.frame_count(), FRAMES, "{context}");
            check_attributes(&decoded, &dst, &context);
            assert_eq!(
                decoded.cine.lossy_compression.is_some(),
                !matches!(case.expect, Expect::Exact),
                "{context}: lossy compression must be flagged exactly for lossy syntaxes"
            );
            let diff = max_abs_diff(&original, &decoded.cine);
            let psnr = psnr_db(&original, &decoded.cine);
            match case.expect {
                Expect::Exact => {
                    assert!(decoded.cine.samples() == original.samples(), "{context}: not exact (max diff {diff})");
                }
                Expect::Near(near) => assert!(diff <= near, "{context}: max diff {diff} > NEAR {near}"),
                Expect::Psnr(min) => assert!(psnr >= min, "{context}: PSNR {psnr:.1} dB < {min} dB"),
                Expect::MatchesDcmtkDecode { max_diff, min_psnr_db } => {
                    let reference = dst.with_extension("dcmdjpeg.dcm");
                    run("dcmdjpeg", &[dst.as_os_str(), reference.as_os_str()]);
                    let reference = read_xa_file(&reference).unwrap().cine;
                    let vs_dcmtk = max_abs_diff(&reference, &decoded.cine);
                    assert!(vs_dcmtk <= max_diff, "{context}: differs from dcmdjpeg by {vs_dcmtk} > {max_diff}");
                    assert!(psnr >= min_psnr_db, "{context}: PSNR {psnr:.1} dB < {min_psnr_db} dB");
                }
            }
            report.push(format!(
                "{context:<32} {:<48} max|diff| {diff:>4}  PSNR {psnr:>6.1} dB",
                decoded.transfer_syntax.name
            ));
        }
    }
    println!("{}", report.join("\n"));
}

#[test]
fn syntaxes_csnav_does_not_decode_fail_naming_uid_and_name() {
    let sources = Sources::new();
    // dcmcjpeg +es writes JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8), retired.
    let dst = sources.dir.path().join("spectral.dcm");
    run("dcmcjpeg", &[os("+es"), sources.path(8).as_os_str(), dst.as_os_str()]);
    let message = read_xa_file(&dst).unwrap_err().to_string();
    assert!(message.contains("1.2.840.10008.1.2.4.53"), "{message}");
    assert!(message.contains("unsupported transfer syntax JPEG Spectral Selection"), "{message}");
}

#[test]
fn frame_count_beyond_the_fragments_is_an_error_not_silence() {
    let sources = Sources::new();
    for (label, tool, flag) in [("rle", "dcmcrle", None), ("jpeg", "dcmcjpeg", Some("+e1"))] {
        let dst = sources.dir.path().join(format!("{label}.dcm"));
        let src = sources.path(12);
        let mut args: Vec<&OsStr> = flag.map(os).into_iter().collect();
        args.extend([src.as_os_str(), dst.as_os_str()]);
        run(tool, &args);
        run("dcmodify", &[os("-nb"), os("-m"), os("(0028,0008)=9"), dst.as_os_str()]);
        let message = read_xa_file(&dst).unwrap_err().to_string();
        assert!(message.contains("Number of Frames") && message.contains('9'), "{label}: {message}");
    }
}
