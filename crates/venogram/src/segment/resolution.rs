//! The working resolution: a frame of a 1024 (or 2048) matrix is segmented binned to the 512
//! matrix, and the result is mapped back to the frame's own pixels.
//!
//! The pipeline's costs grow with the pixel count, and at 1024 it does not keep up with a
//! 15-30 frame/s cine on two cores. A 2x2 bin is what a flat-panel detector does itself in its
//! 512 mode: the smallest veins the workstation names (about 1 mm across, 4 px at a 1024
//! matrix of a 25 cm field) are still 2 px across after it, the scale the pipeline's finest
//! filters (radius 1 px, the line detector) are made for, and the noise of each binned pixel
//! halves. Binning is a box average taken straight from the frame's samples
//! ([`Binning::attenuation`]; the tests check it against OpenCV's `INTER_AREA`); working pixel `(i, j)` covers native pixels `f i .. f i + f - 1`, so its centre is at
//! native `f i + (f - 1) / 2`. Images are brought back by bilinear interpolation; masks and
//! the radius image by giving each native pixel its working pixel's value (radii times `f`);
//! centerline points map to native coordinates, lengths and radii scale by `f`.
//! `SegmentParams::full_resolution` segments at the native matrix instead.

use std::sync::Arc;

use opencv::core::{Mat, Size};
use opencv::imgproc;

use super::SegmentError;
use super::balloon::Balloon;
use super::enhance::{Enhanced, Scales};
use super::frame_select::attenuation;
use super::image::{ImageF32, Mask, cv};
use super::pipeline::{RemovedStructure, SegmentParams, Segmentation};
use super::tree::BranchTree;
use crate::cine::FrameView;
use crate::geometry::CArmProjection;
use rayon::prelude::*;

/// The smallest larger side, pixels, a frame is binned down to.
pub const WORKING_MATRIX_PX: usize = 512;

/// How many native pixels make one working pixel along each axis (a power of two, 1 when the
/// frame is segmented at its own matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binning {
    factor: usize,
}

impl Binning {
    /// No binning.
    pub const NONE: Self = Self { factor: 1 };

    /// The binning of a `width` x `height` frame: halved while both sides divide evenly and the
    /// larger stays at least [`WORKING_MATRIX_PX`]; none when `full_resolution`.
    #[must_use]
    pub fn for_frame(width: usize, height: usize, full_resolution: bool) -> Self {
        let mut factor = 1;
        while !full_resolution
            && width.is_multiple_of(2 * factor)
            && height.is_multiple_of(2 * factor)
            && width.max(height) / (2 * factor) >= WORKING_MATRIX_PX
        {
            factor *= 2;
        }
        Self { factor }
    }

    /// Native pixels per working pixel along each axis.
    #[must_use]
    pub fn factor(self) -> usize {
        self.factor
    }

    fn f(self) -> f64 {
        self.factor as f64
    }

    /// Native pixel coordinates `(x, y)` of a working-pixel position.
    #[must_use]
    pub fn native_from_working(self, p: [f64; 2]) -> [f64; 2] {
        let offset = 0.5 * (self.f() - 1.0);
        [self.f() * p[0] + offset, self.f() * p[1] + offset]
    }

    /// Working pixel coordinates `(x, y)` of a native-pixel position.
    #[must_use]
    pub fn working_from_native(self, p: [f64; 2]) -> [f64; 2] {
        let offset = 0.5 * (self.f() - 1.0);
        [(p[0] - offset) / self.f(), (p[1] - offset) / self.f()]
    }

    /// A working-resolution image brought to `width` x `height`, bilinear.
    fn upsample(image: &ImageF32, width: usize, height: usize) -> Result<ImageF32, SegmentError> {
        let mut dst = Mat::default();
        let size = Size::new(width as i32, height as i32);
        imgproc::resize(&image.as_mat()?, &mut dst, size, 0.0, 0.0, imgproc::INTER_LINEAR).map_err(cv("upsampling"))?;
        ImageF32::from_mat(&dst)
    }

    /// Working-resolution samples (`data`, rows of `working_width`) brought to `width` x
    /// `height` by giving every native pixel the value of the working pixel it lies in, mapped
    /// by `value`.
    fn replicate<T: Copy + Send + Sync, U: Copy + Default + Send>(
        self,
        data: &[T],
        working_width: usize,
        (width, height): (usize, usize),
        value: impl Fn(T) -> U + Sync,
    ) -> Vec<U> {
        let f = self.factor;
        let mut out = vec![U::default(); width * height];
        out.par_chunks_mut(width).enumerate().for_each(|(y, row)| {
            let Some(source) = data.chunks(working_width).nth(y / f) else { return };
            for (block, v) in row.chunks_mut(f).zip(source) {
                block.fill(value(*v));
            }
        });
        out
    }

    /// A working-resolution mask brought to `width` x `height`. Each native pixel takes its
    /// working pixel's value: at a 2x2 bin that is exactly the bilinear mask kept where it
    /// reaches half (the working pixel a native one lies in weighs 9/16, the three others 7/16
    /// together).
    fn upsample_mask(self, mask: &Mask, width: usize, height: usize) -> Mask {
        Mask { width, height, data: self.replicate(&mask.data, mask.width, (width, height), |v| v) }
    }

    /// The settings for the working resolution: the seed, pixel spacing, scales and projection
    /// of `params` expressed in working pixels.
    #[must_use]
    pub fn working_params(self, params: &SegmentParams) -> SegmentParams {
        if self.factor == 1 {
            return params.clone();
        }
        let f = self.f();
        SegmentParams {
            seed_xy: params.seed_xy.map(|p| self.working_from_native(p)),
            pixel_spacing_mm: params.pixel_spacing_mm.map(|s| s * f),
            scales: params
                .scales
                .as_ref()
                .map(|s| Scales { radii_px: s.radii_px.iter().map(|r| r / f as f32).collect() }),
            projection: params.projection.as_ref().map(|p| binned_projection(p, f)),
            vessel_mask: params.vessel_mask.as_ref().map(|m| Arc::new(self.working_mask(m))),
            ..params.clone()
        }
    }

    /// A native-matrix mask at the working resolution: a working pixel is foreground when any
    /// native pixel it bins is (a vessel a native pixel wide stays connected, as binning the
    /// samples keeps it visible).
    #[must_use]
    pub fn working_mask(self, mask: &Mask) -> Mask {
        let f = self.factor;
        let (width, height) = (mask.width / f, mask.height / f);
        let data = (0..width * height)
            .map(|i| {
                let (x, y) = (i % width * f, i / width * f);
                let any = (0..f).any(|dy| mask.data[(y + dy) * mask.width + x..][..f].iter().any(|v| *v != 0));
                if any { 255 } else { 0 }
            })
            .collect();
        Mask { width, height, data }
    }

    /// The attenuation image (`1 - sample / max`) of a frame at the working resolution, binned
    /// straight from the samples in one pass.
    #[must_use]
    pub fn attenuation(self, frame: &FrameView<'_>, max_value: u16) -> ImageF32 {
        if self.factor == 1 {
            return attenuation(frame, max_value);
        }
        let f = self.factor;
        let (width, height) = (frame.columns as usize / f, frame.rows as usize / f);
        let native_width = frame.columns as usize;
        let scale = 1.0 / (f32::from(max_value.max(1)) * (f * f) as f32);
        let mut data = vec![0f32; width * height];
        data.par_chunks_mut(width).enumerate().for_each(|(y, row)| {
            let mut sums = vec![0u32; width];
            for native in frame.samples[y * f * native_width..(y + 1) * f * native_width].chunks_exact(native_width) {
                for (sum, bin) in sums.iter_mut().zip(native.chunks_exact(f)) {
                    *sum += bin.iter().map(|s| u32::from(*s)).sum::<u32>();
                }
            }
            for (out, sum) in row.iter_mut().zip(&sums) {
                *out = 1.0 - *sum as f32 * scale;
            }
        });
        ImageF32 { width, height, data }
    }

    /// A working-resolution segmentation with its tree, mask, removed structures and balloon
    /// expressed in the pixels of a `width` x `height` frame; its enhancement images and
    /// candidate mask stay at the working resolution ([`Segmentation::native_enhanced`] and
    /// [`Segmentation::native_candidate_mask`] bring them to the frame's pixels when wanted).
    #[must_use]
    pub fn to_native(self, seg: Segmentation, width: usize, height: usize) -> Segmentation {
        if self.factor == 1 {
            return seg;
        }
        let f = self.f();
        let map = |p: &[f64; 2]| self.native_from_working(*p);
        let mut tree: BranchTree = seg.tree;
        for node in &mut tree.nodes {
            node.xy = map(&node.xy);
        }
        for branch in &mut tree.branches {
            branch.points.iter_mut().for_each(|p| *p = map(p));
            branch.radius_px.iter_mut().for_each(|r| *r *= f);
            branch.length_px *= f;
        }
        Segmentation {
            tree,
            mask: self.upsample_mask(&seg.mask, width, height),
            removed: seg
                .removed
                .into_iter()
                .map(|r| RemovedStructure { kind: r.kind, points: r.points.iter().map(map).collect() })
                .collect(),
            balloon: seg.balloon.map(|b| Balloon { center_xy: map(&b.center_xy), radius_px: b.radius_px * f, ..b }),
            binning: self,
            ..seg
        }
    }

    /// Working-resolution enhancement images brought to a `width` x `height` frame: top-hat
    /// and vesselness bilinear, the radius (one of the scales' radii, not a blend of two)
    /// replicated and in native pixels.
    pub fn enhanced_to_native(
        self,
        enhanced: &Enhanced,
        width: usize,
        height: usize,
    ) -> Result<Enhanced, SegmentError> {
        if self.factor == 1 {
            return Ok(enhanced.clone());
        }
        let (tophat, vesselness) = rayon::join(
            || Self::upsample(&enhanced.tophat, width, height),
            || Self::upsample(&enhanced.vesselness, width, height),
        );
        let gain = self.factor as f32;
        let radius = &enhanced.radius_px;
        let radius_px =
            ImageF32 { width, height, data: self.replicate(&radius.data, radius.width, (width, height), |r| r * gain) };
        Ok(Enhanced { tophat: tophat?, vesselness: vesselness?, radius_px })
    }

    /// A working-resolution mask brought to a `width` x `height` frame.
    #[must_use]
    pub fn mask_to_native(self, mask: &Mask, width: usize, height: usize) -> Mask {
        if self.factor == 1 {
            return mask.clone();
        }
        self.upsample_mask(mask, width, height)
    }
}

/// The projection of a view onto the working pixels of a frame binned `f` x `f`: working
/// coordinates are `(native - (f - 1) / 2) / f`.
fn binned_projection(p: &CArmProjection, f: f64) -> CArmProjection {
    let offset = 0.5 * (f - 1.0);
    let working_from_native =
        nalgebra::Matrix3::new(1.0 / f, 0.0, -offset / f, 0.0, 1.0 / f, -offset / f, 0.0, 0.0, 1.0);
    CArmProjection {
        image_from_patient: working_from_native * p.image_from_patient,
        intrinsics: working_from_native * p.intrinsics,
        ..p.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenCV's box average (`resize` with `INTER_AREA` at an integer factor), the reference
    /// for [`Binning::attenuation`].
    fn bin(binning: Binning, image: &ImageF32) -> ImageF32 {
        let f = binning.factor();
        let size = Size::new((image.width / f) as i32, (image.height / f) as i32);
        let mut dst = Mat::default();
        imgproc::resize(&image.as_mat().unwrap(), &mut dst, size, 0.0, 0.0, imgproc::INTER_AREA).unwrap();
        ImageF32::from_mat(&dst).unwrap()
    }

    #[test]
    fn a_1024_frame_is_binned_to_512_and_odd_or_small_frames_are_not() {
        assert_eq!(Binning::for_frame(1024, 1024, false).factor(), 2);
        assert_eq!(Binning::for_frame(2048, 2048, false).factor(), 4);
        assert_eq!(Binning::for_frame(1024, 768, false).factor(), 2);
        assert_eq!(Binning::for_frame(512, 512, false).factor(), 1);
        assert_eq!(Binning::for_frame(1000, 1000, false).factor(), 1);
        assert_eq!(Binning::for_frame(1023, 1024, false).factor(), 1);
        assert_eq!(Binning::for_frame(1024, 1024, true).factor(), 1);
    }

    #[test]
    fn a_mask_is_binned_keeping_a_one_pixel_line_and_nothing_else() {
        let b = Binning::for_frame(1024, 1024, false);
        let mut native = Mask::empty(1024, 1024);
        // A diagonal line one native pixel wide, and nothing else.
        for i in 100..900 {
            native.data[i * 1024 + i] = 255;
        }
        let working = b.working_mask(&native);
        assert_eq!((working.width, working.height), (512, 512));
        for y in 0..512 {
            for x in 0..512 {
                let on = (50..450).contains(&x) && x == y;
                assert_eq!(working.data[y * 512 + x] != 0, on, "({x}, {y})");
            }
        }
        assert_eq!(Binning::NONE.working_mask(&native), native);
    }

    #[test]
    fn coordinates_round_trip_and_pixel_centres_land_between_the_binned_pixels() {
        let b = Binning::for_frame(1024, 1024, false);
        // Working pixel 0 covers native pixels 0 and 1: its centre is native 0.5.
        let near = |p: [f64; 2], q: [f64; 2]| (p[0] - q[0]).abs() < 1e-12 && (p[1] - q[1]).abs() < 1e-12;
        assert!(near(b.native_from_working([0.0, 0.0]), [0.5, 0.5]));
        assert!(near(b.native_from_working([255.0, 10.0]), [510.5, 20.5]));
        let p = [123.25, 987.5];
        assert!(near(b.native_from_working(b.working_from_native(p)), p));
    }

    #[test]
    fn binning_is_a_box_average() {
        // Sample means 4 and 2 of a maximum of 8: attenuations 0.5 and 0.75.
        let samples = [1u16, 3, 0, 0, 5, 7, 0, 8];
        let frame = FrameView { rows: 2, columns: 4, samples: &samples };
        let binned = Binning { factor: 2 }.attenuation(&frame, 8);
        assert_eq!((binned.width, binned.height), (2, 1));
        assert_eq!(binned.data, vec![0.5, 0.75]);
    }

    #[test]
    fn a_frame_binned_from_its_samples_matches_its_attenuation_binned() {
        let (w, h) = (1024usize, 1024usize);
        let samples: Vec<u16> = (0..w * h).map(|i| ((i * 7919 + i / w * 13) % 4096) as u16).collect();
        let frame = FrameView { rows: h as u32, columns: w as u32, samples: &samples };
        let b = Binning::for_frame(w, h, false);
        let direct = b.attenuation(&frame, 4095);
        let via_image = bin(b, &attenuation(&frame, 4095));
        assert_eq!((direct.width, direct.height), (512, 512));
        let worst = direct.data.iter().zip(&via_image.data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-5, "{worst}");
    }

    #[test]
    fn the_binned_projection_puts_a_point_where_binning_puts_its_pixel() {
        let native = CArmProjection::new(30.0, 10.0, 1100.0, 780.0, [0.2, 0.2], 1024, 1024).unwrap();
        let b = Binning::for_frame(1024, 1024, false);
        let working = binned_projection(&native, 2.0);
        for point in [nalgebra::Point3::new(0.0, 0.0, 0.0), nalgebra::Point3::new(40.0, -25.0, 60.0)] {
            let n = native.project(&point).unwrap();
            let w = working.project(&point).unwrap();
            let back = b.native_from_working([w.x, w.y]);
            assert!((back[0] - n.x).abs() < 1e-9 && (back[1] - n.y).abs() < 1e-9, "{back:?} vs {n:?}");
        }
        // The isocentre lands on the working image's centre.
        let centre = working.project(&nalgebra::Point3::origin()).unwrap();
        assert!((centre.x - 255.5).abs() < 1e-9 && (centre.y - 255.5).abs() < 1e-9);
    }

    #[test]
    fn a_mask_comes_back_at_the_frame_size_covering_the_same_pixels() {
        let mut mask = Mask::empty(8, 8);
        for y in 2..6 {
            for x in 3..5 {
                mask.set(x, y, true);
            }
        }
        let b = Binning { factor: 2 };
        let up = b.upsample_mask(&mask, 16, 16);
        assert_eq!((up.width, up.height), (16, 16));
        // Native pixels 6..10 by 4..12 are inside the binned pixels 3..5 by 2..6.
        for y in 4..12 {
            for x in 6..10 {
                assert!(up.get(x, y), "({x}, {y}) off");
            }
        }
        assert!(!up.get(2, 8) && !up.get(13, 8) && !up.get(8, 1) && !up.get(8, 14));
    }
}
