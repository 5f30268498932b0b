//! Stage 4d: a side branch followed back through the lumen of the vein it leaves.
//!
//! A tributary that leaves a wide vein at a shallow angle can run beside it, over its
//! projected lumen, for a centimetre or more before it comes out (LAO: the lateral marginal
//! vein running down along the outer wall of the great cardiac vein). The mask there is one
//! band, thinning draws one centerline, and the tree's junction lies where the tributary
//! comes out, not where it leaves.
//!
//! The image still shows it. The samples are logarithmic in the transmitted intensity, so
//! overlapping veins add: across the band the top-hat attenuation is the sum of two iodine
//! cylinders, `a sqrt(R^2 - (u - c)^2) + a2 sqrt(r^2 - (u - o)^2)`, not one. Both are filled
//! with the same contrast, so their attenuation per millimetre of path is alike (`a2 / a`
//! near 1), which a catheter (far denser) or a rib edge does not mimic. From the point where
//! the side branch comes out, this stage walks the through vein's centerline away from the
//! way the side branch heads, and at each pixel fits the profile across the band with one
//! cylinder and with two (the second one the side branch's calibre, on its side of the axis,
//! near where it was a pixel before); where two explain it better by more than the noise
//! does ([`MIN_EVIDENCE`]), the side branch is there. Where the evidence ends for good is
//! where it left the vein: the junction moves there and the side branch's centerline runs
//! through the band to where it came out.
//!
//! A wide vein's own profile is not always one clean cylinder: flat-topped or lopsided (the
//! simulated GCV often is), it is explained better by two cylinders whichever side the
//! second one lies. The same fit mirrored across the centerline is therefore the control,
//! and only evidence beyond the mirror's counts; each model also has a linear background
//! across the band (the top-hat leaves a slope where the band lies between the bright lung
//! and the heart's shadow). docs/segmentation.md has the measurements.
//!
//! Written by hand: OpenCV has no model fit along a curve.

use super::calibre::{bilinear, lumen_radii};
use super::image::ImageF32;
use super::junction::{arc_range, clear_axis, first_past_arc, main_and_side, replace_head, split_through};
use super::label::{OrientedEdge, dist, median};
use super::profile::{chord, least_squares};

/// Narrowest parent (radius at the junction, px at a 512 matrix) over whose lumen a side
/// branch is looked for: a thinner vein's lumen cannot hide another.
const MIN_PARENT_RADIUS_PX: f64 = 3.0;

/// Widest side branch, as a fraction of the parent's radius: two veins of a calibre do not
/// hide one another.
const MAX_SIDE_FRACTION: f64 = 0.75;

/// Largest angle between the side branch's axis where it came out and the through vein's
/// course, degrees: only a branch leaving at a shallow angle can have run over the lumen.
const MAX_EXIT_DEG: f64 = 50.0;

/// Least improvement of the two-cylinder fit over the one-cylinder fit, in units of the
/// profile's residual variance (an F statistic with one degree of freedom in the numerator).
const MIN_EVIDENCE: f64 = 4.0;

/// Range of the side branch's attenuation per pixel of path against the parent's: the same
/// contrast fills both.
const DENSITY_RATIO: (f64, f64) = (0.4, 2.5);

/// Nearest the side branch's axis may lie to the parent's, in side branch radii: nearer, the
/// two cylinders cannot be told from one.
const MIN_SIDE_OFFSET_RADII: f64 = 0.5;

/// How far the side branch's axis may move across the band from one step to the next, px at
/// a 512 matrix (steps are a pixel apart along the band at that matrix).
const STEP_WINDOW_PX: f64 = 1.5;

/// Half-width of the first step's search for the side branch's axis about where it crosses
/// the parent's wall, in parent radii (at least 5 px of radius).
const FIRST_WINDOW_RADII: f64 = 0.5;

/// Steps without evidence after which the walk stops.
const MAX_MISSES: usize = 6;

/// Shortest hidden run, in parent radii (plus `3k` px): an ordinary takeoff crosses the wall
/// within about two radii.
const MIN_RUN_RADII: f64 = 2.0;

/// Steps from the junction within which the hidden course must show: it runs on from where
/// the side branch crosses the wall.
const FIRST_STEPS: usize = 3;

/// Least fraction of the steps up to the last one with evidence that had it.
const MIN_SUPPORT: f64 = 0.7;

/// Moves the junction of every side branch that ran hidden over its parent's lumen (see the
/// module doc) to where it left, and draws its centerline through the band. `depth` is the
/// top-hat attenuation at the working matrix, `k` the matrix factor (1 at 512). Returns how
/// many junctions moved.
pub(crate) fn follow_hidden_takeoffs(edges: &mut [OrientedEdge], depth: &ImageF32, k: f64) -> usize {
    let mut moved = 0;
    for p in 0..edges.len() {
        let Some((main, side)) = main_and_side(edges, p, k) else { continue };
        let Some(hidden) = hidden_course(&edges[p], &edges[main], &edges[side], depth, k) else { continue };
        split_through(edges, p, main, (hidden.segment, hidden.takeoff), hidden.parent_radius_px);
        let mut points = vec![hidden.takeoff];
        points.extend(&hidden.course);
        let radii = vec![hidden.side_radius_px; points.len()];
        replace_head(&mut edges[side], points, radii, hidden.side_from);
        moved += 1;
    }
    moved
}

/// A side branch's course over its parent's lumen.
#[derive(Debug)]
struct HiddenCourse {
    /// Segment of the through polyline (parent then main) the takeoff lies on.
    segment: usize,
    /// Where it left the through vein, on the through vein's centerline.
    takeoff: [f64; 2],
    /// The through vein's radius there, px.
    parent_radius_px: f64,
    /// Its centerline over the lumen, from the takeoff towards where it came out.
    course: Vec<[f64; 2]>,
    /// Its radius, px.
    side_radius_px: f64,
    /// First point of the side branch's own centerline kept after `course`.
    side_from: usize,
}

/// The through polyline (parent then main) with its radii and cumulative arc length.
struct Through {
    points: Vec<[f64; 2]>,
    radius_px: Vec<f64>,
    arc_px: Vec<f64>,
}

impl Through {
    fn new(parent: &OrientedEdge, main: &OrientedEdge) -> Self {
        let points: Vec<[f64; 2]> = parent.points.iter().chain(main.points.iter().skip(1)).copied().collect();
        let radius_px: Vec<f64> = parent.radius_px.iter().chain(main.radius_px.iter().skip(1)).copied().collect();
        let mut arc_px = Vec::with_capacity(points.len());
        let mut s = 0.0;
        for (i, q) in points.iter().enumerate() {
            if i > 0 {
                s += dist(points[i - 1], *q);
            }
            arc_px.push(s);
        }
        Self { points, radius_px, arc_px }
    }

    fn length_px(&self) -> f64 {
        self.arc_px.last().copied().unwrap_or(0.0)
    }

    /// The segment holding arc length `s`, and the point and radius there.
    fn at(&self, s: f64) -> (usize, [f64; 2], f64) {
        let i = self.arc_px.partition_point(|a| *a <= s).clamp(1, self.points.len() - 1) - 1;
        let len = (self.arc_px[i + 1] - self.arc_px[i]).max(1e-9);
        let t = ((s - self.arc_px[i]) / len).clamp(0.0, 1.0);
        let (a, b) = (self.points[i], self.points[i + 1]);
        let r = self.radius_px[i] + t * (self.radius_px[i + 1] - self.radius_px[i]);
        (i, [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])], r)
    }

    /// Unit tangent (downstream) at arc length `s`, over `half_px` either side.
    fn tangent(&self, s: f64, half_px: f64) -> Option<[f64; 2]> {
        let (_, a, _) = self.at((s - half_px).max(0.0));
        let (_, b, _) = self.at((s + half_px).min(self.length_px()));
        let l = dist(a, b);
        (l > 1e-9).then(|| [(b[0] - a[0]) / l, (b[1] - a[1]) / l])
    }
}

/// Where `side`, leaving the junction at the end of `parent` beside `main`, ran over the
/// through vein's lumen before it came out ([`follow_hidden_takeoffs`]).
fn hidden_course(
    parent: &OrientedEdge,
    main: &OrientedEdge,
    side: &OrientedEdge,
    depth: &ImageF32,
    k: f64,
) -> Option<HiddenCourse> {
    let junction = *parent.points.last()?;
    let r_j = *parent.radius_px.last()?;
    if r_j < MIN_PARENT_RADIUS_PX * k {
        return None;
    }
    let clear_from = r_j + 2.0;
    let (anchor, d) = clear_axis(side, clear_from, clear_from + (8.0 * k).max(3.0 * r_j))?;
    let r_s = side_radius(side, clear_from, clear_from + 10.0 * k, depth)?;
    if r_s > MAX_SIDE_FRACTION * r_j {
        return None;
    }
    let through = Through::new(parent, main);
    if through.points.len() < 2 {
        return None;
    }
    let s_j = through.arc_px[parent.points.len() - 1];
    let t_j = through.tangent(s_j, 4.0 * k)?;
    let cos = d[0] * t_j[0] + d[1] * t_j[1];
    if cos.abs() < MAX_EXIT_DEG.to_radians().cos() {
        return None;
    }
    // The hidden part lies the other way along the through vein from where the branch heads.
    // Steps of a pixel at the 512 matrix.
    let step = -cos.signum() * k;
    let n_j = [-t_j[1], t_j[0]];
    let across = |q: [f64; 2]| (q[0] - junction[0]) * n_j[0] + (q[1] - junction[1]) * n_j[1];
    let side_sign = if across(anchor) == 0.0 { return None } else { across(anchor).signum() };
    // Where the side branch crosses the parent's wall: the hidden course must run on from
    // there, not from another vein lying over the band.
    let at_wall = *side.points.iter().find(|q| dist(**q, junction) >= r_j)?;
    let o_exit = across(at_wall);

    let mut course: Vec<(f64, [f64; 2])> = Vec::new();
    let (mut prev_c, mut prev_o): (Option<f64>, Option<f64>) = (None, None);
    let mut misses = 0usize;
    let max_steps = (through.length_px() as usize).max(1);
    for i in 0..max_steps {
        let s = s_j + step * i as f64;
        if s < 0.0 || s > through.length_px() {
            break;
        }
        let (_, centre, r_here) = through.at(s);
        let Some(t) = through.tangent(s, 3.0 * k) else { break };
        let n = [-t[1], t[0]];
        let reach = (1.5 * r_here + r_s + 3.0).ceil() as i64;
        let profile: Option<Vec<(f64, f64)>> = (-reach..=reach)
            .map(|u| {
                let u = u as f64;
                bilinear(depth, centre[0] + u * n[0], centre[1] + u * n[1]).map(|y| (u, y))
            })
            .collect();
        let Some(profile) = profile else { break };
        let window = match prev_o {
            Some(o) => (o, STEP_WINDOW_PX * k),
            None => (o_exit, FIRST_WINDOW_RADII * r_j.max(5.0)),
        };
        let found = fit_profile(&profile, r_here, r_s, side_sign, prev_c, window).filter(ProfileFit::shows_side_branch);
        if let Some(ProfileFit { fit, .. }) = found {
            course.push((s, [centre[0] + fit.o * n[0], centre[1] + fit.o * n[1]]));
            (prev_c, prev_o) = (Some(fit.c), Some(fit.o));
            misses = 0;
        } else if course.is_empty() && i >= FIRST_STEPS {
            break;
        } else {
            misses += 1;
            if misses > MAX_MISSES {
                break;
            }
        }
    }
    let &(s_last, _) = course.last()?;
    let run_px = (s_last - s_j).abs();
    let accepted = course.len() as f64 / (run_px / k + 1.0);
    if run_px < MIN_RUN_RADII * r_j + 3.0 * k || accepted < MIN_SUPPORT {
        return None;
    }
    let (segment, takeoff, parent_radius_px) = through.at(s_last);
    // The side branch's own centerline from where it is clear of the band.
    let side_from = first_past_arc(&side.points, r_j + 1.0);
    let course: Vec<[f64; 2]> = course.iter().rev().skip(1).map(|(_, p)| *p).collect();
    Some(HiddenCourse { segment, takeoff, parent_radius_px, course, side_radius_px: r_s, side_from })
}

/// Median lumen radius of `edge` over arc lengths `from..=to` from its start, read across
/// it in `depth` ([`lumen_radii`]; the mask's radii of a faint branch are its core's).
fn side_radius(edge: &OrientedEdge, from: f64, to: f64, depth: &ImageF32) -> Option<f64> {
    let window = arc_range(edge.points.iter().copied(), from, to);
    median(lumen_radii(&edge.points[window.clone()], &edge.radius_px[window], depth))
}

/// The two-cylinder fit of a profile across the band: the parent's centre `c` and the side
/// branch's `o`, px from the through centerline.
#[derive(Debug, Clone, Copy)]
struct TwoCylinders {
    c: f64,
    o: f64,
}

/// Fits the profile across the band with one cylinder (radius near `r_parent`) and with two
/// (the second of radius `r_side`, on side `side_sign` of the first's axis), each axis near
/// where it was a step before (`prev_c`; the side branch's within `o_half` of `o_near`), the
/// densities agreeing ([`DENSITY_RATIO`]); and the same two-cylinder fit mirrored across the
/// through centerline, as a control: a flat-topped or lopsided profile of the parent alone
/// is explained by two cylinders either way round. Each model has a linear background
/// across the band.
fn fit_profile(
    profile: &[(f64, f64)],
    r_parent: f64,
    r_side: f64,
    side_sign: f64,
    prev_c: Option<f64>,
    (o_near, o_half): (f64, f64),
) -> Option<ProfileFit> {
    let halves = |centre: f64, half: f64| {
        let n = (2.0 * half) as i32;
        (-n..=n).map(move |i| centre + 0.5 * f64::from(i))
    };
    let cs: Vec<f64> = match prev_c {
        Some(c) => halves(c, 1.0).collect(),
        None => halves(0.0, 2.0).collect(),
    };
    let rs: Vec<f64> = (0..7).map(|i| r_parent * (0.7 + 0.1 * f64::from(i))).collect();
    let os: Vec<f64> = halves(o_near, o_half).collect();
    let mut best1 = f64::INFINITY;
    for &c in &cs {
        for &r in &rs {
            if let Some((x, sse)) = least_squares::<_, 2, 3>(profile, |u| [chord(u, c, r), u])
                && x[0] > 0.0
            {
                best1 = best1.min(sse);
            }
        }
    }
    let (sse2, fit) = best_two(profile, &cs, &rs, &os, r_side, side_sign)?;
    let neg = |v: &[f64]| v.iter().map(|x| -x).collect::<Vec<f64>>();
    let mirrored = best_two(profile, &neg(&cs), &rs, &neg(&os), r_side, -side_sign);
    let dof = profile.len().saturating_sub(7).max(1) as f64;
    let evidence_of = |sse: f64| (best1 - sse) / (sse / dof).max(1e-12);
    let evidence = evidence_of(sse2);
    let control = mirrored.map_or(0.0, |(sse, _)| evidence_of(sse).max(0.0));
    Some(ProfileFit { fit, evidence, control })
}

/// A profile's two-cylinder fit ([`fit_profile`]) and how much better it explains the
/// profile than one cylinder does, the right way round and mirrored.
#[derive(Debug, Clone, Copy)]
struct ProfileFit {
    fit: TwoCylinders,
    /// The improvement over one cylinder, in units of the residual variance.
    evidence: f64,
    /// The same for the fit mirrored across the through centerline (0 when it is worse).
    control: f64,
}

impl ProfileFit {
    /// Whether the profile shows the side branch ([`MIN_EVIDENCE`] beyond the mirror's).
    fn shows_side_branch(&self) -> bool {
        self.evidence - self.control >= MIN_EVIDENCE
    }
}

/// The best two-cylinder fit over the parent's centres `cs` and radii `rs` and the side
/// branch's centres `os` (radius `r_side`, on side `side_sign` of the parent's axis): its
/// sum of squared residuals and the fit.
fn best_two(
    profile: &[(f64, f64)],
    cs: &[f64],
    rs: &[f64],
    os: &[f64],
    r_side: f64,
    side_sign: f64,
) -> Option<(f64, TwoCylinders)> {
    let mut best: Option<(f64, TwoCylinders)> = None;
    for &c in cs {
        for &r in rs {
            for &o in os {
                let off = (o - c) * side_sign;
                if off < MIN_SIDE_OFFSET_RADII * r_side || off > r + r_side {
                    continue;
                }
                let Some((x, sse)) = least_squares::<_, 3, 4>(profile, |u| [chord(u, c, r), chord(u, o, r_side), u])
                else {
                    continue;
                };
                let (a, a2) = (x[0], x[1]);
                if a <= 0.0 || a2 <= 0.0 || a2 / a < DENSITY_RATIO.0 || a2 / a > DENSITY_RATIO.1 {
                    continue;
                }
                if best.is_none_or(|(b, _)| sse < b) {
                    best = Some((sse, TwoCylinders { c, o }));
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::super::junction::nearest_on_segment;
    use super::super::profile::synthetic::{MU, edge, line, render};
    use super::*;

    /// A wide vein along y = 100 (radius 7 px) and the tree thinning draws when a branch
    /// (radius 3 px) comes out of its lower wall at 30 degrees at x = 112: a junction on the
    /// vein's axis at x = 116 and the branch's skeleton bending into it.
    fn tree_with_branch_out_at_112() -> Vec<OrientedEdge> {
        let junction = [116.0, 100.0];
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let mut side = line(junction, [122.0, 107.5]);
        side.extend(line([122.0, 107.5], [122.0 + 70.0 * c, 107.5 + 70.0 * s]).into_iter().skip(1));
        vec![
            edge(None, vec![1, 2], line([0.0, 100.0], junction), 7.0),
            edge(Some(0), vec![], line(junction, [240.0, 100.0]), 7.0),
            edge(Some(0), vec![], side, 3.0),
        ]
    }

    /// The branch of [`tree_with_branch_out_at_112`] as the image has it: leaving the vein
    /// at x = 60 and running along its lower wall to where it comes out, or (`hidden` false)
    /// leaving where it comes out.
    fn branch_course(hidden: bool) -> Vec<[f64; 2]> {
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let out = [112.0, 104.5];
        let start = if hidden { vec![[60.0, 100.5], out] } else { vec![[106.0, 100.0], out] };
        start.into_iter().chain(std::iter::once([out[0] + 90.0 * c, out[1] + 90.0 * s])).collect()
    }

    fn vein() -> (Vec<[f64; 2]>, f64) {
        (vec![[-10.0, 100.0], [250.0, 100.0]], 7.0)
    }

    #[test]
    fn a_branch_running_over_the_veins_lumen_is_followed_back_to_where_it_left() {
        let depth = render(240, 200, &[vein(), (branch_course(true), 3.0)], |a| a, 0.004);
        let mut edges = tree_with_branch_out_at_112();
        assert_eq!(follow_hidden_takeoffs(&mut edges, &depth, 1.0), 1);
        // The junction moved upstream, to where the branch's axis parts from the vein's.
        let takeoff = *edges[0].points.last().expect("points");
        assert!((55.0..=70.0).contains(&takeoff[0]) && (takeoff[1] - 100.0).abs() < 1.0, "takeoff {takeoff:?}");
        assert!(dist(edges[1].points[0], takeoff) < 1e-9);
        assert!(dist(edges[2].points[0], takeoff) < 1e-9);
        // Over the lumen the branch's centerline lies on its axis.
        let truth = branch_course(true);
        for p in edges[2].points.iter().filter(|p| (85.0..=110.0).contains(&p[0])) {
            let d =
                truth.windows(2).map(|s| dist(*p, nearest_on_segment(*p, s[0], s[1]))).fold(f64::INFINITY, f64::min);
            assert!(d < 1.5, "{p:?} is {d:.1} px off the branch");
        }
        // The vein runs on through the old junction.
        assert!(edges[1].points.iter().any(|p| dist(*p, [116.0, 100.0]) < 1.0));
    }

    #[test]
    fn a_branch_leaving_where_it_comes_out_keeps_its_junction() {
        let depth = render(240, 200, &[vein(), (branch_course(false), 3.0)], |a| a, 0.004);
        let mut edges = tree_with_branch_out_at_112();
        let before = edges[0].points.clone();
        assert_eq!(follow_hidden_takeoffs(&mut edges, &depth, 1.0), 0);
        assert_eq!(edges[0].points, before);
    }

    #[test]
    fn a_through_vessel_of_one_point_is_left_alone() {
        let depth = render(40, 40, &[], |a| a, 0.004);
        // A through vessel of one point and a side branch long enough to measure.
        let mut edges = vec![
            edge(None, vec![1, 2], vec![[20.0, 20.0]], 7.0),
            edge(Some(0), vec![], vec![[20.0, 20.0]], 7.0),
            edge(Some(0), vec![], line([20.0, 20.0], [38.0, 38.0]), 3.0),
        ];
        assert_eq!(follow_hidden_takeoffs(&mut edges, &depth, 1.0), 0);
    }

    #[test]
    fn a_flat_topped_vein_is_not_taken_for_two() {
        // The lumen's profile flattened at 80% of its depth: two cylinders side by side fit
        // it better than one, either way round.
        let top = 0.6 * MU * 2.0 * 7.0;
        let depth = render(240, 200, &[vein(), (branch_course(false), 3.0)], |a| a.min(top), 0.004);
        let mut edges = tree_with_branch_out_at_112();
        assert_eq!(follow_hidden_takeoffs(&mut edges, &depth, 1.0), 0);
    }

    /// Profiles across the GCV of a simulated venogram (seed 109 LAO, 512, top-hat
    /// attenuation x 1000, a pixel apart) where no vein runs over it: lopsided and flat-topped,
    /// with the through vein's radius there.
    const LOPSIDED: [(f64, &str); 3] = [
        (7.1, "1 2 6 5 4 3 3 1 4 0 2 16 47 59 76 87 91 90 92 92 92 88 94 92 89 89 76 63 44 14 2 0 0 0 0 4 9 2 4"),
        (
            7.9,
            "6 4 2 3 2 1 3 5 2 0 2 26 50 66 79 84 83 89 93 110 101 97 97 103 92 84 82 70 54 20 5 2 1 2 1 3 1 3 0 1 5",
        ),
        (
            8.2,
            "2 6 6 3 5 1 1 4 1 1 3 22 56 93 110 121 123 119 118 111 112 108 110 109 106 99 92 80 50 17 2 1 2 1 4 1 3 4 2 0 1",
        ),
    ];

    #[test]
    fn a_lopsided_vein_fits_two_cylinders_either_way_round() {
        for (r, row) in LOPSIDED {
            let v: Vec<f64> = row.split(' ').map(|x| x.parse::<f64>().expect("a number") / 1000.0).collect();
            let half = (v.len() / 2) as f64;
            let profile: Vec<(f64, f64)> = v.iter().enumerate().map(|(i, y)| (i as f64 - half, *y)).collect();
            let f = fit_profile(&profile, r, 4.6, 1.0, Some(-3.0), (4.5, 1.5)).expect("a fit");
            // Two cylinders explain it far better than one, but the mirror nearly as well.
            assert!(f.evidence > 100.0, "{f:?}");
            assert!(f.control > 0.8 * f.evidence, "{f:?}");
        }
    }

    #[test]
    fn a_branch_over_the_lumen_fits_only_the_right_way_round() {
        let vessels = [vein(), (vec![[0.0, 104.0], [240.0, 104.0]], 3.0)];
        let depth = render(240, 200, &vessels, |a| a, 0.004);
        let profile: Vec<(f64, f64)> =
            (-16..=16).map(f64::from).map(|u| (u, f64::from(depth.at(120, (100.0 + u) as usize)))).collect();
        let f = fit_profile(&profile, 7.0, 3.0, 1.0, None, (4.0, 2.5)).expect("a fit");
        assert!((f.fit.o - f.fit.c - 4.0).abs() <= 1.0, "{f:?}");
        assert!(f.shows_side_branch() && f.control < 0.5 * f.evidence, "{f:?}");
    }
}
