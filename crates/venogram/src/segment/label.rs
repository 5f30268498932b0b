//! Stage 5: anatomical labels of an oriented tree, from topology, calibre, arc length from
//! the ostium and (when the view angles are known) the projected direction of the LV apex.
//!
//! The rules encode research-imaging.md 4.5: the trunk is the widest path from the ostium
//! (CS, then GCV along the AV groove, then the AIV where it turns toward the apex); the MCV
//! is the first sizeable branch near the ostium; the LV-wall tributaries between MCV and AIV
//! are ordered posterolateral, lateral (marginal), anterolateral along the trunk; anything
//! smaller, or a side branch of a tributary, is `branch`.

use nalgebra::{Point3, Vector3};

use crate::geometry::CArmProjection;
use crate::labels::VeinLabel;

/// Textbook direction of the LV long axis (base to apex) in patient coordinates (LPS):
/// leftward, anterior and inferior at roughly 45 degrees to each axis.
const LONG_AXIS_LPS: [f64; 3] = [0.62, -0.55, -0.56];
/// Length of the CS from the ostium to the vein of Marshall, mm (about 3 cm).
const CS_LENGTH_MM: f64 = 30.0;
/// Distance from the ostium within which the MCV joins, mm.
const MCV_WITHIN_MM: f64 = 16.0;
/// A side branch shorter than this (its whole subtree) is a twig, `branch`.
const NAMED_MIN_LENGTH_MM: f64 = 12.0;

/// An oriented edge of the tree being labelled.
#[derive(Debug, Clone)]
pub(crate) struct OrientedEdge {
    /// Parent edge index.
    pub parent: Option<usize>,
    /// Child edge indices.
    pub children: Vec<usize>,
    /// Points, proximal to distal.
    pub points: Vec<[f64; 2]>,
    /// Radius per point, pixels.
    pub radius_px: Vec<f64>,
}

impl OrientedEdge {
    fn length_px(&self) -> f64 {
        super::graph::polyline_length(&self.points)
    }

    fn mean_radius_near_start(&self, reach_px: f64) -> f64 {
        let mut s = 0.0;
        let (mut sum, mut n) = (0.0, 0.0);
        for (i, r) in self.radius_px.iter().enumerate() {
            if i > 0 {
                s += dist(self.points[i - 1], self.points[i]);
            }
            if s > reach_px && n > 0.0 {
                break;
            }
            sum += r;
            n += 1.0;
        }
        if n > 0.0 { sum / n } else { 0.0 }
    }
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// Unit direction of a polyline at its start (pointing along it) or at its end (pointing
/// out of its last point), measured over the first or last `reach_px` pixels of arc length.
pub(crate) fn direction(points: &[[f64; 2]], at_start: bool, reach_px: f64) -> Option<[f64; 2]> {
    if points.len() < 2 {
        return None;
    }
    let seq: Vec<[f64; 2]> = if at_start { points.to_vec() } else { points.iter().rev().copied().collect() };
    let origin = seq[0];
    let mut s = 0.0;
    let mut end = seq[1];
    for w in seq.windows(2) {
        s += dist(w[0], w[1]);
        end = w[1];
        if s >= reach_px {
            break;
        }
    }
    let (dx, dy) = (end[0] - origin[0], end[1] - origin[1]);
    let n = dx.hypot(dy);
    (n > 1e-9).then(|| if at_start { [dx / n, dy / n] } else { [-dx / n, -dy / n] })
}

/// The image direction (unit) in which the LV apex lies from the AV groove, and how much of
/// the long axis survives projection (0 = along the beam, 1 = in the image plane).
#[must_use]
pub fn apical_direction(projection: &CArmProjection) -> Option<([f64; 2], f64)> {
    let axis = Vector3::from(LONG_AXIS_LPS).normalize();
    let iso = Point3::origin();
    let a = projection.project(&iso)?;
    let b = projection.project(&(iso + axis * 50.0))?;
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let n = dx.hypot(dy);
    let pixels_per_mm = projection.intrinsics[(0, 0)] / projection.distance_source_to_patient_mm;
    (n > 1e-6).then(|| ([dx / n, dy / n], (n / (50.0 * pixels_per_mm)).min(1.0)))
}

/// Labels every edge of the oriented tree. `roots` are the edges leaving the root node,
/// `mm_per_px` converts lengths (a nominal value when the spacing is unknown).
pub(crate) fn label_tree(
    edges: &[OrientedEdge],
    roots: &[usize],
    mm_per_px: f64,
    apical: Option<([f64; 2], f64)>,
) -> Vec<VeinLabel> {
    let mut labels = vec![VeinLabel::Branch; edges.len()];
    if edges.is_empty() || roots.is_empty() {
        return labels;
    }
    let subtree_len: Vec<f64> = subtree_lengths(edges);
    // The trunk: from the widest root edge, always the child that continues widest and
    // straightest.
    let Some(&first) = roots.iter().max_by(|a, b| {
        (edges[**a].mean_radius_near_start(20.0) * subtree_len[**a].sqrt())
            .total_cmp(&(edges[**b].mean_radius_near_start(20.0) * subtree_len[**b].sqrt()))
    }) else {
        return labels;
    };
    let trunk = continuation_path(edges, first, &subtree_len);
    // Arc length along the trunk at the start of each trunk edge, and the trunk's points.
    let mut trunk_start_px = Vec::with_capacity(trunk.len());
    let mut s = 0.0;
    let mut trunk_points: Vec<([f64; 2], f64)> = Vec::new();
    for &e in &trunk {
        trunk_start_px.push(s);
        for (i, p) in edges[e].points.iter().enumerate() {
            if i > 0 {
                s += dist(edges[e].points[i - 1], *p);
            }
            trunk_points.push((*p, s));
        }
    }
    let trunk_len_px = s;
    // The AIV starts where the trunk heads toward the apex for good (when the view shows it).
    let aiv_start_px = apical
        .filter(|(_, visible)| *visible > 0.3)
        .and_then(|(dir, _)| aiv_start(&trunk_points, dir, CS_LENGTH_MM / mm_per_px))
        .unwrap_or(f64::INFINITY);
    let cs_end_px = CS_LENGTH_MM / mm_per_px;
    for (k, &e) in trunk.iter().enumerate() {
        let (a, b) = (trunk_start_px[k], trunk_start_px[k] + edges[e].length_px());
        // Majority label over the edge's arc-length interval.
        let parts = [
            (VeinLabel::CoronarySinus, overlap(a, b, 0.0, cs_end_px)),
            (VeinLabel::GreatCardiacVein, overlap(a, b, cs_end_px, aiv_start_px)),
            (VeinLabel::AnteriorInterventricularVein, overlap(a, b, aiv_start_px, f64::INFINITY)),
        ];
        labels[e] = parts.iter().max_by(|x, y| x.1.total_cmp(&y.1)).map_or(VeinLabel::Branch, |p| p.0);
    }
    // Side branches of the trunk, by where they leave it.
    let groove_end_px = if aiv_start_px.is_finite() { aiv_start_px } else { 0.85 * trunk_len_px };
    let mut sides: Vec<(usize, f64)> = Vec::new();
    for (k, &e) in trunk.iter().enumerate() {
        let at = trunk_start_px[k] + edges[e].length_px();
        for &c in &edges[e].children {
            if Some(&c) != trunk.get(k + 1) {
                sides.push((c, at));
            }
        }
    }
    for &r in roots {
        if r != first {
            sides.push((r, 0.0));
        }
    }
    let mcv = sides
        .iter()
        .filter(|(c, at)| *at * mm_per_px <= MCV_WITHIN_MM && subtree_len[*c] * mm_per_px >= 2.0 * NAMED_MIN_LENGTH_MM)
        .max_by(|a, b| subtree_len[a.0].total_cmp(&subtree_len[b.0]))
        .map(|(c, _)| *c);
    for &(c, at) in &sides {
        let label = if Some(c) == mcv {
            VeinLabel::MiddleCardiacVein
        } else if subtree_len[c] * mm_per_px < NAMED_MIN_LENGTH_MM || at >= groove_end_px || at * mm_per_px < 3.0 {
            VeinLabel::Branch
        } else {
            let f = at / groove_end_px;
            if f < 0.4 {
                VeinLabel::PosterolateralVein
            } else if f < 0.72 {
                VeinLabel::LateralMarginalVein
            } else {
                VeinLabel::AnterolateralVein
            }
        };
        // The label runs down the vein's continuation; its side twigs are `branch`.
        for e in continuation_path(edges, c, &subtree_len) {
            labels[e] = label;
        }
    }
    labels
}

fn overlap(a: f64, b: f64, lo: f64, hi: f64) -> f64 {
    (b.min(hi) - a.max(lo)).max(0.0)
}

fn subtree_lengths(edges: &[OrientedEdge]) -> Vec<f64> {
    fn visit(edges: &[OrientedEdge], e: usize, out: &mut Vec<f64>) -> f64 {
        let mut total = edges[e].length_px();
        for &c in &edges[e].children {
            total += visit(edges, c, out);
        }
        out[e] = total;
        total
    }
    let mut out = vec![0.0; edges.len()];
    for e in 0..edges.len() {
        if edges[e].parent.is_none() {
            visit(edges, e, &mut out);
        }
    }
    out
}

/// From `start`, the path that at each node follows the child continuing widest, longest
/// and straightest.
fn continuation_path(edges: &[OrientedEdge], start: usize, subtree_len: &[f64]) -> Vec<usize> {
    let mut path = vec![start];
    let mut cur = start;
    while !edges[cur].children.is_empty() {
        let incoming = direction(&edges[cur].points, false, 15.0);
        let score = |c: usize| {
            let r = edges[c].mean_radius_near_start(20.0);
            let straight = match (incoming, direction(&edges[c].points, true, 15.0)) {
                (Some(i), Some(o)) => (1.0 + i[0] * o[0] + i[1] * o[1]).max(0.1),
                _ => 1.0,
            };
            r * subtree_len[c].sqrt() * straight
        };
        let Some(&next) = edges[cur].children.iter().max_by(|a, b| score(**a).total_cmp(&score(**b))) else { break };
        path.push(next);
        cur = next;
    }
    path
}

/// Arc length at which the trunk turns toward the apex for good: the start of the distal
/// run of trunk points whose direction has a clear apical component.
fn aiv_start(trunk: &[([f64; 2], f64)], apex: [f64; 2], not_before_px: f64) -> Option<f64> {
    let reach = 12.0;
    let mut start = None;
    for i in (0..trunk.len()).rev() {
        let (p, s) = trunk[i];
        let j = trunk[..i].iter().rposition(|(_, t)| s - t >= reach)?;
        let q = trunk[j].0;
        let (dx, dy) = (p[0] - q[0], p[1] - q[1]);
        let n = dx.hypot(dy).max(1e-9);
        if (dx * apex[0] + dy * apex[1]) / n > 0.5 {
            start = Some(trunk[j].1);
        } else {
            break;
        }
    }
    start.filter(|s| *s > not_before_px)
}
