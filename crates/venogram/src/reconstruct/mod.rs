//! Two-view reconstruction of the coronary-sinus tree: two labelled 2D trees (each from its
//! run's C-arm geometry) to one tree in patient space (LPS, mm).
//!
//! The steps, after the two-view literature on coronary reconstruction:
//! 1. Branch correspondence: every pair of branches (one per view) is scored by how well the
//!    points of one lie on the epipolar lines of the other's points (in both directions), with
//!    agreeing anatomical labels preferred; pairs are taken best first, one partner each, a pair
//!    whose parents were matched to each other counting as likelier and one whose parents went
//!    to other partners as less likely.
//! 2. Point correspondence along a matched pair: both centerlines resampled to 1 px steps and
//!    aligned by dynamic programming (monotone: the order along the vessel is kept) on the
//!    symmetric epipolar distance, not by nearest neighbour.
//! 3. Triangulation: the midpoint of the two rays' closest approach; the gap between the rays
//!    is the point's uncertainty; the 3D point is reprojected into both views.
//! 4. Radii: each view's radius in px back to mm at the point's depth, averaged.
//!
//! Branches seen in one view only are kept at their takeoff's depth (the isocentre's when the parent is not in 3D) and flagged. Views closer
//! than [`ReconstructParams::min_separation_deg`] are reconstructed but marked low-confidence.
//! [`refine`] corrects the second view's geometry from the two trees first.

use nalgebra::{Point2, Point3, Vector3};
use serde::Serialize;

use crate::geometry::CArmProjection;
use crate::labels::VeinLabel;
use crate::segment::BranchTree;

pub mod refine;

/// A view: its labelled tree and the projection it was imaged with.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The labelled tree (pixels).
    pub tree: &'a BranchTree,
    /// Patient mm to image px.
    pub projection: &'a CArmProjection,
}

/// Settings of a reconstruction.
#[derive(Debug, Clone, Copy)]
pub struct ReconstructParams {
    /// Branch pairs whose mean epipolar distance is above this do not correspond, px.
    pub max_epipolar_px: f64,
    /// Views closer in beam direction than this give a low-confidence result, degrees.
    pub min_separation_deg: f64,
}

impl Default for ReconstructParams {
    fn default() -> Self {
        Self { max_epipolar_px: 6.0, min_separation_deg: 20.0 }
    }
}

/// Where a reconstructed branch was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeenIn {
    /// In both views: triangulated.
    Both,
    /// In the first view only: depth is a guess.
    FirstOnly,
    /// In the second view only: depth is a guess.
    SecondOnly,
}

/// A reconstructed branch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Branch3d {
    /// Its identifier in the first view's tree (the second view's for a branch seen there only).
    pub id: u32,
    /// Its identifier in each view, where seen.
    pub view_ids: [Option<u32>; 2],
    /// The parent branch's `id`, when it was reconstructed too.
    pub parent: Option<u32>,
    /// Label (the first view's when the views disagree and it is named); its abbreviation in JSON.
    #[serde(serialize_with = "crate::segment::tree::serialize_label")]
    pub label: VeinLabel,
    /// Centerline, patient LPS mm, proximal to distal.
    pub points_mm: Vec<[f64; 3]>,
    /// Radius at each point, mm.
    pub radius_mm: Vec<f64>,
    /// Uncertainty of each point, mm (half the gap between the two rays; for one view, the
    /// depth guess's spread).
    pub uncertainty_mm: Vec<f64>,
    /// RMS reprojection error in each view, px (`None` where not seen).
    pub reprojection_rms_px: [Option<f64>; 2],
    /// Where it was seen.
    pub seen_in: SeenIn,
}

/// A reconstructed tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tree3dReconstruction {
    /// Branches, parents before children where both are present.
    pub branches: Vec<Branch3d>,
    /// Angle between the two beams, degrees.
    pub view_separation_deg: f64,
    /// Whether the result is to be trusted (views far enough apart, most of the tree matched).
    pub low_confidence: bool,
    /// What the reconstruction could not do well, in words.
    pub warnings: Vec<String>,
}

/// Depth spread assumed for a branch seen in one view only, mm.
const ONE_VIEW_DEPTH_SPREAD_MM: f64 = 20.0;

/// The centerline resampled at (at most) `step` px.
fn resample(points: &[[f64; 2]], radius: &[f64], step: f64) -> (Vec<[f64; 2]>, Vec<f64>) {
    let mut out = Vec::new();
    let mut radii = Vec::new();
    let Some(&first) = points.first() else { return (out, radii) };
    out.push(first);
    radii.push(radius.first().copied().unwrap_or(1.0));
    for (k, w) in points.windows(2).enumerate() {
        let d = (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]);
        let n = (d / step).ceil().max(1.0) as usize;
        let (r0, r1) = (radius.get(k).copied().unwrap_or(1.0), radius.get(k + 1).copied().unwrap_or(1.0));
        for i in 1..=n {
            let t = i as f64 / n as f64;
            out.push([w[0][0] + t * (w[1][0] - w[0][0]), w[0][1] + t * (w[1][1] - w[0][1])]);
            radii.push(r0 + t * (r1 - r0));
        }
    }
    (out, radii)
}

/// An image line: a point on it and its unit direction, px.
type Line = ([f64; 2], [f64; 2]);

/// The epipolar line in view `to` of pixel `xy` of view `from`; `None` when the ray does not
/// reach the other image.
fn epipolar_line(from: &CArmProjection, to: &CArmProjection, xy: [f64; 2]) -> Option<Line> {
    let (origin, direction) = from.ray_through_pixel(&Point2::new(xy[0], xy[1]));
    let sod = from.distance_source_to_patient_mm;
    let near = to.project(&(origin + direction.into_inner() * (sod - 100.0)))?;
    let far = to.project(&(origin + direction.into_inner() * (sod + 100.0)))?;
    let d = [far.x - near.x, far.y - near.y];
    let n = d[0].hypot(d[1]);
    (n > 1e-9).then(|| ([near.x, near.y], [d[0] / n, d[1] / n]))
}

fn line_distance(line: &Line, p: [f64; 2]) -> f64 {
    let (o, d) = line;
    ((p[0] - o[0]) * d[1] - (p[1] - o[1]) * d[0]).abs()
}

/// A monotone alignment of two resampled centerlines on the symmetric epipolar distance:
/// the matched index pairs and the mean distance along the path, px.
fn align(
    a: &[[f64; 2]],
    b: &[[f64; 2]],
    lines_a: &[Option<Line>],
    lines_b: &[Option<Line>],
) -> Option<(Vec<(usize, usize)>, f64)> {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return None;
    }
    let cost = |i: usize, j: usize| match (&lines_a[i], &lines_b[j]) {
        (Some(la), Some(lb)) => 0.5 * (line_distance(la, b[j]) + line_distance(lb, a[i])),
        _ => 1e3,
    };
    // Dynamic time warping; both ends free (a branch may be seen further in one view).
    let mut acc = vec![f64::INFINITY; n * m];
    let mut steps = vec![0u32; n * m];
    let mut from = vec![u8::MAX; n * m];
    for i in 0..n {
        for j in 0..m {
            let c = cost(i, j);
            let k = i * m + j;
            // Starting anywhere along either first row/column (free start).
            let mut best = if i == 0 || j == 0 { (c, 1, u8::MAX) } else { (f64::INFINITY, 0, u8::MAX) };
            for (dir, (pi, pj)) in [(0u8, (1usize, 1usize)), (1, (1, 0)), (2, (0, 1))] {
                if i < pi || j < pj {
                    continue;
                }
                let p = (i - pi) * m + (j - pj);
                let total = acc[p] + c;
                let count = steps[p] + 1;
                if total / f64::from(count) < best.0 / f64::from(best.1.max(1)) {
                    best = (total, count, dir);
                }
            }
            acc[k] = best.0;
            steps[k] = best.1;
            from[k] = best.2;
        }
    }
    // Free end: the best mean cost on the last row or column, preferring longer paths.
    let ends = (0..m).map(|j| (n - 1) * m + j).chain((0..n).map(|i| i * m + m - 1));
    let end = ends.min_by(|x, y| {
        let mx = acc[*x] / f64::from(steps[*x]) + 2.0 / f64::from(steps[*x]).sqrt();
        let my = acc[*y] / f64::from(steps[*y]) + 2.0 / f64::from(steps[*y]).sqrt();
        mx.total_cmp(&my)
    })?;
    let mean = acc[end] / f64::from(steps[end]);
    let mut path = Vec::with_capacity(steps[end] as usize);
    let mut k = end;
    loop {
        let (i, j) = (k / m, k % m);
        path.push((i, j));
        match from[k] {
            0 => k = (i - 1) * m + (j - 1),
            1 => k = (i - 1) * m + j,
            2 => k = i * m + (j - 1),
            _ => break,
        }
    }
    path.reverse();
    Some((path, mean))
}

/// The midpoint of the closest approach of the rays through `xa` (view a) and `xb` (view b),
/// and half the gap between them, mm.
#[must_use]
pub fn triangulate(a: &CArmProjection, xa: [f64; 2], b: &CArmProjection, xb: [f64; 2]) -> (Point3<f64>, f64) {
    let (oa, da) = a.ray_through_pixel(&Point2::new(xa[0], xa[1]));
    let (ob, db) = b.ray_through_pixel(&Point2::new(xb[0], xb[1]));
    let (da, db) = (da.into_inner(), db.into_inner());
    let w = oa - ob;
    let (aa, bb, cc, dd, ee) = (da.dot(&da), da.dot(&db), db.dot(&db), da.dot(&w), db.dot(&w));
    let denom = aa * cc - bb * bb;
    let (s, t) =
        if denom.abs() < 1e-12 { (0.0, ee / cc) } else { ((bb * ee - cc * dd) / denom, (aa * ee - bb * dd) / denom) };
    let pa = oa + da * s;
    let pb = ob + db * t;
    (Point3::from((pa.coords + pb.coords) / 2.0), (pa - pb).norm() / 2.0)
}

/// Pixels to mm at a point's depth in a view (the detector pixel over the magnification).
fn mm_per_px(p: &CArmProjection, at: &Point3<f64>) -> f64 {
    let depth = p.depth_mm(at).max(1.0);
    depth / p.intrinsics[(0, 0)].max(1e-9)
}

fn rms(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v * v, n + 1));
    (n > 0).then(|| (sum / n as f64).sqrt())
}

/// Angle between the two views' beams, degrees.
#[must_use]
pub fn view_separation_deg(a: &CArmProjection, b: &CArmProjection) -> f64 {
    a.beam_direction().dot(&b.beam_direction()).clamp(-1.0, 1.0).acos().to_degrees()
}

/// A resampled centerline and its radii, px.
type Sampled = (Vec<[f64; 2]>, Vec<f64>);

/// A candidate correspondence: branch `a` of the first view, `b` of the second, the aligned
/// point pairs and the cost (lower is better).
struct Candidate {
    cost: f64,
    a: usize,
    b: usize,
    path: Vec<(usize, usize)>,
}

/// Every plausible branch pair, scored: mean symmetric epipolar distance along the aligned
/// points, over the share of the shorter branch matched, halved when the names agree and
/// doubled when they differ.
fn candidates(a: View<'_>, b: View<'_>, sa: &[Sampled], sb: &[Sampled], params: &ReconstructParams) -> Vec<Candidate> {
    // Each point's epipolar line in the other view, once.
    let lines_a: Vec<Vec<Option<Line>>> =
        sa.iter().map(|(p, _)| p.iter().map(|x| epipolar_line(a.projection, b.projection, *x)).collect()).collect();
    let lines_b: Vec<Vec<Option<Line>>> =
        sb.iter().map(|(p, _)| p.iter().map(|x| epipolar_line(b.projection, a.projection, *x)).collect()).collect();
    let mut out = Vec::new();
    for (i, (pa, _)) in sa.iter().enumerate() {
        for (j, (pb, _)) in sb.iter().enumerate() {
            let (label_a, label_b) = (a.tree.branches[i].label, b.tree.branches[j].label);
            let named = label_a != VeinLabel::Branch && label_b != VeinLabel::Branch;
            // Either branch may be the one seen only in part: either direction will do.
            let reach = 3.0 * params.max_epipolar_px;
            if !plausible(pb, &lines_a[i], reach) && !plausible(pa, &lines_b[j], reach) {
                continue;
            }
            let Some((path, mean)) = align(pa, pb, &lines_a[i], &lines_b[j]) else { continue };
            let weight = match (named, label_a == label_b) {
                (true, true) => 0.5,
                (true, false) => 2.0,
                _ => 1.0,
            };
            let covered = path.len() as f64 / pa.len().min(pb.len()).max(1) as f64;
            if mean <= params.max_epipolar_px && covered >= 0.5 {
                out.push(Candidate { cost: mean * weight / covered.min(1.0), a: i, b: j, path });
            }
        }
    }
    out.sort_by(|x, y| x.cost.total_cmp(&y.cost));
    out
}

/// A quick test before the alignment: do most of a few epipolar lines of one branch pass
/// within `reach_px` of the other branch?
fn plausible(other: &[[f64; 2]], lines: &[Option<Line>], reach_px: f64) -> bool {
    let probes: Vec<&Line> = lines.iter().step_by((lines.len() / 8).max(1)).flatten().collect();
    if probes.is_empty() {
        return false;
    }
    let near =
        probes.iter().filter(|line| other.iter().step_by(4).any(|q| line_distance(line, *q) <= reach_px)).count();
    near * 2 >= probes.len()
}

/// A matched pair triangulated point by point.
fn triangulated(a: View<'_>, b: View<'_>, sa: &Sampled, sb: &Sampled, c: &Candidate) -> Branch3d {
    let ((pa, ra), (pb, rb)) = (sa, sb);
    let mut points = Vec::with_capacity(c.path.len());
    let (mut radius, mut uncertainty, mut errors_a, mut errors_b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &(ia, ib) in &c.path {
        let (p, gap) = triangulate(a.projection, pa[ia], b.projection, pb[ib]);
        let reproject = |proj: &CArmProjection, xy: [f64; 2]| {
            proj.project(&p).map_or(f64::INFINITY, |q| (q.x - xy[0]).hypot(q.y - xy[1]))
        };
        errors_a.push(reproject(a.projection, pa[ia]));
        errors_b.push(reproject(b.projection, pb[ib]));
        radius.push(0.5 * (ra[ia] * mm_per_px(a.projection, &p) + rb[ib] * mm_per_px(b.projection, &p)));
        uncertainty.push(gap.max(0.5 * mm_per_px(a.projection, &p)));
        points.push([p.x, p.y, p.z]);
    }
    let (ba, bb) = (&a.tree.branches[c.a], &b.tree.branches[c.b]);
    Branch3d {
        id: ba.id,
        view_ids: [Some(ba.id), Some(bb.id)],
        parent: None,
        label: if ba.label == VeinLabel::Branch { bb.label } else { ba.label },
        points_mm: points,
        radius_mm: radius,
        uncertainty_mm: uncertainty,
        reprojection_rms_px: [rms(errors_a.into_iter()), rms(errors_b.into_iter())],
        seen_in: SeenIn::Both,
    }
}

/// Where a branch seen in one view only leaves its parent, when the parent was reconstructed:
/// the parent's 3D point whose image is nearest the branch's first point, and that point's
/// uncertainty.
struct Anchor {
    /// The 3D branch it leaves.
    parent_id: u32,
    /// The takeoff in 3D.
    point: Point3<f64>,
    /// Its uncertainty, mm.
    uncertainty_mm: f64,
}

/// The anchor of a one-view branch whose first point is `start` in `proj`'s image, on `parent`.
fn anchor_on(parent: &Branch3d, proj: &CArmProjection, start: [f64; 2]) -> Option<Anchor> {
    let (k, distance_px) = parent
        .points_mm
        .iter()
        .enumerate()
        .filter_map(|(k, p)| proj.project(&Point3::from(*p)).map(|q| (k, (q.x - start[0]).hypot(q.y - start[1]))))
        .min_by(|x, y| x.1.total_cmp(&y.1))?;
    // A takeoff more than a few pixels off its parent's image is not on that parent.
    (distance_px <= 5.0).then(|| Anchor {
        parent_id: parent.id,
        point: Point3::from(parent.points_mm[k]),
        uncertainty_mm: parent.uncertainty_mm[k],
    })
}

/// A branch seen in one view only. With an anchor it is placed at its takeoff's depth (the
/// takeoff exact, the uncertainty growing with the distance from it: a vein on the heart's
/// surface runs in depth at most about as steeply as across the image); without one at the
/// isocentre's depth with the full spread.
fn one_view(
    br: &crate::segment::TreeBranch,
    proj: &CArmProjection,
    first: bool,
    id: u32,
    anchor: Option<&Anchor>,
) -> Branch3d {
    let depth = anchor.map_or(proj.distance_source_to_patient_mm, |a| proj.depth_mm(&a.point));
    let at = |xy: &[f64; 2]| proj.back_project(&Point2::new(xy[0], xy[1]), depth);
    let points: Vec<Point3<f64>> = br.points.iter().map(&at).collect();
    let uncertainty_mm = match anchor {
        Some(a) => {
            crate::geometry::cumulative_arc_mm(&points).into_iter().map(|arc_mm| a.uncertainty_mm + arc_mm).collect()
        }
        None => vec![ONE_VIEW_DEPTH_SPREAD_MM; points.len()],
    };
    let radius = points.iter().zip(&br.radius_px).map(|(p, r)| r * mm_per_px(proj, p)).collect();
    Branch3d {
        id,
        view_ids: if first { [Some(br.id), None] } else { [None, Some(br.id)] },
        parent: anchor.map(|a| a.parent_id),
        label: br.label,
        uncertainty_mm,
        points_mm: points.iter().map(|p| [p.x, p.y, p.z]).collect(),
        radius_mm: radius,
        reprojection_rms_px: if first { [Some(0.0), None] } else { [None, Some(0.0)] },
        seen_in: if first { SeenIn::FirstOnly } else { SeenIn::SecondOnly },
    }
}

/// Two centerlines can nearly always be paired along epipolar lines (some 3D curve projects to
/// both), so a wrong pairing shows in the topology and at the takeoffs: a matched branch whose
/// parents are matched too must have them matched to each other, and then both views show the
/// same takeoff point, so the two takeoffs must lie on each other's epipolar lines. Returns the
/// matched branches checked and how many failed.
fn takeoffs_checked(
    a: View<'_>,
    b: View<'_>,
    partner_a: &[Option<usize>],
    partner_b: &[Option<usize>],
    params: &ReconstructParams,
) -> (usize, usize) {
    let index_a = |id: Option<u32>| id.and_then(|id| a.tree.branches.iter().position(|x| x.id == id));
    let index_b = |id: Option<u32>| id.and_then(|id| b.tree.branches.iter().position(|x| x.id == id));
    let (mut takeoffs, mut takeoffs_off) = (0usize, 0usize);
    for (ia, ib) in partner_a.iter().enumerate().filter_map(|(ia, ib)| ib.map(|ib| (ia, ib))) {
        let (ba, bb) = (&a.tree.branches[ia], &b.tree.branches[ib]);
        let (Some(pa), Some(pb)) = (index_a(ba.parent), index_b(bb.parent)) else { continue };
        if partner_a[pa].is_none() || partner_b[pb].is_none() {
            continue;
        }
        takeoffs += 1;
        if partner_a[pa] != Some(pb) {
            takeoffs_off += 1;
            continue;
        }
        let distance = match (
            epipolar_line(a.projection, b.projection, ba.points[0]),
            epipolar_line(b.projection, a.projection, bb.points[0]),
        ) {
            (Some(la), Some(lb)) => 0.5 * (line_distance(&la, bb.points[0]) + line_distance(&lb, ba.points[0])),
            _ => f64::INFINITY,
        };
        if distance > params.max_epipolar_px {
            takeoffs_off += 1;
        }
    }
    (takeoffs, takeoffs_off)
}

/// Reconstructs the tree seen in views `a` and `b`.
#[must_use]
pub fn reconstruct(a: View<'_>, b: View<'_>, params: &ReconstructParams) -> Tree3dReconstruction {
    let separation = view_separation_deg(a.projection, b.projection);
    let mut warnings = Vec::new();
    if separation < params.min_separation_deg {
        warnings.push(format!(
            "the views are {separation:.0} deg apart (under {:.0}): depth along the beams is poorly determined",
            params.min_separation_deg
        ));
    }
    let sampled = |t: &BranchTree| -> Vec<Sampled> {
        t.branches.iter().map(|br| resample(&br.points, &br.radius_px, 1.0)).collect()
    };
    let (sa, sb) = (sampled(a.tree), sampled(b.tree));
    let (mut used_a, mut used_b) = (vec![false; sa.len()], vec![false; sb.len()]);
    let mut branches: Vec<Branch3d> = Vec::new();
    // Best pairs first, one partner each, the tree's topology counting: a pair whose parents
    // were matched to each other is likelier, one whose parents went to other partners less so.
    let mut pool = candidates(a, b, &sa, &sb, params);
    let (mut partner_a, mut partner_b): (Vec<Option<usize>>, Vec<Option<usize>>) =
        (vec![None; sa.len()], vec![None; sb.len()]);
    let index_a = |id: Option<u32>| id.and_then(|id| a.tree.branches.iter().position(|x| x.id == id));
    let index_b = |id: Option<u32>| id.and_then(|id| b.tree.branches.iter().position(|x| x.id == id));
    loop {
        pool.retain(|c| !used_a[c.a] && !used_b[c.b]);
        let topology = |c: &Candidate| {
            let (pa, pb) = (index_a(a.tree.branches[c.a].parent), index_b(b.tree.branches[c.b].parent));
            match (pa, pb) {
                (Some(pa), Some(pb)) if partner_a[pa] == Some(pb) => 0.5,
                (Some(pa), Some(pb)) if partner_a[pa].is_some() || partner_b[pb].is_some() => 3.0,
                _ => 1.0,
            }
        };
        let Some(best) = (0..pool.len())
            .min_by(|x, y| (pool[*x].cost * topology(&pool[*x])).total_cmp(&(pool[*y].cost * topology(&pool[*y]))))
        else {
            break;
        };
        let c = pool.swap_remove(best);
        used_a[c.a] = true;
        used_b[c.b] = true;
        partner_a[c.a] = Some(c.b);
        partner_b[c.b] = Some(c.a);
        branches.push(triangulated(a, b, &sa[c.a], &sb[c.b], &c));
    }
    let (takeoffs, takeoffs_off) = takeoffs_checked(a, b, &partner_a, &partner_b, params);
    let takeoffs_disagree = takeoffs_off * 3 > takeoffs;
    if takeoffs_disagree {
        warnings.push(format!(
            "{takeoffs_off} of {takeoffs} matched side branches leave different parents, or their parent at points \
             that do not correspond, in the two views: the two trees may not show the same veins (or the geometry is off)"
        ));
    }
    // Parents: the first view's parent where it was reconstructed.
    let reconstructed: Vec<u32> = branches.iter().filter_map(|b| b.view_ids[0]).collect();
    for br in &mut branches {
        br.parent =
            br.view_ids[0].and_then(|v| a.tree.branch(v)).and_then(|t| t.parent).filter(|p| reconstructed.contains(p));
    }
    let matched = branches.len();
    // One-view branches, parents before children (a tree's branches come parent first), each
    // anchored where it leaves a parent already in 3D. Second-view-only branches get
    // identifiers past the first view's so that no two 3D branches share one.
    let mut next_id = a.tree.branches.iter().map(|x| x.id + 1).max().unwrap_or(0);
    let mut single = 0;
    for (view, used, first) in [(a, &used_a, true), (b, &used_b, false)] {
        for (br, _) in view.tree.branches.iter().zip(used.iter()).filter(|(br, used)| !**used && br.points.len() >= 2) {
            let side = usize::from(!first);
            let anchor = br
                .parent
                .and_then(|p| branches.iter().find(|x| x.view_ids[side] == Some(p)))
                .and_then(|parent| anchor_on(parent, view.projection, br.points[0]));
            let id = if first {
                br.id
            } else {
                next_id += 1;
                next_id - 1
            };
            branches.push(one_view(br, view.projection, first, id, anchor.as_ref()));
            single += 1;
        }
    }
    if single > 0 {
        warnings.push(format!(
            "{single} branches seen in one view only: placed at their takeoff's depth (at the isocentre's where the parent is not in 3D)"
        ));
    }
    let total = a.tree.branches.len().max(b.tree.branches.len()).max(1);
    if matched * 2 < total {
        warnings.push(format!("only {matched} of {total} branches could be matched between the views"));
    }
    let low_confidence = separation < params.min_separation_deg || matched * 2 < total || takeoffs_disagree;
    Tree3dReconstruction { branches, view_separation_deg: separation, low_confidence, warnings }
}

/// The frame of run `b` at the cardiac phase of frame `frame_a` of run `a` (phase: the share
/// of the R-R interval since the last R wave, from each run's R-wave frames and frame time);
/// `None` when either run lacks R waves or frame times.
#[must_use]
pub fn phase_matched_frame(
    a: &crate::acquisition::CineTiming,
    frame_a: u32,
    b: &crate::acquisition::CineTiming,
    frames_b: u32,
) -> Option<u32> {
    let phase = |timing: &crate::acquisition::CineTiming, frame: u32| -> Option<f64> {
        let dt = timing.frame_time_ms?;
        let r = &timing.r_wave_frame_indices;
        let previous = r.iter().copied().filter(|k| *k <= frame).max()?;
        let next = r.iter().copied().find(|k| *k > frame);
        let rr_ms = match next {
            Some(n) => f64::from(n - previous) * dt,
            None => 60_000.0 / timing.heart_rate_bpm.filter(|h| *h > 0.0)?,
        };
        (rr_ms > 0.0).then(|| f64::from(frame - previous) * dt / rr_ms)
    };
    let target = phase(a, frame_a)?;
    (0..frames_b)
        .filter_map(|k| phase(b, k).map(|p| (k, (p - target).abs())))
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(k, _)| k)
}

/// The reconstructed tree as tubes in Wavefront OBJ (patient LPS mm), one object per branch
/// named by its label and identifier, for other viewers.
#[must_use]
pub fn tubes_obj(tree: &Tree3dReconstruction, sides: usize) -> String {
    use std::fmt::Write as _;
    let sides = sides.max(3);
    let mut obj = String::from("# csnav two-view reconstruction: tubes, patient LPS mm\n");
    let mut base = 1usize;
    for b in &tree.branches {
        let pts: Vec<Vector3<f64>> = b.points_mm.iter().map(|p| Vector3::from(*p)).collect();
        if pts.len() < 2 {
            continue;
        }
        let _ = writeln!(obj, "o {}_{}", b.label.abbreviation(), b.id);
        // A normal carried along the centerline (parallel transport), so rings do not twist.
        let tangent = |k: usize| (pts[(k + 1).min(pts.len() - 1)] - pts[k.saturating_sub(1)]).normalize();
        let t0 = tangent(0);
        let helper = if t0.x.abs() < 0.9 { Vector3::x() } else { Vector3::y() };
        let mut normal = t0.cross(&helper).normalize();
        for (k, p) in pts.iter().enumerate() {
            let t = tangent(k);
            normal = (normal - t * normal.dot(&t)).try_normalize(1e-9).unwrap_or(normal);
            let binormal = t.cross(&normal);
            let r = b.radius_mm.get(k).copied().unwrap_or(1.0);
            for s in 0..sides {
                let a = std::f64::consts::TAU * s as f64 / sides as f64;
                let v = p + (normal * a.cos() + binormal * a.sin()) * r;
                let _ = writeln!(obj, "v {:.3} {:.3} {:.3}", v.x, v.y, v.z);
            }
        }
        for k in 0..pts.len() - 1 {
            for s in 0..sides {
                let (s1, ring, next) = ((s + 1) % sides, base + k * sides, base + (k + 1) * sides);
                let _ = writeln!(obj, "f {} {} {} {}", ring + s, ring + s1, next + s1, next + s);
            }
        }
        base += pts.len() * sides;
    }
    obj
}

/// A point's distance from a polyline, for tests and reports.
#[must_use]
pub fn distance_to_polyline_mm(polyline: &[Vector3<f64>], p: &Vector3<f64>) -> f64 {
    polyline
        .windows(2)
        .map(|w| {
            let d = w[1] - w[0];
            let t =
                if d.norm_squared() > 1e-12 { ((p - w[0]).dot(&d) / d.norm_squared()).clamp(0.0, 1.0) } else { 0.0 };
            (w[0] + d * t - p).norm()
        })
        .fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{NodeKind, TreeBranch, TreeNode};

    fn view(primary: f64, secondary: f64) -> CArmProjection {
        CArmProjection::new(primary, secondary, 1000.0, 750.0, [0.2, 0.2], 512, 512).unwrap()
    }

    /// A branch of the scene: label, parent, centerline (mm), radius (mm).
    type SceneBranch = (VeinLabel, Option<usize>, Vec<Vector3<f64>>, f64);

    /// A CS arc in the AV groove with two side branches running toward the apex, mm.
    fn scene() -> Vec<SceneBranch> {
        let cs: Vec<Vector3<f64>> = (0..=90)
            .map(|k| {
                let a = (f64::from(k) * 1.2).to_radians();
                Vector3::new(-40.0 + 40.0 * a.cos(), 30.0 * a.sin() - 10.0, 5.0 * a.sin())
            })
            .collect();
        let branch = |from: Vector3<f64>, dir: Vector3<f64>, bend: Vector3<f64>| -> Vec<Vector3<f64>> {
            (0..=50)
                .map(|k| {
                    let t = f64::from(k);
                    from + dir * t + bend * (t * t / 100.0)
                })
                .collect()
        };
        let plv = branch(cs[40], Vector3::new(0.3, 0.2, -0.9).normalize(), Vector3::new(0.1, 0.05, 0.0));
        let lmv = branch(cs[70], Vector3::new(-0.2, 0.5, -0.8).normalize(), Vector3::new(-0.05, 0.1, 0.0));
        vec![
            (VeinLabel::CoronarySinus, None, cs, 4.0),
            (VeinLabel::PosterolateralVein, Some(0), plv, 1.5),
            (VeinLabel::LateralMarginalVein, Some(0), lmv, 1.2),
        ]
    }

    /// The scene as a view's 2D tree.
    fn tree_in(p: &CArmProjection, scene: &[SceneBranch]) -> BranchTree {
        let mut tree = BranchTree::default();
        for (k, (label, parent, points, radius_mm)) in scene.iter().enumerate() {
            let px: Vec<[f64; 2]> =
                points.iter().filter_map(|q| p.project(&Point3::from(*q)).map(|x| [x.x, x.y])).collect();
            let radius_px: Vec<f64> = points.iter().map(|q| radius_mm / mm_per_px(p, &Point3::from(*q))).collect();
            let id = k as u32;
            tree.nodes.push(TreeNode { id, kind: if k == 0 { NodeKind::Root } else { NodeKind::End }, xy: px[0] });
            tree.branches.push(TreeBranch::measured(
                id,
                parent.map(|p| p as u32),
                *label,
                id,
                id,
                &px,
                &radius_px,
                None,
            ));
        }
        tree
    }

    /// The scene seen in LAO 30 and RAO 30 with exact geometry, reconstructed.
    fn reconstructed_scene() -> (Tree3dReconstruction, Vec<SceneBranch>) {
        let (a, b) = (view(30.0, 0.0), view(-30.0, 0.0));
        let scene = scene();
        let (ta, tb) = (tree_in(&a, &scene), tree_in(&b, &scene));
        let r = reconstruct(
            View { tree: &ta, projection: &a },
            View { tree: &tb, projection: &b },
            &ReconstructParams::default(),
        );
        (r, scene)
    }

    #[test]
    fn exact_geometry_reconstructs_every_branch_within_a_millimetre() {
        let (r, scene) = reconstructed_scene();
        assert!(!r.low_confidence, "{:?}", r.warnings);
        assert!((r.view_separation_deg - 60.0).abs() < 0.5, "{}", r.view_separation_deg);
        assert_eq!(r.branches.len(), 3);
        for (label, parent, truth, radius_mm) in &scene {
            let got = r.branches.iter().find(|b| b.label == *label).unwrap();
            assert_eq!(got.seen_in, SeenIn::Both);
            let errors: Vec<f64> =
                got.points_mm.iter().map(|p| distance_to_polyline_mm(truth, &Vector3::from(*p))).collect();
            let rms_mm = rms(errors.iter().copied()).unwrap();
            println!(
                "{label:?}: 3D RMS {rms_mm:.3} mm, reprojection {:?} px, {} points",
                got.reprojection_rms_px,
                got.points_mm.len()
            );
            assert!(rms_mm < 1.0, "{label:?}: 3D RMS {rms_mm:.3} mm");
            for e in got.reprojection_rms_px.iter().flatten() {
                assert!(*e < 1.0, "{label:?}: reprojection {e:.3} px");
            }
            let mean_r = got.radius_mm.iter().sum::<f64>() / got.radius_mm.len() as f64;
            assert!((mean_r - radius_mm).abs() < 0.2 * radius_mm, "{label:?}: radius {mean_r:.2} vs {radius_mm}");
            assert_eq!(got.parent.is_some(), parent.is_some());
            // The branch runs the whole way: its ends near the truth's ends.
            let first = Vector3::from(got.points_mm[0]);
            assert!((first - truth[0]).norm() < 2.0, "{label:?} starts {:.1} mm off", (first - truth[0]).norm());
        }
    }

    #[test]
    fn views_too_close_are_low_confidence_and_one_view_branches_are_flagged() {
        let (a, b) = (view(30.0, 0.0), view(20.0, 0.0));
        let scene = scene();
        let (ta, mut tb) = (tree_in(&a, &scene), tree_in(&b, &scene));
        let r = reconstruct(
            View { tree: &ta, projection: &a },
            View { tree: &tb, projection: &b },
            &ReconstructParams::default(),
        );
        assert!(r.low_confidence);
        assert!(r.warnings.iter().any(|w| w.contains("10 deg apart")), "{:?}", r.warnings);
        // The LMV hidden in the second view.
        tb.branches.pop();
        let b2 = view(-30.0, 0.0);
        let tb = tree_in(&b2, &scene[..2]);
        let r = reconstruct(
            View { tree: &ta, projection: &a },
            View { tree: &tb, projection: &b2 },
            &ReconstructParams::default(),
        );
        let lmv = r.branches.iter().find(|b| b.label == VeinLabel::LateralMarginalVein).unwrap();
        assert_eq!(lmv.seen_in, SeenIn::FirstOnly);
        assert!(r.warnings.iter().any(|w| w.contains("one view only")), "{:?}", r.warnings);
        // Anchored where it leaves the CS (seen in both): the takeoff exact, the uncertainty
        // growing from there and honest (every point within it of the truth).
        let cs = r.branches.iter().find(|b| b.label == VeinLabel::CoronarySinus).unwrap();
        assert_eq!(lmv.parent, Some(cs.id));
        let truth = &scene[2].2;
        let takeoff_error = (Vector3::from(lmv.points_mm[0]) - truth[0]).norm();
        assert!(takeoff_error < 1.5, "takeoff {takeoff_error:.2} mm off");
        assert!(lmv.uncertainty_mm[0] < 2.0 && lmv.uncertainty_mm.windows(2).all(|w| w[1] >= w[0]));
        for (p, u) in lmv.points_mm.iter().zip(&lmv.uncertainty_mm) {
            let e = distance_to_polyline_mm(truth, &Vector3::from(*p));
            assert!(e <= u + 0.5, "a point {e:.1} mm off with {u:.1} mm uncertainty");
        }
        // With nothing in 3D to leave from, the isocentre's depth and the full spread; a child
        // of such a branch hangs from it, no surer than it.
        let tb = tree_in(&b2, &scene[1..2]);
        let r = reconstruct(
            View { tree: &ta, projection: &a },
            View { tree: &tb, projection: &b2 },
            &ReconstructParams::default(),
        );
        let cs = r.branches.iter().find(|b| b.label == VeinLabel::CoronarySinus).unwrap();
        assert_eq!((cs.seen_in, cs.parent), (SeenIn::FirstOnly, None));
        assert!(cs.uncertainty_mm.iter().all(|u| *u >= ONE_VIEW_DEPTH_SPREAD_MM));
        let lmv = r.branches.iter().find(|b| b.label == VeinLabel::LateralMarginalVein).unwrap();
        assert_eq!(lmv.parent, Some(cs.id));
        assert!(lmv.uncertainty_mm.iter().all(|u| *u >= ONE_VIEW_DEPTH_SPREAD_MM));
        let mut ids: Vec<u32> = r.branches.iter().map(|b| b.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), r.branches.len(), "3D branch identifiers are unique");
    }

    #[test]
    fn the_second_run_s_frame_is_taken_at_the_same_cardiac_phase() {
        use crate::acquisition::CineTiming;
        let timing = |r: Vec<u32>, dt: f64| CineTiming {
            frame_time_ms: Some(dt),
            r_wave_frame_indices: r,
            heart_rate_bpm: Some(60.0),
            ..CineTiming::default()
        };
        // Run a: R waves at frames 2 and 17 (15 fps, 1 s apart); frame 9 is 7/15 into the beat.
        let a = timing(vec![2, 17], 1000.0 / 15.0);
        // Run b: R waves at 5 and 20: the same phase is frame 12.
        let b = timing(vec![5, 20], 1000.0 / 15.0);
        assert_eq!(phase_matched_frame(&a, 9, &b, 24), Some(12));
        // At 30 fps with R at 0 and 30: 7/15 of the beat is frame 14.
        let b = timing(vec![0, 30], 1000.0 / 30.0);
        assert_eq!(phase_matched_frame(&a, 9, &b, 40), Some(14));
        assert_eq!(phase_matched_frame(&a, 9, &timing(Vec::new(), 66.7), 24), None, "no R waves, no match");
    }

    #[test]
    fn tubes_have_a_ring_per_point_and_quads_between() {
        let (r, _) = reconstructed_scene();
        let obj = tubes_obj(&r, 8);
        let points: usize = r.branches.iter().map(|b| b.points_mm.len()).sum();
        let segments: usize = r.branches.iter().map(|b| b.points_mm.len() - 1).sum();
        assert_eq!(obj.lines().filter(|l| l.starts_with("v ")).count(), points * 8);
        assert_eq!(obj.lines().filter(|l| l.starts_with("f ")).count(), segments * 8);
        assert_eq!(obj.lines().filter(|l| l.starts_with("o ")).count(), r.branches.len());
        let max_index = obj
            .lines()
            .filter(|l| l.starts_with("f "))
            .flat_map(|l| l.split_whitespace().skip(1).map(|v| v.parse::<usize>().unwrap()))
            .max()
            .unwrap();
        assert_eq!(max_index, points * 8, "faces index the vertices, 1-based");
    }

    /// The reconstruction's worst branch RMS against the scene, mm.
    fn worst_rms_mm(r: &Tree3dReconstruction, scene: &[SceneBranch]) -> f64 {
        scene
            .iter()
            .filter_map(|(label, _, truth, _)| {
                let got = r.branches.iter().find(|b| b.label == *label && b.seen_in == SeenIn::Both)?;
                rms(got.points_mm.iter().map(|p| distance_to_polyline_mm(truth, &Vector3::from(*p))))
            })
            .fold(f64::INFINITY.min(0.0), f64::max)
    }

    #[test]
    fn refinement_recovers_a_rotated_and_shifted_second_view() {
        let (a, b_true) = (view(30.0, 0.0), view(-30.0, 0.0));
        let scene = scene();
        // The trees are what the true geometry shows; the second view's DICOM geometry is off by
        // a rotation of about 2 deg about the isocentre and an 8 mm shift across the baseline.
        let (ta, tb) = (tree_in(&a, &scene), tree_in(&b_true, &scene));
        let baseline = (b_true.source_in_patient - a.source_in_patient).normalize();
        let across =
            [baseline.cross(&Vector3::z()).normalize(), baseline.cross(&baseline.cross(&Vector3::z())).normalize()];
        let error = refine::tests_support::params([0.02, -0.022, 0.015], [6.0, -5.3]);
        let b_nominal = refine::tests_support::moved(&b_true, &error, &across).unwrap();
        let params = ReconstructParams { max_epipolar_px: 200.0, ..ReconstructParams::default() };
        let unrefined =
            reconstruct(View { tree: &ta, projection: &a }, View { tree: &tb, projection: &b_nominal }, &params);
        let before = worst_rms_mm(&unrefined, &scene);
        let (b_refined, report) =
            refine::refine_second_view(View { tree: &ta, projection: &a }, View { tree: &tb, projection: &b_nominal })
                .unwrap();
        // A tree that does not correspond (the second view's labels shuffled) is refused, not fitted.
        let mut shuffled = tb.clone();
        let labels: Vec<VeinLabel> = shuffled.branches.iter().map(|b| b.label).collect();
        for (k, b) in shuffled.branches.iter_mut().enumerate() {
            b.label = labels[(k + 1) % labels.len()];
        }
        let refused = refine::refine_second_view(
            View { tree: &ta, projection: &a },
            View { tree: &shuffled, projection: &b_nominal },
        );
        assert!(refused.is_err(), "{refused:?}");
        let refined = reconstruct(
            View { tree: &ta, projection: &a },
            View { tree: &tb, projection: &b_refined },
            &ReconstructParams::default(),
        );
        let after = worst_rms_mm(&refined, &scene);
        println!("{report:?}; worst branch RMS {before:.2} mm before, {after:.3} mm after");
        assert!(report.rotation_deg > 1.0 && report.rotation_deg < 3.0, "{report:?}");
        assert!(report.epipolar_rms_after_px < 0.5 && report.epipolar_rms_before_px > 5.0, "{report:?}");
        assert!(after < 2.0, "after refinement {after:.2} mm");
        assert!(before > after, "refinement made it worse: {before:.2} -> {after:.2} mm");
    }

    #[test]
    fn rays_through_a_projected_point_meet_at_it() {
        let (a, b) = (view(35.0, 10.0), view(-30.0, -5.0));
        let p = Point3::new(12.0, -30.0, 25.0);
        let (xa, xb) = (a.project(&p).unwrap(), b.project(&p).unwrap());
        let (q, gap) = triangulate(&a, [xa.x, xa.y], &b, [xb.x, xb.y]);
        assert!((q - p).norm() < 1e-6 && gap < 1e-6, "{q} gap {gap}");
    }
}
