//! Pictures of a segmentation: the frame with the labelled tree drawn over it (a colour per
//! label and a legend) and the vesselness as an 8-bit image. OpenCV draws the lines and text.

use opencv::core::{CV_8UC3, Mat, Point, Scalar, Vec3b};
use opencv::imgproc;
use opencv::prelude::*;

use super::SegmentError;
use super::image::{ImageF32, cv};
use super::pipeline::RemovedStructure;
use super::tree::{BranchTree, NodeKind};
use crate::cine::FrameView;
use crate::labels::VeinLabel;

/// An 8-bit RGB picture, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width * height * 3` bytes, R G B.
    pub data: Vec<u8>,
}

fn bgr(c: [u8; 3]) -> Scalar {
    Scalar::new(f64::from(c[2]), f64::from(c[1]), f64::from(c[0]), 0.0)
}

/// The frame (windowed from its 1st to 99th percentile) with the tree, its nodes, the
/// labels and a legend, plus a research-use banner.
pub fn draw_overlay(
    frame: &FrameView<'_>,
    tree: &BranchTree,
    removed: &[RemovedStructure],
) -> Result<RgbImage, SegmentError> {
    let (w, h) = (frame.columns as usize, frame.rows as usize);
    let mut sorted: Vec<u16> = frame.samples.to_vec();
    sorted.sort_unstable();
    let lo = f64::from(sorted.get(sorted.len() / 100).copied().unwrap_or(0));
    let hi = f64::from(sorted.get(sorted.len() * 99 / 100).copied().unwrap_or(1)).max(lo + 1.0);
    let mut img =
        Mat::new_rows_cols_with_default(h as i32, w as i32, CV_8UC3, Scalar::all(0.0)).map_err(cv("overlay"))?;
    {
        let px = img.data_typed_mut::<Vec3b>().map_err(cv("overlay"))?;
        for (p, s) in px.iter_mut().zip(frame.samples) {
            let g = ((f64::from(*s) - lo) / (hi - lo) * 255.0).clamp(0.0, 255.0) as u8;
            *p = Vec3b::from([g, g, g]);
        }
    }
    let scale = (w.max(h) as f64 / 512.0).max(0.5);
    let thick = (2.0 * scale).round().max(1.0) as i32;
    // What was removed as not vein, thin and dark red, under the tree.
    for r in removed {
        for pair in r.points.windows(2) {
            let p = |q: [f64; 2]| Point::new(q[0].round() as i32, q[1].round() as i32);
            imgproc::line(&mut img, p(pair[0]), p(pair[1]), Scalar::new(0.0, 0.0, 140.0, 0.0), 1, imgproc::LINE_AA, 0)
                .map_err(cv("overlay"))?;
        }
    }
    for b in &tree.branches {
        let colour = bgr(b.label.rgb());
        for pair in b.points.windows(2) {
            let p = |q: [f64; 2]| Point::new(q[0].round() as i32, q[1].round() as i32);
            imgproc::line(&mut img, p(pair[0]), p(pair[1]), colour, thick, imgproc::LINE_AA, 0)
                .map_err(cv("overlay"))?;
        }
        if let Some(mid) = b.points.get(b.points.len() / 2)
            && b.label != VeinLabel::Branch
            && b.length_px > 40.0 * scale
        {
            text(&mut img, b.label.abbreviation(), Point::new(mid[0] as i32 + 6, mid[1] as i32), colour, scale)?;
        }
    }
    for n in &tree.nodes {
        let (colour, r) = match n.kind {
            NodeKind::Root => (Scalar::new(0.0, 0.0, 255.0, 0.0), 6.0),
            NodeKind::Bifurcation => (Scalar::new(255.0, 255.0, 255.0, 0.0), 3.0),
            NodeKind::End => (Scalar::new(128.0, 128.0, 128.0, 0.0), 2.0),
            NodeKind::Transition => (Scalar::new(200.0, 200.0, 200.0, 0.0), 1.5),
        };
        let c = Point::new(n.xy[0].round() as i32, n.xy[1].round() as i32);
        imgproc::circle(&mut img, c, (r * scale).round() as i32, colour, -1, imgproc::LINE_AA, 0)
            .map_err(cv("overlay"))?;
    }
    // Legend, top left.
    let line_h = (16.0 * scale) as i32;
    for (i, label) in VeinLabel::ALL.iter().enumerate() {
        let y = line_h * (i as i32 + 1);
        let x = (8.0 * scale) as i32;
        imgproc::rectangle(
            &mut img,
            opencv::core::Rect::new(x, y - line_h / 2 - 2, line_h / 2, line_h / 2),
            bgr(label.rgb()),
            -1,
            imgproc::LINE_8,
            0,
        )
        .map_err(cv("overlay"))?;
        text(&mut img, label.abbreviation(), Point::new(x + line_h, y - 2), Scalar::all(255.0), scale)?;
    }
    let banner = tree
        .empty_reason
        .as_deref()
        .map_or_else(|| "csnav research software - not for clinical use".to_owned(), |r| format!("no tree: {r}"));
    text(
        &mut img,
        &banner,
        Point::new((8.0 * scale) as i32, h as i32 - (8.0 * scale) as i32),
        Scalar::all(255.0),
        scale * 0.8,
    )?;
    let data = img.data_bytes().map_err(cv("overlay"))?;
    let mut rgb = Vec::with_capacity(data.len());
    for px in data.chunks_exact(3) {
        rgb.extend_from_slice(&[px[2], px[1], px[0]]);
    }
    Ok(RgbImage { width: w, height: h, data: rgb })
}

fn text(img: &mut Mat, s: &str, at: Point, colour: Scalar, scale: f64) -> Result<(), SegmentError> {
    // A dark outline keeps the text legible on bright and dark backgrounds.
    let font = imgproc::FONT_HERSHEY_SIMPLEX;
    let size = 0.45 * scale;
    let t = scale.round().max(1.0) as i32;
    imgproc::put_text(img, s, at, font, size, Scalar::all(0.0), t + 2, imgproc::LINE_AA, false)
        .map_err(cv("overlay text"))?;
    imgproc::put_text(img, s, at, font, size, colour, t, imgproc::LINE_AA, false).map_err(cv("overlay text"))
}

/// An `f32` image scaled to 8 bits by its maximum (vesselness, top-hat).
#[must_use]
pub fn to_gray8(image: &ImageF32) -> Vec<u8> {
    let max = image.max();
    if max <= 0.0 {
        return vec![0; image.data.len()];
    }
    image.data.iter().map(|v| (v / max * 255.0).clamp(0.0, 255.0).round() as u8).collect()
}
