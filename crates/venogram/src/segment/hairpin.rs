//! Hairpins: a vein that folds back on itself, its two limbs touching near the turn.
//!
//! In a right anterior oblique view the great cardiac vein climbs the AV groove, turns over
//! the top of the ring and comes back down beside itself before it becomes the anterior
//! interventricular vein. Near the turn the two limbs lie against each other and the mask
//! shows one band twice a limb's width; thinning draws that band as one stem ending at the
//! turn, with the two limbs joining it where they part. The tree then has a bifurcation that
//! is not there, a centerline between the two veins (a limb's radius off both), and the
//! second limb hanging off the first as a side branch.
//!
//! A hairpin is recognised on the oriented tree by its shape: a short terminal stem
//! continuing the limb it grows from, and a sibling limb leaving the junction back the way
//! the first came, beside it. The stem is then replaced by the two limbs' own centerlines
//! (each limb's axis carried on into the band, but at least the band's half-width less a
//! limb's radius off the stem's axis), joined at the turn, and the second limb carried on
//! from there: one vein, no junction.

use super::label::{OrientedEdge, direction, dist, median};

/// Longest stem, in band half-widths (plus `10k` px): the limbs lie together for a few widths
/// before the turn; a long vein ending beyond a branch heading back is no fold.
const MAX_STEM_BANDS: f64 = 6.0;

/// Least cosine between the two limbs' directions leaving the junction: they run back side by
/// side (within 60 degrees).
const MIN_LIMBS_COS: f64 = 0.5;

/// Largest cosine between the stem's direction and each limb's, both leaving the junction:
/// the limbs run back from the turn (beyond about 140 degrees).
const MAX_LIMB_COS: f64 = -0.77;

/// Nearest gap between the two limbs' centerlines, in limb radii beyond touching, for them
/// to lie side by side where they part.
const MAX_LIMB_GAP_RADII: f64 = 1.5;

/// Reopens every hairpin in the oriented tree `edges` (roots `roots`): the stem becomes the
/// fold's two limbs, joined at the turn, and the second limb's subtree hangs off its end.
/// `k` is the matrix factor (1 at 512). Returns how many hairpins were opened.
pub(crate) fn open_hairpins(edges: &mut Vec<OrientedEdge>, roots: &mut [usize], k: f64) -> usize {
    let mut opened = 0;
    let mut stem = 0;
    while stem < edges.len() {
        if let Some(plan) = hairpin_at(edges, stem, k) {
            apply(edges, roots, plan);
            opened += 1;
            // Indices moved: look again from the start.
            stem = 0;
            continue;
        }
        stem += 1;
    }
    opened
}

/// A hairpin found: the stem (terminal) and the second limb, siblings off the first limb's
/// end, with each limb's axis where it is clear of the band and the limbs' radius.
#[derive(Clone, Copy)]
struct Plan {
    stem: usize,
    second: usize,
    /// Each limb's axis where it is clear of the band: a point and the unit direction towards
    /// the turn (first limb, second limb).
    limbs: [([f64; 2], [f64; 2]); 2],
    limb_radius_px: f64,
}

/// The point `at_px` of arc along `points` from its start (its last point if shorter).
fn point_at(points: &[[f64; 2]], at_px: f64) -> [f64; 2] {
    let mut s = 0.0;
    for w in points.windows(2) {
        let d = dist(w[0], w[1]);
        if s + d >= at_px {
            let t = (at_px - s) / d.max(1e-9);
            return [w[0][0] + t * (w[1][0] - w[0][0]), w[0][1] + t * (w[1][1] - w[0][1])];
        }
        s += d;
    }
    *points.last().unwrap_or(&[0.0, 0.0])
}

/// Mean radius over the arc from `from_px` to `to_px` along `points` (from its start).
fn mean_radius_between(points: &[[f64; 2]], radius_px: &[f64], from_px: f64, to_px: f64) -> Option<f64> {
    let mut s = 0.0;
    let (mut sum, mut n) = (0.0, 0usize);
    for (i, r) in radius_px.iter().enumerate() {
        if i > 0 {
            s += dist(points[i - 1], points[i]);
        }
        if s >= from_px && s <= to_px {
            sum += r;
            n += 1;
        }
    }
    (n > 0).then(|| sum / n as f64)
}

/// Signed side of `q` from the line through `o` along `d` (positive to its left).
fn side_of(o: [f64; 2], d: [f64; 2], q: [f64; 2]) -> f64 {
    d[0] * (q[1] - o[1]) - d[1] * (q[0] - o[0])
}

/// The hairpin whose stem is edge `stem`, if its shape is one.
fn hairpin_at(edges: &[OrientedEdge], stem: usize, k: f64) -> Option<Plan> {
    let s = &edges[stem];
    let first = s.parent?;
    if !s.children.is_empty() || s.points.len() < 3 {
        return None;
    }
    let p = &edges[first];
    let junction = *p.points.last()?;
    let band_px = median(s.radius_px.clone())?;
    if s.length_px() > MAX_STEM_BANDS * band_px + 10.0 * k {
        return None;
    }
    // The limbs where they are clear of the band: reversed, the first limb reads from the
    // junction too.
    let first_back: Vec<[f64; 2]> = p.points.iter().rev().copied().collect();
    let first_back_r: Vec<f64> = p.radius_px.iter().rev().copied().collect();
    let (clear_from, clear_to) = (1.5 * band_px, 1.5 * band_px + (8.0 * k).max(2.0 * band_px));
    let r_first = mean_radius_between(&first_back, &first_back_r, clear_from, clear_to)?;
    let d_stem = direction(&s.points, true, (6.0 * k).max(band_px))?;
    let d_first = direction(&first_back, true, clear_to)?;
    if d_stem[0] * d_first[0] + d_stem[1] * d_first[1] > MAX_LIMB_COS {
        return None;
    }
    let mut best: Option<(Plan, f64)> = None;
    for &second in &p.children {
        if second == stem {
            continue;
        }
        let a = &edges[second];
        let Some(r_second) = mean_radius_between(&a.points, &a.radius_px, clear_from, clear_to) else { continue };
        let Some(d_second) = direction(&a.points, true, clear_to) else { continue };
        let cos = d_stem[0] * d_second[0] + d_stem[1] * d_second[1];
        let limb = 0.5 * (r_first + r_second);
        if cos > MAX_LIMB_COS || d_first[0] * d_second[0] + d_first[1] * d_second[1] < MIN_LIMBS_COS {
            continue;
        }
        // Side by side where they part, on either side of the stem's axis.
        let at = 0.5 * (clear_from + clear_to);
        let (q1, q2) = (point_at(&first_back, at), point_at(&a.points, at));
        let (s1, s2) = (side_of(junction, d_stem, q1), side_of(junction, d_stem, q2));
        if s1 * s2 >= 0.0 || dist(q1, q2) > (2.0 + MAX_LIMB_GAP_RADII) * limb + 2.0 * k {
            continue;
        }
        if best.as_ref().is_none_or(|(_, c)| cos < *c) {
            let limbs = [(q1, [-d_first[0], -d_first[1]]), (q2, [-d_second[0], -d_second[1]])];
            best = Some((Plan { stem, second, limbs, limb_radius_px: limb }, cos));
        }
    }
    best.map(|(plan, _)| plan)
}

/// Unit normal (to the left) of a polyline at each point, from its neighbours.
fn normals(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    (0..points.len())
        .map(|i| {
            let (a, b) = (points[i.saturating_sub(2)], points[(i + 2).min(points.len() - 1)]);
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            let n = dx.hypot(dy).max(1e-9);
            [-dy / n, dx / n]
        })
        .collect()
}

/// Rewrites the stem of `plan` as the fold's two limbs and carries the second limb on from
/// the turn; the second limb's edge goes.
fn apply(edges: &mut Vec<OrientedEdge>, roots: &mut [usize], plan: Plan) {
    let Plan { stem, second, limbs, limb_radius_px } = plan;
    let s = &edges[stem];
    let junction = s.points[0];
    let Some(d_stem) = direction(&s.points, true, f64::INFINITY) else { return };
    let n = normals(&s.points);
    // Each limb's lateral offset from the stem's axis along the stem, following its own axis
    // from where it is clear; offsets do not cross the axis (the limbs meet at the turn) nor
    // leave the band.
    let cross = |v: [f64; 2]| d_stem[0] * v[1] - d_stem[1] * v[0];
    let dot = |v: [f64; 2]| d_stem[0] * v[0] + d_stem[1] * v[1];
    // Per limb: its side of the axis, its offset and arc along the stem where it is clear,
    // and how fast its offset changes along the stem.
    let course = |(q, d): ([f64; 2], [f64; 2])| {
        let rel = [q[0] - junction[0], q[1] - junction[1]];
        (cross(rel), dot(rel), cross(d) / dot(d).max(0.3))
    };
    let mut arc = vec![0.0; s.points.len()];
    for i in 1..s.points.len() {
        arc[i] = arc[i - 1] + dist(s.points[i - 1], s.points[i]);
    }
    let offset = |i: usize, (lat0, s0, slope): (f64, f64, f64)| {
        let lat = lat0 + (arc[i] - s0) * slope;
        let lateral = if lat * lat0 <= 0.0 { 0.0 } else { lat };
        let band = s.radius_px[i];
        // Limbs side by side fill the band: each lies a limb's radius in from its edge.
        let filled = (band - limb_radius_px).clamp(0.0, limb_radius_px);
        let lat = lat0.signum() * lateral.abs().max(filled).min(band);
        [s.points[i][0] + lat * n[i][0], s.points[i][1] + lat * n[i][1]]
    };
    let (first_course, second_course) = (course(limbs[0]), course(limbs[1]));
    let up: Vec<[f64; 2]> = (0..s.points.len()).map(|i| offset(i, first_course)).collect();
    let down: Vec<[f64; 2]> = (0..s.points.len()).rev().map(|i| offset(i, second_course)).collect();
    let a = &edges[second];
    // The second limb from where it leaves the band's side.
    let joint = *down.last().unwrap_or(&a.points[0]);
    let start = a.points.iter().position(|q| dist(*q, a.points[0]) > dist(joint, a.points[0])).unwrap_or(0);
    let mut points = up;
    points.extend(down);
    let mut radius_px = vec![limb_radius_px; points.len()];
    points.extend_from_slice(&a.points[start..]);
    radius_px.extend_from_slice(&a.radius_px[start..]);
    let children = a.children.clone();
    for &c in &children {
        edges[c].parent = Some(stem);
    }
    let first = edges[stem].parent;
    edges[stem].points = points;
    edges[stem].radius_px = radius_px;
    edges[stem].children = children;
    let Some(f) = first else { return };
    edges[f].children.retain(|c| *c != second);
    remove_edge(edges, roots, second);
    // With no other branch at the junction, the first limb and the fold are one edge.
    let stem = if second < stem { stem - 1 } else { stem };
    let f = if second < f { f - 1 } else { f };
    if edges[f].children == [stem] {
        let h = std::mem::replace(
            &mut edges[stem],
            OrientedEdge { parent: None, children: Vec::new(), points: Vec::new(), radius_px: Vec::new() },
        );
        for &c in &h.children {
            edges[c].parent = Some(f);
        }
        edges[f].points.extend_from_slice(&h.points);
        edges[f].radius_px.extend_from_slice(&h.radius_px);
        edges[f].children = h.children;
        remove_edge(edges, roots, stem);
    }
}

/// Removes edge `gone` (already detached from its parent and children) and renumbers the rest.
fn remove_edge(edges: &mut Vec<OrientedEdge>, roots: &mut [usize], gone: usize) {
    edges.remove(gone);
    let renumber = |i: usize| if i > gone { i - 1 } else { i };
    for e in edges.iter_mut() {
        e.parent = e.parent.map(renumber);
        for c in &mut e.children {
            *c = renumber(*c);
        }
    }
    for r in roots.iter_mut() {
        *r = renumber(*r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points every pixel along straight runs through `corners`.
    fn path(corners: &[[f64; 2]]) -> Vec<[f64; 2]> {
        let mut out = vec![corners[0]];
        for w in corners.windows(2) {
            let n = dist(w[0], w[1]).ceil().max(1.0) as usize;
            out.extend((1..=n).map(|i| {
                let t = i as f64 / n as f64;
                [w[0][0] + t * (w[1][0] - w[0][0]), w[0][1] + t * (w[1][1] - w[0][1])]
            }));
        }
        out
    }

    fn edge(parent: Option<usize>, children: Vec<usize>, corners: &[[f64; 2]], radius_px: f64) -> OrientedEdge {
        let points = path(corners);
        let radius_px = vec![radius_px; points.len()];
        OrientedEdge { parent, children, points, radius_px }
    }

    /// A fold: the first limb climbs at x = 104, the second comes back down at x = 96 (limbs of
    /// radius 4, touching), and thinning joined them at (100, 100) into one stem up the band
    /// (half-width 8) to the turn; `stem_px` long.
    fn fold(stem_px: f64) -> (Vec<OrientedEdge>, Vec<usize>) {
        let junction = [100.0, 100.0];
        let edges = vec![
            edge(None, vec![1, 2], &[[104.0, 200.0], [104.0, 110.0], junction], 4.0),
            edge(Some(0), vec![], &[junction, [100.0, 100.0 - stem_px]], 8.0),
            edge(Some(0), vec![], &[junction, [96.0, 110.0], [96.0, 200.0]], 4.0),
        ];
        (edges, vec![0])
    }

    #[test]
    fn a_fold_is_one_vein_running_up_one_limb_and_down_the_other() {
        let (mut edges, mut roots) = fold(20.0);
        assert_eq!(open_hairpins(&mut edges, &mut roots, 1.0), 1);
        assert_eq!(edges.len(), 1, "no junction left");
        assert_eq!(roots, vec![0]);
        let points = &edges[0].points;
        let (start, end) = (points[0], *points.last().unwrap());
        assert!(dist(start, [104.0, 200.0]) < 1e-9 && dist(end, [96.0, 200.0]) < 1e-9);
        // Up the band on the first limb's side, down on the second's.
        let beside = |x: f64| points.iter().filter(|p| p[1] < 97.0 && (p[0] - x).abs() <= 0.5).count();
        assert!(beside(104.0) >= 15 && beside(96.0) >= 15, "up {} down {}", beside(104.0), beside(96.0));
        assert!(points.iter().all(|p| p[1] >= 99.0 || (p[0] - 100.0).abs() >= 3.5), "nothing left on the stem's axis");
        assert!(edges[0].radius_px.iter().all(|r| (*r - 4.0).abs() < 1e-9), "the limbs' calibre");
    }

    #[test]
    fn a_long_vein_past_a_branch_heading_back_is_no_fold() {
        let (mut edges, mut roots) = fold(120.0);
        assert_eq!(open_hairpins(&mut edges, &mut roots, 1.0), 0);
        assert_eq!(edges.len(), 3);
    }

    #[test]
    fn a_branch_leaving_at_a_right_angle_is_no_fold() {
        let junction = [100.0, 100.0];
        let mut edges = vec![
            edge(None, vec![1, 2], &[[104.0, 200.0], [104.0, 110.0], junction], 4.0),
            edge(Some(0), vec![], &[junction, [100.0, 80.0]], 8.0),
            edge(Some(0), vec![], &[junction, [160.0, 100.0]], 4.0),
        ];
        let mut roots = vec![0];
        assert_eq!(open_hairpins(&mut edges, &mut roots, 1.0), 0);
        assert_eq!(edges.len(), 3);
    }

    #[test]
    fn other_branches_at_the_junction_stay_on_the_first_limb() {
        let (mut edges, mut roots) = fold(20.0);
        let junction = [100.0, 100.0];
        edges[0].children.push(3);
        edges.push(edge(Some(0), vec![], &[junction, [160.0, 90.0]], 2.0));
        assert_eq!(open_hairpins(&mut edges, &mut roots, 1.0), 1);
        assert_eq!(edges.len(), 3);
        assert_eq!(edges[0].children.len(), 2);
        for &c in &edges[0].children {
            assert_eq!(edges[c].parent, Some(0));
        }
        let fold = edges[0].children.iter().find(|c| edges[**c].points.len() > 100).expect("the fold");
        assert!(dist(*edges[*fold].points.last().unwrap(), [96.0, 200.0]) < 1e-9);
    }
}
