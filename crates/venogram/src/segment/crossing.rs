//! Stage 4c: veins crossing in projection, told from bifurcations and passed through.
//!
//! Two veins that cross in the image meet in the skeleton as one four-way node, or (at a
//! shallow angle, or where the crossing is wide) as two three-way nodes a short link apart.
//! Left as they are, they make a loop that [`SkeletonGraph::break_loops_at`] cuts somewhere
//! along one of the veins, and a junction the tree reports as a bifurcation. A crossing is
//! told from a bifurcation the way a reader tells it (and as retinal-vessel topology methods
//! do): the four arms pair off into two straight paths, each keeping its calibre, crossing at
//! a clear angle. Each path is then one edge through the crossing, with no node there.
//!
//! A vein that reached the tree only through the crossing would be cut off from it by the
//! pass-through; such a crossing is left as a junction.

use super::graph::{SkeletonGraph, polyline_length};
use super::label::direction;

/// Largest bend, degrees, of a path through a crossing (between one arm and the other arm's
/// continuation).
const MAX_BEND_DEG: f64 = 30.0;
/// Smallest angle, degrees, between the two paths: veins meeting at a shallower angle run
/// together in projection, and the image cannot say which leaves where.
const MIN_CROSSING_DEG: f64 = 30.0;
/// Largest ratio of the calibres of a path's two arms (wider over narrower).
const MAX_CALIBRE_RATIO: f64 = 1.6;
/// Length (px at a 512 matrix) over which an arm's direction is measured, past the
/// crossing's own lumen.
const ARM_REACH_PX: f64 = 12.0;

/// An arm of a crossing: an edge leaving it, with its points running away from it.
struct Arm {
    edge: usize,
    /// The node at the arm's far end.
    far: usize,
    /// Points from the crossing outward.
    points: Vec<[f64; 2]>,
    /// Unit direction away from the crossing, measured past its lumen.
    direction: [f64; 2],
    /// Mean radius past the crossing's lumen, px.
    calibre_px: f64,
}

/// Resolves the crossings of the graph rooted at `root` (see the module doc): returns how
/// many were passed through. `radius_at` is the vessel radius at a point (px) and `k` the
/// matrix factor (1 at 512).
pub(crate) fn resolve_crossings(
    graph: &mut SkeletonGraph,
    root: usize,
    radius_at: &impl Fn([f64; 2]) -> f64,
    k: f64,
) -> usize {
    let mut resolved = 0;
    for n in 0..graph.nodes.len() {
        if !graph.nodes[n].alive || n == root {
            continue;
        }
        let degree = graph.degree(n);
        let candidate = if degree == 4 {
            four_way(graph, n, radius_at, k)
        } else if degree == 3 {
            split_crossing(graph, n, root, radius_at, k)
        } else {
            None
        };
        let Some(plan) = candidate else { continue };
        if apply_if_connected(graph, root, &plan) {
            resolved += 1;
        }
    }
    resolved
}

/// A resolution: the nodes and edges that go, and the two paths that replace them (each
/// from one far node to the other, with its points).
struct Plan {
    nodes: Vec<usize>,
    edges: Vec<usize>,
    paths: [(usize, usize, Vec<[f64; 2]>); 2],
}

/// A four-way node whose arms pair off into two straight paths.
fn four_way(graph: &SkeletonGraph, n: usize, radius_at: &impl Fn([f64; 2]) -> f64, k: f64) -> Option<Plan> {
    let arms = arms_at(graph, n, &graph.incident(n), radius_at, k)?;
    let arms: Vec<&Arm> = arms.iter().collect();
    let [(a, b), (c, d)] = pair_off(&arms, &[[(0, 1), (2, 3)], [(0, 2), (1, 3)], [(0, 3), (1, 2)]])?;
    let path = |i: usize, j: usize| (arms[i].far, arms[j].far, join(&arms[i].points, &[], &arms[j].points));
    Some(Plan { nodes: vec![n], edges: arms.iter().map(|a| a.edge).collect(), paths: [path(a, b), path(c, d)] })
}

/// Of `pairings` of `arms` into two paths, the one that fits (both paths straight and keeping
/// their calibre) when exactly one does, two fitting meaning the arms are too close in angle
/// to say, and its paths cross at a clear angle.
fn pair_off(arms: &[&Arm], pairings: &[[(usize, usize); 2]]) -> Option<[(usize, usize); 2]> {
    let fits: Vec<&[(usize, usize); 2]> = pairings.iter().filter(|p| pairing_fits(arms, p)).collect();
    let [pairing] = fits.as_slice() else { return None };
    let [(a, _), (c, _)] = **pairing;
    crossing_clear(arms[a], arms[c]).then_some(**pairing)
}

/// Two three-way nodes a short link apart (`n` and the link's other end) whose four outer
/// arms pair off through the link into two straight paths.
fn split_crossing(
    graph: &SkeletonGraph,
    n: usize,
    root: usize,
    radius_at: &impl Fn([f64; 2]) -> f64,
    k: f64,
) -> Option<Plan> {
    let here = graph.incident(n);
    for &link in &here {
        if graph.edges[link].a == graph.edges[link].b {
            continue;
        }
        let m = graph.edges[link].other(n);
        if m <= n || m == root || !graph.nodes[m].alive || graph.degree(m) != 3 {
            continue;
        }
        let link_points = graph.edges[link].points_from(n);
        let reach = radius_at(graph.nodes[n].xy).max(radius_at(graph.nodes[m].xy)).max(0.0) + 4.0 * k;
        if polyline_length(&link_points) > reach {
            continue;
        }
        let near: Vec<usize> = here.iter().copied().filter(|e| *e != link).collect();
        let far: Vec<usize> = graph.incident(m).into_iter().filter(|e| *e != link).collect();
        if near.len() != 2 || far.len() != 2 || near.iter().chain(&far).any(|e| graph.edges[*e].a == graph.edges[*e].b)
        {
            continue;
        }
        let near_arms = arms_at(graph, n, &near, radius_at, k)?;
        let far_arms = arms_at(graph, m, &far, radius_at, k)?;
        let arms = [&near_arms[0], &near_arms[1], &far_arms[0], &far_arms[1]];
        // A path runs from a near arm through the link to a far arm; the two near arms
        // bending into each other would be the bifurcation reading.
        let Some([(a, b), (c, d)]) = pair_off(&arms, &[[(0, 2), (1, 3)], [(0, 3), (1, 2)]]) else { continue };
        let path =
            |i: usize, j: usize| (arms[i].far, arms[j].far, join(&arms[i].points, &link_points, &arms[j].points));
        return Some(Plan {
            nodes: vec![n, m],
            edges: vec![link, near[0], near[1], far[0], far[1]],
            paths: [path(a, b), path(c, d)],
        });
    }
    None
}

/// The arms leaving node `n` along `edges`, or `None` when one of them is a self-loop or
/// too short to give a direction.
fn arms_at(
    graph: &SkeletonGraph,
    n: usize,
    edges: &[usize],
    radius_at: &impl Fn([f64; 2]) -> f64,
    k: f64,
) -> Option<Vec<Arm>> {
    let lumen = radius_at(graph.nodes[n].xy).max(0.0) + 2.0 * k;
    edges
        .iter()
        .map(|&e| {
            let edge = &graph.edges[e];
            if edge.a == edge.b {
                return None;
            }
            let points = edge.points_from(n);
            // Past the crossing's own lumen, where thinning bends every arm towards the others.
            let mut s = 0.0;
            let start = points
                .windows(2)
                .position(|w| {
                    s += (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]);
                    s >= lumen
                })
                .map(|i| i + 1)?;
            let beyond = &points[start..];
            let direction = direction(beyond, true, ARM_REACH_PX * k)?;
            let sample = &beyond[..beyond.len().min((2.0 * ARM_REACH_PX * k) as usize + 1)];
            let calibre_px = sample.iter().map(|p| radius_at(*p).max(0.5)).sum::<f64>() / sample.len() as f64;
            Some(Arm { edge: e, far: edge.other(n), points, direction, calibre_px })
        })
        .collect()
}

/// Whether both paths of `pairing` run straight through (bend at most [`MAX_BEND_DEG`]) and
/// keep their calibre (within [`MAX_CALIBRE_RATIO`]).
fn pairing_fits(arms: &[&Arm], pairing: &[(usize, usize); 2]) -> bool {
    pairing.iter().all(|&(i, j)| {
        let (a, b) = (arms[i], arms[j]);
        // Straight through: one arm leaves opposite the other.
        let cos = -(a.direction[0] * b.direction[0] + a.direction[1] * b.direction[1]);
        let bend = cos.clamp(-1.0, 1.0).acos().to_degrees();
        let ratio = a.calibre_px.max(b.calibre_px) / a.calibre_px.min(b.calibre_px);
        bend <= MAX_BEND_DEG && ratio <= MAX_CALIBRE_RATIO
    })
}

/// Whether the paths through arms `a` and `c` cross at a clear angle.
fn crossing_clear(a: &Arm, c: &Arm) -> bool {
    let cos = (a.direction[0] * c.direction[0] + a.direction[1] * c.direction[1]).abs();
    cos.clamp(0.0, 1.0).acos().to_degrees() >= MIN_CROSSING_DEG
}

/// One arm's points reversed (ending at the crossing), the link's, and the other arm's: a
/// path from the first arm's far end to the second's.
fn join(first: &[[f64; 2]], link: &[[f64; 2]], second: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut out: Vec<[f64; 2]> = first.iter().rev().copied().collect();
    for p in link.iter().chain(second) {
        if out.last() != Some(p) {
            out.push(*p);
        }
    }
    out
}

/// Applies `plan` when everything the root reached before is reached after; otherwise
/// leaves the graph as it was. Returns whether it applied.
fn apply_if_connected(graph: &mut SkeletonGraph, root: usize, plan: &Plan) -> bool {
    let before = graph.reached_from(root);
    for &e in &plan.edges {
        graph.edges[e].alive = false;
    }
    for &n in &plan.nodes {
        graph.nodes[n].alive = false;
    }
    let added: Vec<usize> = plan.paths.iter().map(|(a, b, pts)| graph.add_edge(*a, *b, pts.clone())).collect();
    let after = graph.reached_from(root);
    let kept = before.iter().enumerate().all(|(i, r)| !*r || plan.nodes.contains(&i) || after[i]);
    if !kept {
        for e in added {
            graph.edges[e].alive = false;
        }
        for &e in &plan.edges {
            graph.edges[e].alive = true;
        }
        for &n in &plan.nodes {
            graph.nodes[n].alive = true;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::graph::GraphEdge;

    /// Points every pixel from `a` to `b`.
    fn line(a: [f64; 2], b: [f64; 2]) -> Vec<[f64; 2]> {
        let n = (b[0] - a[0]).hypot(b[1] - a[1]).ceil() as usize;
        (0..=n).map(|i| i as f64 / n as f64).map(|t| [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]).collect()
    }

    /// A graph of straight edges from a centre node to the given far points.
    fn star(centre: [f64; 2], far: &[[f64; 2]]) -> (SkeletonGraph, usize, Vec<usize>) {
        let mut g = SkeletonGraph::default();
        let c = g.add_node(centre);
        let ends: Vec<usize> = far
            .iter()
            .map(|p| {
                let n = g.add_node(*p);
                g.add_edge(c, n, line(centre, *p));
                n
            })
            .collect();
        (g, c, ends)
    }

    fn radius(_: [f64; 2]) -> f64 {
        2.0
    }

    #[test]
    fn a_four_way_crossing_becomes_two_paths_through() {
        // Vein A left to right, vein B top to bottom at 70 degrees to it; A's left end is the
        // root and B's top end joins A further back (so B reaches the tree without the crossing).
        let (mut g, c, ends) =
            star([50.0, 50.0], &[[10.0, 50.0], [90.0, 50.0], [50.0 - 14.6, 10.0], [50.0 + 14.6, 90.0]]);
        let root = ends[0];
        g.add_edge(root, ends[2], line([10.0, 50.0], [50.0 - 14.6, 10.0]));
        assert_eq!(resolve_crossings(&mut g, root, &radius, 1.0), 1);
        assert!(!g.nodes[c].alive);
        let live: Vec<&GraphEdge> = g.edges.iter().filter(|e| e.alive).collect();
        assert!(live.iter().any(|e| [e.a, e.b] == [ends[0], ends[1]] || [e.a, e.b] == [ends[1], ends[0]]));
        assert!(live.iter().any(|e| [e.a, e.b] == [ends[2], ends[3]] || [e.a, e.b] == [ends[3], ends[2]]));
    }

    #[test]
    fn a_vein_reached_only_through_the_crossing_keeps_its_junction() {
        let (mut g, c, ends) =
            star([50.0, 50.0], &[[10.0, 50.0], [90.0, 50.0], [50.0 - 14.6, 10.0], [50.0 + 14.6, 90.0]]);
        assert_eq!(resolve_crossings(&mut g, ends[0], &radius, 1.0), 0);
        assert!(g.nodes[c].alive);
        assert_eq!(g.degree(c), 4);
    }

    #[test]
    fn a_bifurcation_with_two_branches_off_one_side_is_not_a_crossing() {
        // A trunk with two side branches leaving at 45 and 135 degrees on the same side: no
        // pairing runs straight through.
        let (mut g, c, ends) = star([50.0, 50.0], &[[10.0, 50.0], [90.0, 50.0], [78.0, 22.0], [22.0, 22.0]]);
        g.add_edge(ends[0], ends[3], line([10.0, 50.0], [22.0, 22.0]));
        g.add_edge(ends[1], ends[2], line([90.0, 50.0], [78.0, 22.0]));
        assert_eq!(resolve_crossings(&mut g, ends[0], &radius, 1.0), 0);
        assert_eq!(g.degree(c), 4);
    }

    #[test]
    fn veins_meeting_at_a_shallow_angle_are_left_alone() {
        // Two paths 20 degrees apart: they run together, and either reading could be right.
        let d = 40.0 * 20f64.to_radians().tan();
        let (mut g, c, ends) = star([50.0, 50.0], &[[10.0, 50.0], [90.0, 50.0], [10.0, 50.0 - d], [90.0, 50.0 + d]]);
        g.add_edge(ends[0], ends[2], line([10.0, 50.0], [10.0, 50.0 - d]));
        assert_eq!(resolve_crossings(&mut g, ends[0], &radius, 1.0), 0);
        assert!(g.nodes[c].alive);
    }

    #[test]
    fn a_crossing_split_into_two_junctions_is_passed_through_too() {
        // Thinning split the crossing into two three-way nodes 3 px apart along A.
        let mut g = SkeletonGraph::default();
        let (p, q) = ([48.5, 50.0], [51.5, 50.0]);
        let n1 = g.add_node(p);
        let n2 = g.add_node(q);
        g.add_edge(n1, n2, line(p, q));
        let far = |g: &mut SkeletonGraph, from: usize, at: [f64; 2], to: [f64; 2]| {
            let n = g.add_node(to);
            g.add_edge(from, n, line(at, to));
            n
        };
        let a_left = far(&mut g, n1, p, [10.0, 50.0]);
        let b_top = far(&mut g, n1, p, [48.5 - 14.6, 10.0]);
        let a_right = far(&mut g, n2, q, [90.0, 50.0]);
        let b_bottom = far(&mut g, n2, q, [51.5 + 14.6, 90.0]);
        g.add_edge(a_left, b_top, line([10.0, 50.0], [48.5 - 14.6, 10.0]));
        assert_eq!(resolve_crossings(&mut g, a_left, &radius, 1.0), 1);
        assert!(!g.nodes[n1].alive && !g.nodes[n2].alive);
        let live: Vec<(usize, usize)> =
            g.edges.iter().filter(|e| e.alive).map(|e| (e.a.min(e.b), e.a.max(e.b))).collect();
        assert!(live.contains(&(a_left.min(a_right), a_left.max(a_right))));
        assert!(live.contains(&(b_top.min(b_bottom), b_top.max(b_bottom))));
    }
}
