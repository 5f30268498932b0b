//! Stage 1: the best-opacified frame of a run.
//!
//! The contrast curve of the run is its vessel energy per frame: the sum, over a frame
//! reduced to at most 256 px across, of the background-suppressed attenuation weighted by
//! its vesselness. Devices and bones are in every frame and add a constant; the contrast
//! front adds the rest, so the curve rises with filling and falls with washout.

use opencv::core::{Mat, Size};
use opencv::imgproc;

use super::SegmentError;
use super::enhance::suppress_background;
use super::image::{ImageF32, cv};
use crate::cine::{Cine, FrameView};

/// The frame chosen from a run and the curve it was chosen from.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameSelection {
    /// The best-opacified frame (0-based).
    pub frame: u32,
    /// The least-opacified frame before it (the pre-contrast reference).
    pub baseline_frame: u32,
    /// Vessel energy per frame (arbitrary units).
    pub energy: Vec<f64>,
    /// Whether the curve shows contrast filling: the peak clearly above the baseline.
    pub filling: bool,
}

/// Rise of the energy over the baseline that counts as contrast filling.
pub(crate) const FILLING_RATIO: f64 = 1.25;

/// Attenuation-like image of a frame: `1 - sample / max`, so contrast-filled vessels are bright.
pub(crate) fn attenuation(frame: &FrameView<'_>, max_value: u16) -> ImageF32 {
    let scale = 1.0 / f32::from(max_value.max(1));
    ImageF32 {
        width: frame.columns as usize,
        height: frame.rows as usize,
        data: frame.samples.iter().map(|s| 1.0 - f32::from(*s) * scale).collect(),
    }
}

/// Vessel energy of one frame.
pub fn frame_energy(frame: &FrameView<'_>, max_value: u16) -> Result<f64, SegmentError> {
    let a = attenuation(frame, max_value);
    let factor = (a.width.max(a.height) as f32 / 256.0).max(1.0);
    let size = Size::new(((a.width as f32 / factor) as i32).max(1), ((a.height as f32 / factor) as i32).max(1));
    let src = a.as_mat()?;
    let mut small = Mat::default();
    imgproc::resize(&src, &mut small, size, 0.0, 0.0, imgproc::INTER_AREA).map_err(cv("reduce frame"))?;
    let small = ImageF32::from_mat(&small)?;
    let k = small.width as f32 / 512.0;
    let t = suppress_background(&small, 12.0 * k)?;
    // Absolute units (attenuation above the noise), so frames compare with one another.
    let floor = 3.0 * super::pipeline::noise_sigma(&small) + 1.0 / f32::from(max_value.max(1));
    // Squared, so deep (contrast-filled) structures outweigh wide shallow ones (ribs).
    Ok(t.data.iter().map(|t| f64::from((t - floor).max(0.0)).powi(2)).sum())
}

/// Chooses the best-opacified frame of `cine`.
pub fn select_frame(cine: &Cine) -> Result<FrameSelection, SegmentError> {
    let max_value = cine.format.max_stored_value();
    let energy = cine.frames().map(|f| frame_energy(&f, max_value)).collect::<Result<Vec<_>, _>>()?;
    let frame = energy.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
    let baseline_frame = energy[..=frame.min(energy.len().saturating_sub(1))]
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    tracing::debug!(?energy, frame, baseline_frame, "contrast curve");
    let filling = energy.len() > 1 && energy[frame] > FILLING_RATIO * energy[baseline_frame] + 1e-9;
    Ok(FrameSelection { frame: frame as u32, baseline_frame: baseline_frame as u32, energy, filling })
}
