//! Image buffers of the segmentation pipeline and their bridge to OpenCV `Mat`s.

use opencv::core::{Mat, MatTraitConst as _, MatTraitConstManual as _};

use super::SegmentError;

/// A single-channel `f32` image, row-major, `x` the column and `y` the row.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageF32 {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Samples, `width * height`, row-major.
    pub data: Vec<f32>,
}

impl ImageF32 {
    /// An image of zeros.
    #[must_use]
    pub fn zeros(width: usize, height: usize) -> Self {
        Self { width, height, data: vec![0.0; width * height] }
    }

    /// The sample at column `x`, row `y` (no bounds check beyond the slice's).
    #[must_use]
    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }

    /// The sample nearest to a sub-pixel position, clamped into the image.
    #[must_use]
    pub fn at_clamped(&self, x: f64, y: f64) -> f32 {
        let xi = (x.round().max(0.0) as usize).min(self.width.saturating_sub(1));
        let yi = (y.round().max(0.0) as usize).min(self.height.saturating_sub(1));
        self.at(xi, yi)
    }

    /// Borrows the samples as an OpenCV `Mat` (no copy).
    pub(crate) fn as_mat(&self) -> Result<opencv::boxed_ref::BoxedRef<'_, Mat>, SegmentError> {
        Mat::new_rows_cols_with_data(self.height as i32, self.width as i32, &self.data).map_err(cv("borrow image"))
    }

    /// Copies a continuous `CV_32F` `Mat` into an image.
    pub(crate) fn from_mat(mat: &Mat) -> Result<Self, SegmentError> {
        let data = mat.data_typed::<f32>().map_err(cv("read image"))?.to_vec();
        Ok(Self { width: mat.cols() as usize, height: mat.rows() as usize, data })
    }

    /// The image reduced to half size (rounded up) by OpenCV's `pyrDown` (5-tap binomial
    /// smoothing, sigma one pixel of this image, then every other sample).
    pub(crate) fn pyr_down(&self) -> Result<Self, SegmentError> {
        let mut dst = Mat::default();
        let size = opencv::core::Size::new(self.width.div_ceil(2) as i32, self.height.div_ceil(2) as i32);
        opencv::imgproc::pyr_down(&self.as_mat()?, &mut dst, size, opencv::core::BORDER_DEFAULT)
            .map_err(cv("pyramid"))?;
        Self::from_mat(&dst)
    }

    /// The image smoothed by a Gaussian of `sigma` pixels, borders reflected (OpenCV's
    /// separable, vectorised filter); `step` names the caller's step in errors.
    pub(crate) fn gaussian(&self, sigma: f64, step: &'static str) -> Result<Self, SegmentError> {
        let mut dst = Mat::default();
        let size = opencv::core::Size::new(0, 0);
        opencv::imgproc::gaussian_blur(&self.as_mat()?, &mut dst, size, sigma, sigma, opencv::core::BORDER_REFLECT)
            .map_err(cv(step))?;
        Self::from_mat(&dst)
    }

    /// Largest sample (0 for an empty image).
    #[must_use]
    pub fn max(&self) -> f32 {
        self.data.iter().copied().fold(0.0, f32::max)
    }
}

/// Pyramid levels between a frame of matrix factor `k` (1 at 512) and the level nearest a
/// 512 matrix: 0 at 512, 1 at 1024.
pub(crate) fn levels_to_512(k: f64) -> u32 {
    k.log2().round().max(0.0) as u32
}

impl ImageF32 {
    /// The image reduced `levels` times by [`ImageF32::pyr_down`] (borrowed when none).
    pub(crate) fn pyramid_level(&self, levels: u32) -> Result<std::borrow::Cow<'_, Self>, SegmentError> {
        let mut level = std::borrow::Cow::Borrowed(self);
        for _ in 0..levels {
            level = std::borrow::Cow::Owned(level.pyr_down()?);
        }
        Ok(level)
    }
}

/// An image computed on a coarser level of a frame's Gaussian pyramid, read at the frame's
/// coordinates.
#[derive(Debug, Clone)]
pub struct LevelImage {
    /// The level's samples.
    pub image: ImageF32,
    /// Pyramid levels between the frame and `image` (each halves the sides, rounding up).
    pub levels: u32,
}

impl LevelImage {
    /// The level's sample covering frame pixel (`x`, `y`).
    #[must_use]
    pub fn at_pixel(&self, x: usize, y: usize) -> f32 {
        self.image.data[self.index_of_pixel(x, y)]
    }

    /// Index in the level's samples of the one covering frame pixel (`x`, `y`), clamped into
    /// the level (so a per-sample table of the level can be read at frame pixels too).
    #[must_use]
    pub fn index_of_pixel(&self, x: usize, y: usize) -> usize {
        let r = &self.image;
        let (lx, ly) = ((x >> self.levels).min(r.width - 1), (y >> self.levels).min(r.height - 1));
        ly * r.width + lx
    }

    /// The level's sample nearest frame position (`x`, `y`), clamped into the image.
    #[must_use]
    pub fn at_frame(&self, x: f64, y: f64) -> f32 {
        let scale = f64::from(1u32 << self.levels);
        self.image.at_clamped((x + 0.5) / scale - 0.5, (y + 0.5) / scale - 0.5)
    }
}

/// A binary image (`true` = foreground), row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// 0 or 255 per pixel (the OpenCV convention, so it can be handed over without copying).
    pub data: Vec<u8>,
}

impl Mask {
    /// An empty mask.
    #[must_use]
    pub fn empty(width: usize, height: usize) -> Self {
        Self { width, height, data: vec![0; width * height] }
    }

    /// Whether pixel (`x`, `y`) is set.
    #[must_use]
    pub fn get(&self, x: usize, y: usize) -> bool {
        self.data[y * self.width + x] != 0
    }

    /// Sets pixel (`x`, `y`).
    pub fn set(&mut self, x: usize, y: usize, on: bool) {
        self.data[y * self.width + x] = if on { 255 } else { 0 };
    }

    /// Number of set pixels.
    #[must_use]
    pub fn count(&self) -> usize {
        self.data.iter().filter(|v| **v != 0).count()
    }

    /// Borrows the mask as an 8-bit OpenCV `Mat` (no copy).
    pub(crate) fn as_mat(&self) -> Result<opencv::boxed_ref::BoxedRef<'_, Mat>, SegmentError> {
        Mat::new_rows_cols_with_data(self.height as i32, self.width as i32, &self.data).map_err(cv("borrow mask"))
    }
}

/// Maps an OpenCV error to a [`SegmentError`] naming the step that failed.
pub(crate) fn cv(step: &'static str) -> impl Fn(opencv::Error) -> SegmentError {
    move |e| SegmentError::OpenCv { step, message: e.message }
}
