//! Where along the AV groove a point of the trunk lies, from the view's geometry.
//!
//! The textbook heart's groove ring (CS ostium at 222 degrees around the LV long axis, round
//! the lateral wall to the anterior interventricular groove at -22 degrees) and the AIV
//! (from there down toward the apex) are projected with the run's C-arm projection. The
//! segmented trunk is then matched to that curve: a monotone assignment of trunk points to
//! model samples (dynamic time warping at equal arc steps, so the trunk can neither skip
//! a stretch of groove nor drift far from its length) alternating with a robust 2D similarity fit (Umeyama) that absorbs where
//! the heart sits, its size and a little of its rotation. Each trunk point then has an angle
//! around the groove (or lies on the AIV) and a 3D arc length from the ostium, which a 2D arc
//! length cannot give in a foreshortened view: in RAO the groove is seen edge-on.

use nalgebra::{Matrix2, Matrix4, Vector2, Vector4};

use super::graph::polyline_length;
use crate::atlas::{self, TextbookHeart};
use crate::geometry::CArmProjection;

/// Depth of the groove (negative: just above the base plane), as a fraction of base to apex.
const GROOVE_DEPTH: f64 = -0.0275;
/// How far the vessel centerline lies outside the epicardium, mm (about a GCV radius).
const VESSEL_OFFSET_MM: f64 = 2.5;
/// How deep toward the apex the AIV model runs (fraction of base to apex).
const AIV_DEPTH: f64 = 0.9;
/// The trunk's first point may match the model this far past the textbook ostium, mm.
const FREE_START_MM: f64 = 20.0;
/// Bounds of the fitted scale (heart size and magnification against the textbook's).
const SCALE_RANGE: (f64, f64) = (0.75, 1.33);
/// Bound of the fitted in-plane rotation (the heart's own, against the textbook), degrees.
const MAX_ROTATION_DEG: f64 = 15.0;
/// Weight of the prior holding the rotation at the projection's, per squared pixel of
/// model spread (a twentieth of what a rotation would cost if every point moved normal to
/// the curve).
const ROTATION_PRIOR: f64 = 0.05;
/// Most trunk points the match works on (the trunk is resampled to this).
const MAX_TRUNK_SAMPLES: usize = 300;
/// A step along only the trunk or only the model costs as much as this many resampling
/// steps of distance, squared.
const SKIP_COST_STEPS: f64 = 2.5;
/// Most points of a vein's course that a course match looks at.
const MAX_COURSE_SAMPLES: usize = 60;

/// Where a model sample lies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum GrooveSite {
    /// On the AV-groove ring, at this angle around the long axis (degrees).
    Ring { angle_deg: f64 },
    /// On the AIV, below the anterior groove.
    Aiv,
}

/// One sample of the projected model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ModelSample {
    /// Image position, pixels.
    pub xy: [f64; 2],
    /// 3D arc length from the textbook ostium, mm.
    pub arc_mm: f64,
    /// Ring or AIV.
    pub site: GrooveSite,
}

/// The textbook groove and AIV as seen in one view.
#[derive(Debug, Clone)]
pub(crate) struct GrooveModel {
    samples: Vec<ModelSample>,
}

/// How well a vein's course follows the model's AIV.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AivMatch {
    /// RMS distance of the course from the placed AIV, pixels.
    pub rms_px: f64,
    /// Length of the course over the length of the placed AIV.
    pub coverage: f64,
}

/// The model matched to a trunk.
#[derive(Debug, Clone)]
pub(crate) struct GrooveFit {
    /// Per trunk point (as given to [`GrooveModel::fit`]), the model sample it matches.
    pub sample_of_point: Vec<ModelSample>,
    /// RMS distance of the matched points after the fit, pixels.
    pub rms_px: f64,
    /// Fitted scale against the projected textbook heart.
    pub scale: f64,
    /// Fitted in-plane rotation against the projected textbook heart, degrees.
    pub rotation_deg: f64,
    /// Where the fit placed the projected textbook heart.
    placement: Placement,
}

impl GrooveModel {
    /// The model projected with `projection`; `None` if part of it projects behind the source.
    pub fn project(projection: &CArmProjection) -> Option<Self> {
        let heart = TextbookHeart::new();
        let mut points = Vec::new();
        let (start, end) = (atlas::OSTIUM_ANGLE_DEG, atlas::ANTERIOR_GROOVE_ANGLE_DEG);
        let ring_steps = (start - end).abs().ceil() as usize;
        for i in 0..=ring_steps {
            let angle_deg = start + (end - start) * i as f64 / ring_steps as f64;
            points.push((heart.point(GROOVE_DEPTH, angle_deg, VESSEL_OFFSET_MM), GrooveSite::Ring { angle_deg }));
        }
        let aiv_steps = 100;
        for i in 1..=aiv_steps {
            let depth = GROOVE_DEPTH + (AIV_DEPTH - GROOVE_DEPTH) * f64::from(i) / f64::from(aiv_steps);
            points.push((heart.point(depth, end, VESSEL_OFFSET_MM), GrooveSite::Aiv));
        }
        let mut samples = Vec::with_capacity(points.len());
        let mut arc_mm = 0.0;
        for (i, (p, site)) in points.iter().enumerate() {
            if i > 0 {
                arc_mm += (p - points[i - 1].0).norm();
            }
            let xy = projection.project(p)?;
            samples.push(ModelSample { xy: [xy.x, xy.y], arc_mm, site: *site });
        }
        Some(Self { samples })
    }

    /// The model's samples: the ring from the ostium, then the AIV.
    #[cfg(test)]
    pub fn samples(&self) -> &[ModelSample] {
        &self.samples
    }

    /// How closely `course` (a vein's points from its takeoff on) follows the model's AIV
    /// (from the anterior groove toward the apex) as `fit` placed it; `None` for a course
    /// of fewer than two points. In RAO the groove is seen edge-on and the AIV runs back
    /// over the GCV before it leaves it, so the trunk traced in the image can end where the
    /// groove folds while the AIV appears as a side branch further back.
    pub fn aiv_match(&self, fit: &GrooveFit, course: &[[f64; 2]]) -> Option<AivMatch> {
        if course.len() < 2 {
            return None;
        }
        let first_aiv = self.samples.iter().position(|s| s.site == GrooveSite::Aiv)?;
        let aiv: Vec<Vector2<f64>> = self.samples[first_aiv.saturating_sub(1)..]
            .iter()
            .map(|s| fit.placement.apply(&Vector2::new(s.xy[0], s.xy[1])))
            .collect();
        let aiv_len: f64 = aiv.windows(2).map(|w| (w[1] - w[0]).norm()).sum();
        let v: Vec<Vector2<f64>> = course.iter().map(|p| Vector2::new(p[0], p[1])).collect();
        let course_len = polyline_length(course);
        let (samples, _) = resample(&v, (course_len / MAX_COURSE_SAMPLES as f64).max(1.0));
        let sum: f64 = samples.iter().map(|p| distance_to_polyline(p, &aiv).powi(2)).sum();
        Some(AivMatch { rms_px: (sum / samples.len() as f64).sqrt(), coverage: course_len / aiv_len.max(1e-9) })
    }

    /// Matches the model to `trunk` (points from the ostium along the trunk, pixels).
    /// `None` for a trunk of fewer than two points.
    pub fn fit(&self, trunk: &[[f64; 2]]) -> Option<GrooveFit> {
        if trunk.len() < 2 || self.samples.len() < 2 {
            return None;
        }
        let trunk_v: Vec<Vector2<f64>> = trunk.iter().map(|p| Vector2::new(p[0], p[1])).collect();
        let step_px = (polyline_length(trunk) / MAX_TRUNK_SAMPLES as f64).max(1.5);
        let (t, _) = resample(&trunk_v, step_px);
        let m: Vec<Vector2<f64>> = self.samples.iter().map(|s| Vector2::new(s.xy[0], s.xy[1])).collect();
        // Unit normals of the model curve (central differences).
        let normals: Vec<Vector2<f64>> = (0..m.len())
            .map(|j| {
                let d = m[(j + 1).min(m.len() - 1)] - m[j.saturating_sub(1)];
                let n = Vector2::new(-d.y, d.x);
                if n.norm() > 1e-12 { n.normalize() } else { Vector2::new(1.0, 0.0) }
            })
            .collect();
        let centre = m.iter().sum::<Vector2<f64>>() / m.len() as f64;
        let mut placement = Placement { a: 1.0, b: 0.0, shift: t[0] - m[0], centre };
        let skip_cost = (SKIP_COST_STEPS * step_px).powi(2);
        let mut matched = self.match_once(&t, &m, &placement, step_px, skip_cost);
        for _ in 0..12 {
            let residuals: Vec<f64> =
                matched.pairs.iter().map(|(i, j)| (t[*i] - placement.apply(&m[*j])).norm()).collect();
            let mut sorted = residuals.clone();
            sorted.sort_by(f64::total_cmp);
            let cut = (3.0 * sorted[sorted.len() / 2]).max(4.0);
            let pairs: Vec<_> = matched
                .pairs
                .iter()
                .zip(&residuals)
                .filter(|(_, r)| **r <= cut)
                .map(|((i, j), _)| (m[*j], normals[*j], t[*i]))
                .collect();
            let Some(next) = Placement::fit(&pairs, centre) else { break };
            let moved = ((next.a - placement.a).abs() + (next.b - placement.b).abs()) * 100.0
                + (next.shift - placement.shift).norm();
            placement = next;
            matched = self.match_once(&t, &m, &placement, step_px, skip_cost);
            if moved < 0.05 {
                break;
            }
        }
        let rms_px = (matched.pairs.iter().map(|(i, j)| (t[*i] - placement.apply(&m[*j])).norm_squared()).sum::<f64>()
            / matched.pairs.len().max(1) as f64)
            .sqrt();
        // Every trunk point takes the sample matched to the resampled point at its arc length.
        let mut sample_of_trunk = vec![0usize; t.len()];
        for (i, j) in &matched.pairs {
            sample_of_trunk[*i] = *j;
        }
        let mut arc = 0.0;
        let sample_of_point = (0..trunk.len())
            .map(|i| {
                if i > 0 {
                    arc += (trunk_v[i] - trunk_v[i - 1]).norm();
                }
                let k = ((arc / step_px).round() as usize).min(t.len() - 1);
                self.samples[sample_of_trunk[k]]
            })
            .collect();
        Some(GrooveFit {
            sample_of_point,
            rms_px,
            scale: placement.scale(),
            rotation_deg: placement.rotation_deg(),
            placement,
        })
    }

    /// One dynamic-time-warping match of the resampled trunk `t` to the model placed by
    /// `placement` and resampled at the same arc step: each step along both costs the squared
    /// distance, a step along only one costs `skip_cost` more (so the trunk can neither skip
    /// a stretch of groove nor stretch far from its length); the trunk starts within
    /// [`FREE_START_MM`] of the textbook ostium and may end anywhere on the model.
    fn match_once(
        &self,
        t: &[Vector2<f64>],
        m: &[Vector2<f64>],
        placement: &Placement,
        step_px: f64,
        skip_cost: f64,
    ) -> Matched {
        let mapped: Vec<Vector2<f64>> = m.iter().map(|p| placement.apply(p)).collect();
        let (mm, sample) = resample(&mapped, step_px);
        let free_start = sample.iter().take_while(|j| self.samples[**j].arc_mm <= FREE_START_MM).count().max(1);
        let (n, k) = (t.len(), mm.len());
        let mut cost = vec![f64::INFINITY; n * k];
        // 0 diagonal, 1 trunk only, 2 model only.
        let mut step = vec![0u8; n * k];
        for i in 0..n {
            for j in 0..k {
                let here = (t[i] - mm[j]).norm_squared();
                let (best, from) = if i == 0 {
                    let start = if j < free_start { 0.0 } else { f64::INFINITY };
                    let along = if j > 0 { cost[j - 1] + skip_cost } else { f64::INFINITY };
                    if start <= along { (start, 0) } else { (along, 2) }
                } else {
                    let diagonal = if j > 0 { cost[(i - 1) * k + j - 1] } else { f64::INFINITY };
                    let trunk_only = cost[(i - 1) * k + j] + skip_cost;
                    let model_only = if j > 0 { cost[i * k + j - 1] + skip_cost } else { f64::INFINITY };
                    if diagonal <= trunk_only && diagonal <= model_only {
                        (diagonal, 0)
                    } else if trunk_only <= model_only {
                        (trunk_only, 1)
                    } else {
                        (model_only, 2)
                    }
                };
                cost[i * k + j] = best + here;
                step[i * k + j] = from;
            }
        }
        let (mut j, _) =
            (0..k).map(|j| (j, cost[(n - 1) * k + j])).min_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or((0, f64::INFINITY));
        let mut i = n - 1;
        let mut pairs = vec![(i, sample[j])];
        loop {
            match step[i * k + j] {
                0 if i > 0 && j > 0 => {
                    i -= 1;
                    j -= 1;
                }
                1 if i > 0 => i -= 1,
                2 if j > 0 => j -= 1,
                _ => break,
            }
            // Keep one model sample per trunk point: the first reached going back.
            if pairs.last().is_none_or(|p| p.0 != i) {
                pairs.push((i, sample[j]));
            }
        }
        pairs.reverse();
        Matched { pairs }
    }
}

/// The result of one match: `(trunk point, model sample)` pairs.
struct Matched {
    pairs: Vec<(usize, usize)>,
}

/// Distance from `p` to a polyline of at least two points.
fn distance_to_polyline(p: &Vector2<f64>, line: &[Vector2<f64>]) -> f64 {
    line.windows(2)
        .map(|w| {
            let d = w[1] - w[0];
            let t = ((p - w[0]).dot(&d) / d.norm_squared().max(1e-12)).clamp(0.0, 1.0);
            (p - (w[0] + d * t)).norm()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Points every `step` along a polyline, each with the index of the nearest input vertex.
fn resample(p: &[Vector2<f64>], step: f64) -> (Vec<Vector2<f64>>, Vec<usize>) {
    let mut out = vec![p[0]];
    let mut index = vec![0];
    let mut carried = 0.0;
    for (s, w) in p.windows(2).enumerate() {
        let seg = (w[1] - w[0]).norm();
        let mut at = step - carried;
        while at <= seg {
            let f = at / seg;
            out.push(w[0] + (w[1] - w[0]) * f);
            index.push(if f < 0.5 { s } else { s + 1 });
            at += step;
        }
        carried = seg - (at - step);
    }
    (out, index)
}

/// A 2D similarity about the model's centroid `c`: `[a -b; b a] (p - c) + c + shift`, so
/// scale `hypot(a, b)` and rotation `atan2(b, a)`. The rotation is held toward the
/// projection's orientation by a prior: in RAO the thin groove ellipse fixes it, in LAO the
/// ring is nearly round and a rotation is indistinguishable from sliding along it.
#[derive(Debug, Clone, Copy)]
struct Placement {
    a: f64,
    b: f64,
    shift: Vector2<f64>,
    centre: Vector2<f64>,
}

impl Placement {
    fn apply(&self, p: &Vector2<f64>) -> Vector2<f64> {
        let q = p - self.centre;
        Vector2::new(self.a * q.x - self.b * q.y, self.b * q.x + self.a * q.y) + self.centre + self.shift
    }

    fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    fn rotation_deg(&self) -> f64 {
        self.b.atan2(self.a).to_degrees()
    }

    /// Least squares over `pairs` (model point, its unit normal, image point): the distance
    /// along the normal (point to line, which converges in a few steps where point to point
    /// only creeps along the curve) plus a tenth of the distance along the curve, plus the
    /// rotation prior. Scale and rotation are then clamped to the bounds of a heart. `None`
    /// when the system is singular.
    fn fit(pairs: &[(Vector2<f64>, Vector2<f64>, Vector2<f64>)], centre: Vector2<f64>) -> Option<Self> {
        // Unknowns x = (a, b, shift_x, shift_y); rows r . x = t . dir - c . dir.
        let mut ata = Matrix4::<f64>::zeros();
        let mut atb = Vector4::<f64>::zeros();
        let mut spread = 0.0;
        for (m, n, t) in pairs {
            let q = m - centre;
            spread += q.norm_squared();
            let tangent = Vector2::new(-n.y, n.x);
            for (dir, weight) in [(*n, 1.0), (tangent, 0.1)] {
                let row = Vector4::new(q.x * dir.x + q.y * dir.y, -q.y * dir.x + q.x * dir.y, dir.x, dir.y);
                ata += row * row.transpose() * weight;
                atb += row * ((t - centre).dot(&dir)) * weight;
            }
        }
        ata[(1, 1)] += ROTATION_PRIOR * spread;
        let x = ata.try_inverse()? * atb;
        let scale = x[0].hypot(x[1]).clamp(SCALE_RANGE.0, SCALE_RANGE.1);
        let angle = x[1].atan2(x[0]).clamp(-MAX_ROTATION_DEG.to_radians(), MAX_ROTATION_DEG.to_radians());
        let (a, b) = (scale * angle.cos(), scale * angle.sin());
        if (a - x[0]).abs() < 1e-9 && (b - x[1]).abs() < 1e-9 {
            return Some(Self { a, b, shift: Vector2::new(x[2], x[3]), centre });
        }
        // Clamped: refit the shift alone.
        let mut a2 = Matrix2::<f64>::zeros();
        let mut b2 = Vector2::<f64>::zeros();
        let fixed = Self { a, b, shift: Vector2::zeros(), centre };
        for (m, n, t) in pairs {
            let tangent = Vector2::new(-n.y, n.x);
            for (dir, weight) in [(*n, 1.0), (tangent, 0.1)] {
                a2 += dir * dir.transpose() * weight;
                b2 += dir * ((t - fixed.apply(m)).dot(&dir)) * weight;
            }
        }
        Some(Self { shift: a2.try_inverse()? * b2, ..fixed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::CArmProjection;
    use nalgebra::Point2;

    fn projection(primary_deg: f64) -> CArmProjection {
        CArmProjection::new(primary_deg, 0.0, 1200.0, 800.0, [0.3, 0.3], 512, 512).expect("projection")
    }

    #[test]
    fn the_model_projects_to_a_curve_through_the_field() {
        let model = GrooveModel::project(&projection(30.0)).expect("model");
        assert!(model.samples.len() > 300);
        for s in &model.samples {
            assert!(s.xy[0] > 0.0 && s.xy[0] < 512.0 && s.xy[1] > 0.0 && s.xy[1] < 512.0, "{s:?}");
        }
        let ring = model.samples.iter().filter(|s| matches!(s.site, GrooveSite::Ring { .. })).count();
        assert_eq!(ring, 245);
    }

    /// A trunk made from the model itself, shifted, scaled (and rotated a little, as a real
    /// heart is) and cut short of the AIV's end, is matched back to the right angles.
    #[test]
    fn a_moved_copy_of_the_model_is_matched_to_its_own_angles() {
        for (primary, rotation_deg, max_error_deg) in
            [(-30.0, 0.0, 3.0), (30.0, 0.0, 3.0), (0.0, 0.0, 3.0), (30.0, 5.0, 9.0), (-30.0, -5.0, 9.0)]
        {
            let p = projection(primary);
            let model = GrooveModel::project(&p).expect("model");
            let c = Point2::new(256.0, 256.0);
            let (scale, angle) = (1.1_f64, f64::to_radians(rotation_deg));
            let moved = |xy: [f64; 2]| {
                let (x, y) = (xy[0] - c.x, xy[1] - c.y);
                [
                    c.x + scale * (angle.cos() * x - angle.sin() * y) + 12.0,
                    c.y + scale * (angle.sin() * x + angle.cos() * y) - 7.0,
                ]
            };
            // From 215 degrees (past the textbook ostium) to halfway down the AIV.
            let kept: Vec<&ModelSample> = model
                .samples
                .iter()
                .filter(|s| !matches!(s.site, GrooveSite::Ring { angle_deg } if angle_deg > 215.0))
                .take(245 - 7 + 50)
                .collect();
            // Densify to about a pixel per point, as a skeleton would be.
            let mut trunk = Vec::new();
            let mut truth = Vec::new();
            for w in kept.windows(2) {
                let (a, b) = (moved(w[0].xy), moved(w[1].xy));
                let n = ((b[0] - a[0]).hypot(b[1] - a[1])).ceil().max(1.0) as usize;
                for k in 0..n {
                    let t = k as f64 / n as f64;
                    trunk.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
                    truth.push(w[0].site);
                }
            }
            let fit = model.fit(&trunk).expect("fit");
            if rotation_deg == 0.0 {
                assert!(fit.rms_px < 1.5, "LAO/RAO {primary}: rms {:.2} px", fit.rms_px);
                assert!((fit.scale - scale).abs() < 0.02, "LAO/RAO {primary}: scale {:.3}", fit.scale);
            }
            let mut errors = Vec::new();
            for (got, want) in fit.sample_of_point.iter().zip(&truth) {
                match (got.site, want) {
                    (GrooveSite::Ring { angle_deg: a }, GrooveSite::Ring { angle_deg: b }) => {
                        errors.push((a - b).abs());
                    }
                    (GrooveSite::Aiv, GrooveSite::Aiv) => {}
                    (g, w) => {
                        // Only at the ring's end may the two disagree.
                        let near_end = |s: GrooveSite| match s {
                            GrooveSite::Ring { angle_deg } => {
                                angle_deg < atlas::ANTERIOR_GROOVE_ANGLE_DEG + max_error_deg
                            }
                            GrooveSite::Aiv => true,
                        };
                        assert!(
                            near_end(g) && near_end(*w),
                            "LAO/RAO {primary}, rotated {rotation_deg}: {g:?} for {w:?}"
                        );
                    }
                }
            }
            errors.sort_by(f64::total_cmp);
            let p90 = errors[errors.len() * 9 / 10];
            eprintln!(
                "{primary} {rotation_deg}: rms {:.2} scale {:.3} rot {:.1} p50 {:.1} p90 {p90:.1} max {:.1}",
                fit.rms_px,
                fit.scale,
                fit.rotation_deg,
                errors[errors.len() / 2],
                errors[errors.len() - 1]
            );
            assert!(
                p90 < max_error_deg,
                "LAO/RAO {primary}, rotated {rotation_deg}: 90th percentile angle error {p90:.1} degrees"
            );
        }
    }
}
