//! Segmentation of frames that hold no vessel tree: a clear result (an empty tree with its
//! reason, or an error naming the problem), never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a failed unwrap is a failed test")]

use simulator::SyntheticPatient;
use simulator::render::{RenderSettings, render};
use std::sync::Arc;
use venogram::cine::{Cine, PhotometricInterpretation, PixelFormat};

use venogram::segment::{FrameChoice, Mask, SegmentError, SegmentParams, segment_run};

fn format(bits: u16) -> PixelFormat {
    PixelFormat {
        bits_allocated: 16,
        bits_stored: bits,
        high_bit: bits - 1,
        photometric_in_file: PhotometricInterpretation::Monochrome2,
    }
}

fn flat(size: u32, frames: u32, value: u16) -> Cine {
    Cine::new(size, size, frames, vec![value; (size * size * frames) as usize], format(12)).unwrap()
}

#[test]
fn all_dark_and_all_bright_frames_give_an_empty_tree_with_a_reason() {
    for value in [0u16, 4095] {
        let seg = segment_run(&flat(256, 3, value), FrameChoice::Auto, &SegmentParams::default()).unwrap();
        assert!(seg.tree.branches.is_empty());
        let reason = seg.tree.empty_reason.expect("a reason");
        assert!(!reason.is_empty(), "{value}: {reason}");
        assert_eq!(seg.mask.count(), 0);
    }
}

#[test]
fn a_tiny_image_and_a_missing_frame_are_errors_that_say_so() {
    let err = segment_run(&flat(32, 1, 100), FrameChoice::Auto, &SegmentParams::default()).unwrap_err();
    assert!(matches!(err, SegmentError::ImageTooSmall { rows: 32, columns: 32, .. }), "{err}");
    assert!(err.to_string().contains("32x32"));
    let err = segment_run(&flat(128, 2, 100), FrameChoice::Index(5), &SegmentParams::default()).unwrap_err();
    assert_eq!(err, SegmentError::FrameOutOfRange { frame: 5, count: 2 });
    let params = SegmentParams { seed_xy: Some([500.0, 3.0]), ..SegmentParams::default() };
    let err = segment_run(&flat(128, 1, 100), FrameChoice::Auto, &params).unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
}

#[test]
fn a_given_vessel_mask_of_another_size_is_an_error_and_an_empty_one_gives_no_tree() {
    let with = |mask: Mask| SegmentParams { vessel_mask: Some(Arc::new(mask)), ..SegmentParams::default() };
    let err = segment_run(&flat(256, 1, 2000), FrameChoice::Index(0), &with(Mask::empty(128, 256))).unwrap_err();
    assert_eq!(err, SegmentError::MaskSize { mask_columns: 128, mask_rows: 256, columns: 256, rows: 256 });
    assert!(err.to_string().contains("128x256") && err.to_string().contains("256x256"), "{err}");
    let seg = segment_run(&flat(256, 1, 2000), FrameChoice::Index(0), &with(Mask::empty(256, 256))).unwrap();
    assert!(seg.tree.branches.is_empty() && seg.tree.empty_reason.is_some(), "{:?}", seg.tree);
}

#[test]
fn a_run_without_contrast_gives_no_tree_and_says_why() {
    let patient = SyntheticPatient::generate(4);
    let mut settings = RenderSettings::typical("LAO30".parse().unwrap(), 256, 12, 8);
    settings.injection.contrast_mu_per_mm = 0.0;
    let run = render(&patient, &settings).unwrap();
    let seg = segment_run(&run.cine, FrameChoice::Auto, &SegmentParams::default()).unwrap();
    assert!(seg.tree.branches.is_empty(), "{} branches from catheters and leads", seg.tree.branches.len());
    assert!(seg.tree.empty_reason.unwrap().contains("no contrast"));
}

#[test]
fn a_frame_with_only_catheters_and_leads_keeps_them_out_of_the_tree() {
    // Frame 0 is before the injection: guide catheter, balloon, leads, wires, ribs only.
    let patient = SyntheticPatient::generate(4);
    let settings = RenderSettings::typical("LAO30".parse().unwrap(), 256, 12, 8);
    let run = render(&patient, &settings).unwrap();
    let seg = segment_run(&run.cine, FrameChoice::Index(0), &SegmentParams::default()).unwrap();
    let length: f64 = seg.tree.branches.iter().map(|b| b.length_px).sum();
    assert!(length < 60.0, "{length:.0} px of catheter or lead taken for vein");
    assert!(seg.tree.empty_reason.is_some_and(|r| r.contains("holds no contrast")));
}
