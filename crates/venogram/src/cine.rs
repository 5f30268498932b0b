//! A decoded cine run: all frames of one XA acquisition as stored samples in the MONOCHROME2
//! convention (higher value = brighter), with the modality rescale and VOI windows that
//! belong to them. Decoding ends here; mapping to display (window/level, LUTs) is a later stage.

use serde::Serialize;

/// Photometric interpretation of the stored samples as found in the file (PS3.3 C.7.6.3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PhotometricInterpretation {
    /// Minimum sample value is displayed white; csnav inverts such samples on ingest.
    Monochrome1,
    /// Minimum sample value is displayed black: the convention of a [`Cine`].
    Monochrome2,
}

impl PhotometricInterpretation {
    /// The DICOM defined term (`MONOCHROME1`, `MONOCHROME2`).
    #[must_use]
    pub fn as_dicom(self) -> &'static str {
        match self {
            Self::Monochrome1 => "MONOCHROME1",
            Self::Monochrome2 => "MONOCHROME2",
        }
    }
}

/// Sample layout of the frames: how many bits each sample carries and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PixelFormat {
    /// Bits Allocated (0028,0100): container size, 8 or 16.
    pub bits_allocated: u16,
    /// Bits Stored (0028,0101): significant bits, `1..=bits_allocated`.
    pub bits_stored: u16,
    /// High Bit (0028,0102): position of the most significant stored bit.
    pub high_bit: u16,
    /// The interpretation in the file, before csnav's MONOCHROME1 inversion.
    pub photometric_in_file: PhotometricInterpretation,
}

impl PixelFormat {
    /// Largest representable stored value, `2^bits_stored - 1`.
    #[must_use]
    pub fn max_stored_value(&self) -> u16 {
        if self.bits_stored >= 16 { u16::MAX } else { (1u16 << self.bits_stored) - 1 }
    }
}

/// That the pixels have been through lossy compression at some point (PS3.3 C.7.6.1.1.5):
/// measurements on them carry the compression error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossyCompression {
    /// Lossy Image Compression Ratio (0028,2112), one value per compression step.
    pub ratios: Vec<f64>,
    /// Lossy Image Compression Method (0028,2114), e.g. `ISO_10918_1` for JPEG.
    pub methods: Vec<String>,
}

/// Modality rescale (0028,1052/1053): `output = slope * stored + intercept`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rescale {
    /// Rescale Slope (0028,1053).
    pub slope: f64,
    /// Rescale Intercept (0028,1052).
    pub intercept: f64,
}

impl Rescale {
    /// Applies the rescale to one stored value.
    #[must_use]
    pub fn apply(&self, stored: f64) -> f64 {
        self.slope * stored + self.intercept
    }
}

/// One VOI window (0028,1050/1051) in modality (rescaled) units, expressed for the
/// MONOCHROME2 samples of the [`Cine`] (a MONOCHROME1 window is mirrored on ingest so that
/// it shows the same picture).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VoiWindow {
    /// Window Center (0028,1050).
    pub center: f64,
    /// Window Width (0028,1051), at least 1.
    pub width: f64,
    /// Window Center & Width Explanation (0028,1055), when given.
    pub explanation: Option<String>,
}

/// All frames of one run, row-major, one `u16` per stored sample, MONOCHROME2 convention.
#[derive(Debug, Clone, PartialEq)]
pub struct Cine {
    rows: u32,
    columns: u32,
    frame_count: u32,
    samples: Vec<u16>,
    /// Sample layout as found in the file.
    pub format: PixelFormat,
    /// Modality rescale, when the file carries one.
    pub rescale: Option<Rescale>,
    /// VOI windows suggested by the file, first is the default.
    pub windows: Vec<VoiWindow>,
    /// Set when the file says its pixels were lossy compressed (by this transfer syntax or
    /// an earlier one).
    pub lossy_compression: Option<LossyCompression>,
    /// Pixel Intensity Relationship (0028,1040): `LIN`, `LOG` or `DISP` (display-mapped).
    pub pixel_intensity_relationship: Option<String>,
}

/// Borrowed view of one frame of a [`Cine`].
#[derive(Debug, Clone, Copy)]
pub struct FrameView<'a> {
    /// Rows of the frame (image height in pixels).
    pub rows: u32,
    /// Columns of the frame (image width in pixels).
    pub columns: u32,
    /// Row-major samples, `rows * columns` of them.
    pub samples: &'a [u16],
}

impl FrameView<'_> {
    /// Sample at `(column, row)`, `None` outside the frame.
    #[must_use]
    pub fn get(&self, column: u32, row: u32) -> Option<u16> {
        if column >= self.columns || row >= self.rows {
            return None;
        }
        self.samples.get(row as usize * self.columns as usize + column as usize).copied()
    }

    /// Mean stored value of the frame (a cheap opacification cue).
    #[must_use]
    pub fn mean(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.samples.iter().map(|&s| f64::from(s)).sum::<f64>() / self.samples.len() as f64
    }
}

/// Why a set of frames cannot form a [`Cine`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CineShapeError {
    /// A dimension or the frame count is zero.
    #[error("a cine needs at least one frame of at least 1x1 pixels (got {frames} frames of {columns}x{rows})")]
    Empty {
        /// Frame count given.
        frames: u32,
        /// Rows given.
        rows: u32,
        /// Columns given.
        columns: u32,
    },
    /// The sample buffer does not hold exactly `frames * rows * columns` samples.
    #[error("expected {expected} samples for the frames described, got {actual}")]
    Length {
        /// Samples needed.
        expected: usize,
        /// Samples given.
        actual: usize,
    },
}

impl Cine {
    /// Builds a cine from contiguous frames; the buffer length must match the shape.
    pub fn new(
        rows: u32,
        columns: u32,
        frame_count: u32,
        samples: Vec<u16>,
        format: PixelFormat,
    ) -> Result<Self, CineShapeError> {
        if rows == 0 || columns == 0 || frame_count == 0 {
            return Err(CineShapeError::Empty { frames: frame_count, rows, columns });
        }
        let expected = rows as usize * columns as usize * frame_count as usize;
        if samples.len() != expected {
            return Err(CineShapeError::Length { expected, actual: samples.len() });
        }
        Ok(Self {
            rows,
            columns,
            frame_count,
            samples,
            format,
            rescale: None,
            windows: Vec::new(),
            lossy_compression: None,
            pixel_intensity_relationship: None,
        })
    }

    /// Rows per frame (image height in pixels).
    #[must_use]
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Columns per frame (image width in pixels).
    #[must_use]
    pub fn columns(&self) -> u32 {
        self.columns
    }

    /// Number of frames in the run.
    #[must_use]
    pub fn frame_count(&self) -> u32 {
        self.frame_count
    }

    /// Samples per frame.
    #[must_use]
    pub fn pixels_per_frame(&self) -> usize {
        self.rows as usize * self.columns as usize
    }

    /// One frame, `None` past the last.
    #[must_use]
    pub fn frame(&self, index: u32) -> Option<FrameView<'_>> {
        if index >= self.frame_count {
            return None;
        }
        let n = self.pixels_per_frame();
        let start = index as usize * n;
        Some(FrameView { rows: self.rows, columns: self.columns, samples: &self.samples[start..start + n] })
    }

    /// All frames in order.
    #[must_use = "the iterator does nothing unless consumed"]
    pub fn frames(&self) -> impl ExactSizeIterator<Item = FrameView<'_>> {
        self.samples.chunks_exact(self.pixels_per_frame()).map(|samples| FrameView {
            rows: self.rows,
            columns: self.columns,
            samples,
        })
    }

    /// All samples of all frames, frame after frame.
    #[must_use]
    pub fn samples(&self) -> &[u16] {
        &self.samples
    }

    /// Gives up the samples (all frames, row-major), e.g. to a recorder, without copying them.
    #[must_use]
    pub fn into_samples(self) -> Vec<u16> {
        self.samples
    }

    /// Mutable samples, for in-place conversions during ingest.
    pub(crate) fn samples_mut(&mut self) -> &mut [u16] {
        &mut self.samples
    }

    /// The default display window: the file's first VOI window, else the full stored range
    /// through the rescale.
    #[must_use]
    pub fn default_window(&self) -> VoiWindow {
        if let Some(w) = self.windows.first() {
            return w.clone();
        }
        let rescale = self.rescale.unwrap_or(Rescale { slope: 1.0, intercept: 0.0 });
        let lo = rescale.apply(0.0);
        let hi = rescale.apply(f64::from(self.format.max_stored_value()));
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        VoiWindow { center: f64::midpoint(lo, hi) + 0.5, width: (hi - lo + 1.0).max(1.0), explanation: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format12() -> PixelFormat {
        PixelFormat {
            bits_allocated: 16,
            bits_stored: 12,
            high_bit: 11,
            photometric_in_file: PhotometricInterpretation::Monochrome2,
        }
    }

    #[test]
    fn frames_are_contiguous_views() {
        let cine = Cine::new(2, 3, 2, (0..12).collect(), format12()).unwrap();
        let f1 = cine.frame(1).unwrap();
        assert_eq!(f1.samples, &[6, 7, 8, 9, 10, 11]);
        assert_eq!(f1.get(2, 1), Some(11));
        assert_eq!(f1.get(3, 0), None);
        assert!(cine.frame(2).is_none());
        assert_eq!(cine.frames().count(), 2);
    }

    #[test]
    fn shape_is_checked() {
        assert!(matches!(Cine::new(2, 2, 1, vec![0; 3], format12()), Err(CineShapeError::Length { .. })));
        assert!(matches!(Cine::new(0, 2, 1, vec![], format12()), Err(CineShapeError::Empty { .. })));
    }

    #[test]
    fn default_window_spans_stored_range() {
        let cine = Cine::new(1, 1, 1, vec![0], format12()).unwrap();
        let w = cine.default_window();
        assert!((w.width - 4096.0).abs() < 1e-9);
        assert!((w.center - 2048.0).abs() < 1e-9);
    }
}
