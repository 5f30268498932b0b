//! Stage 4b: from a skeleton to a rooted tree of polylines.
//!
//! Skeleton pixels are joined by 8-adjacency, except that a diagonal step is dropped when
//! the two pixels also share a 4-neighbour on the skeleton, so the staircases Zhang-Suen
//! leaves on oblique lines are paths, not junctions. Pixels with one neighbour are ends,
//! with three or more junctions (adjacent junction pixels form one node); the chains of
//! two-neighbour pixels between them are the edges. Spurs (short terminal edges, the
//! skeleton's answer to a bumpy border) are pruned, loops (vessels crossing in projection)
//! broken, and the tree rooted.
//!
//! Hand-written: no OpenCV or Rust library builds a skeleton graph (skan does it in Python).

use std::collections::{BinaryHeap, HashMap};

use super::image::Mask;
use super::skeleton::neighbours;

/// Arc (px) over which the arms of a possible turn are measured leaving their junction
/// ([`SkeletonGraph::is_turn_stem`]).
const TURN_ARM_REACH_PX: f64 = 12.0;
/// Least cosine between the two limbs of a turn leaving its junction (within 66 degrees).
const TURN_LIMBS_MIN_COS: f64 = 0.4;
/// Largest cosine between a turn's stem and each limb (beyond 134 degrees). Measured with
/// [`TURN_LIMBS_MIN_COS`] on the suite and held-out sets: at 0.5 and -0.77 (the fold's own
/// thresholds) no stem was kept on the suite (seed 11 RAO's: 0.45 and -0.72).
const TURN_STEM_MAX_COS: f64 = -0.7;
/// A node of the skeleton graph.
#[derive(Debug, Clone)]
pub struct GraphNode {
    /// Position, pixels `(x, y)` (the centroid of its pixels).
    pub xy: [f64; 2],
    /// Whether it is still part of the graph.
    pub alive: bool,
}

/// An edge: a chain of skeleton pixels between two nodes.
#[derive(Debug, Clone)]
pub struct GraphEdge {
    /// First node.
    pub a: usize,
    /// Last node.
    pub b: usize,
    /// Points from `a` to `b`, pixels `(x, y)`, both node positions included.
    pub points: Vec<[f64; 2]>,
    /// Whether it is still part of the graph.
    pub alive: bool,
}

impl GraphEdge {
    /// Polyline length, pixels.
    #[must_use]
    pub fn length_px(&self) -> f64 {
        polyline_length(&self.points)
    }

    /// The node at the other end from `n`.
    #[must_use]
    pub fn other(&self, n: usize) -> usize {
        if self.a == n { self.b } else { self.a }
    }

    /// The edge's points running away from its end node `n`.
    #[must_use]
    pub fn points_from(&self, n: usize) -> Vec<[f64; 2]> {
        if self.a == n { self.points.clone() } else { self.points.iter().rev().copied().collect() }
    }
}

/// Length of a polyline, pixels.
#[must_use]
pub fn polyline_length(points: &[[f64; 2]]) -> f64 {
    points.windows(2).map(|w| (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1])).sum()
}

/// The skeleton graph.
#[derive(Debug, Clone, Default)]
pub struct SkeletonGraph {
    /// Nodes (dead ones stay in place so indices are stable).
    pub nodes: Vec<GraphNode>,
    /// Edges (likewise).
    pub edges: Vec<GraphEdge>,
    /// Per node, every edge ever attached to it (dead ones are skipped when read; a
    /// self-loop appears twice). Kept by [`Self::add_node`] and [`Self::add_edge`].
    incidence: Vec<Vec<usize>>,
}

fn xy(i: usize, w: usize) -> [f64; 2] {
    [(i % w) as f64, (i / w) as f64]
}

/// Skeleton neighbours with redundant diagonal steps removed.
fn adjacent(skeleton: &Mask, i: usize) -> Vec<usize> {
    let w = skeleton.width;
    let (x, y) = (i % w, i / w);
    let all: Vec<usize> = neighbours(skeleton, x, y).collect();
    all.iter()
        .copied()
        .filter(|&j| {
            let (jx, jy) = (j % w, j / w);
            if jx == x || jy == y {
                return true;
            }
            // Diagonal: drop it if a shared 4-neighbour is on the skeleton.
            !(skeleton.data[y * w + jx] != 0 || skeleton.data[jy * w + x] != 0)
        })
        .collect()
}

impl SkeletonGraph {
    /// Builds the graph of a one-pixel-wide skeleton.
    ///
    /// Per-pixel state (adjacency, node membership, visited) lives in vectors indexed by the
    /// pixel's slot among the skeleton pixels; one frame-sized slot table maps pixels to
    /// slots, which is several times faster than hashing pixel indices.
    #[must_use]
    pub fn from_skeleton(skeleton: &Mask) -> Self {
        const NONE: u32 = u32::MAX;
        let w = skeleton.width;
        let pixels: Vec<usize> = (0..skeleton.data.len()).filter(|i| skeleton.data[*i] != 0).collect();
        let mut slot_of = vec![NONE; skeleton.data.len()];
        for (s, &p) in pixels.iter().enumerate() {
            slot_of[p] = s as u32;
        }
        let slot = |p: usize| slot_of[p] as usize;
        let adjacency: Vec<Vec<usize>> = pixels.iter().map(|&i| adjacent(skeleton, i)).collect();
        let is_node = |p: usize| adjacency[slot(p)].len() != 2;
        // Cluster node pixels.
        let mut node_of = vec![NONE; pixels.len()];
        let mut graph = Self::default();
        for &p in &pixels {
            if !is_node(p) || node_of[slot(p)] != NONE {
                continue;
            }
            let id = graph.nodes.len();
            let mut stack = vec![p];
            let mut members = Vec::new();
            node_of[slot(p)] = id as u32;
            while let Some(q) = stack.pop() {
                members.push(q);
                for r in neighbours(skeleton, q % w, q / w) {
                    if is_node(r) && node_of[slot(r)] == NONE {
                        node_of[slot(r)] = id as u32;
                        stack.push(r);
                    }
                }
            }
            let n = members.len() as f64;
            let c = members.iter().fold([0.0, 0.0], |acc, m| {
                let p = xy(*m, w);
                [acc[0] + p[0] / n, acc[1] + p[1] / n]
            });
            graph.add_node(c);
        }
        let mut visited = vec![false; pixels.len()];
        let trace = |graph: &mut Self,
                     visited: &mut Vec<bool>,
                     node_of: &mut Vec<u32>,
                     start_node: usize,
                     start: usize,
                     first: usize| {
            let mut points = vec![graph.nodes[start_node].xy];
            let (mut prev, mut cur) = (start, first);
            loop {
                if node_of[slot(cur)] != NONE {
                    let n = node_of[slot(cur)] as usize;
                    points.push(graph.nodes[n].xy);
                    graph.add_edge(start_node, n, points);
                    return;
                }
                visited[slot(cur)] = true;
                points.push(xy(cur, w));
                let next = adjacency[slot(cur)].iter().copied().find(|&q| q != prev && !visited[slot(q)]);
                if let Some(q) = next {
                    prev = cur;
                    cur = q;
                } else {
                    // Back at a node through the other neighbour, or a closed loop.
                    let back = adjacency[slot(cur)].iter().copied().find(|q| *q != prev && node_of[slot(*q)] != NONE);
                    let end = back.map_or(start_node, |q| node_of[slot(q)] as usize);
                    points.push(graph.nodes[end].xy);
                    graph.add_edge(start_node, end, points);
                    return;
                }
            }
        };
        for &p in &pixels {
            if node_of[slot(p)] == NONE {
                continue;
            }
            let n = node_of[slot(p)] as usize;
            for &q in &adjacency[slot(p)] {
                if node_of[slot(q)] != NONE || visited[slot(q)] {
                    continue;
                }
                trace(&mut graph, &mut visited, &mut node_of, n, p, q);
            }
        }
        // Closed loops with no node: make one of their pixels a node.
        for &p in &pixels {
            if node_of[slot(p)] != NONE || visited[slot(p)] {
                continue;
            }
            let id = graph.nodes.len();
            graph.add_node(xy(p, w));
            node_of[slot(p)] = id as u32;
            if let Some(&q) = adjacency[slot(p)].first() {
                trace(&mut graph, &mut visited, &mut node_of, id, p, q);
            }
        }
        graph
    }

    /// Adds a live node at `xy`, returning its index.
    pub fn add_node(&mut self, xy: [f64; 2]) -> usize {
        self.nodes.push(GraphNode { xy, alive: true });
        self.incidence.push(Vec::new());
        self.nodes.len() - 1
    }

    /// Adds a live edge from node `a` to node `b` along `points`, returning its index.
    pub fn add_edge(&mut self, a: usize, b: usize, points: Vec<[f64; 2]>) -> usize {
        let id = self.edges.len();
        self.edges.push(GraphEdge { a, b, points, alive: true });
        self.incidence[a].push(id);
        self.incidence[b].push(id);
        id
    }

    /// Every edge ever attached to node `n`, dead ones included (a self-loop twice).
    #[must_use]
    pub fn attached(&self, n: usize) -> &[usize] {
        self.incidence.get(n).map_or(&[], Vec::as_slice)
    }

    /// Live edges at node `n`, a self-loop counted twice.
    #[must_use]
    pub fn incident(&self, n: usize) -> Vec<usize> {
        self.incidence
            .get(n)
            .map_or_else(Vec::new, |list| list.iter().copied().filter(|e| self.edges[*e].alive).collect())
    }

    /// Degree of node `n`.
    #[must_use]
    pub fn degree(&self, n: usize) -> usize {
        self.incident(n).len()
    }

    /// Joins the two edges of every degree-2 node other than `keep` into one edge.
    pub fn merge_degree_two(&mut self, keep: Option<usize>) {
        loop {
            let mut merged = false;
            for n in 0..self.nodes.len() {
                if !self.nodes[n].alive || Some(n) == keep {
                    continue;
                }
                let inc = self.incident(n);
                if inc.len() != 2 || inc[0] == inc[1] {
                    continue;
                }
                let (e1, e2) = (inc[0], inc[1]);
                let mut p1 = self.edges[e1].points.clone();
                if self.edges[e1].b != n {
                    p1.reverse();
                }
                let mut p2 = self.edges[e2].points.clone();
                if self.edges[e2].a != n {
                    p2.reverse();
                }
                let (a, b) = (self.edges[e1].other(n), self.edges[e2].other(n));
                p1.pop();
                p1.extend(p2);
                self.edges[e1].alive = false;
                self.edges[e2].alive = false;
                self.nodes[n].alive = false;
                self.add_edge(a, b, p1);
                merged = true;
            }
            if !merged {
                break;
            }
        }
    }

    /// Removes, repeatedly, terminal edges (a free end at a junction) for which
    /// `remove(graph, edge, tip, junction)` holds, merging the junctions left with two edges;
    /// the tip `keep` stays. Returns how many were removed.
    fn prune_terminal(&mut self, keep: Option<usize>, remove: impl Fn(&Self, usize, usize, usize) -> bool) -> usize {
        let mut count = 0;
        loop {
            let mut removed = false;
            for e in 0..self.edges.len() {
                if !self.edges[e].alive {
                    continue;
                }
                let (a, b) = (self.edges[e].a, self.edges[e].b);
                let (da, db) = (self.degree(a), self.degree(b));
                let (tip, junction) = if da == 1 && db >= 3 {
                    (a, b)
                } else if db == 1 && da >= 3 {
                    (b, a)
                } else {
                    continue;
                };
                if Some(tip) != keep && remove(self, e, tip, junction) {
                    self.edges[e].alive = false;
                    self.nodes[tip].alive = false;
                    removed = true;
                    count += 1;
                }
            }
            self.merge_degree_two(keep);
            if !removed {
                return count;
            }
        }
    }

    /// Removes, repeatedly, terminal edges that reach less than `min_beyond` pixels past the
    /// lumen at their junction: every point lies within `radius_at(junction) + min_beyond` of
    /// it. In a wide vein, a bump in the wall thins to a spur that can be longer than the
    /// vein's radius without ever leaving the lumen; a side branch leaves it.
    pub fn prune_within_lumen(&mut self, radius_at: impl Fn([f64; 2]) -> f64, min_beyond: f64, keep: Option<usize>) {
        self.prune_terminal(keep, |g, e, _, junction| {
            let j = g.nodes[junction].xy;
            let reach = g.edges[e].points.iter().map(|p| dist2(*p, j)).fold(0.0, f64::max).sqrt();
            reach < radius_at(j) + min_beyond && !g.is_turn_stem(e, junction)
        });
    }

    /// Removes self-loops shorter than `max_length_px`: the ring thinning draws around a hole
    /// of a few pixels in the mask (noise inside a vessel), which is no vessel. Returns how
    /// many were removed; nodes left with two edges are merged.
    pub fn remove_small_rings(&mut self, max_length_px: f64, keep: Option<usize>) -> usize {
        let mut count = 0;
        for e in 0..self.edges.len() {
            let edge = &self.edges[e];
            if edge.alive && edge.a == edge.b && edge.length_px() < max_length_px {
                self.edges[e].alive = false;
                count += 1;
            }
        }
        self.merge_degree_two(keep);
        count
    }

    /// Removes, repeatedly, terminal edges every point of which is `inside` a region (the
    /// skeleton that thinning draws through a blob), merging the junctions left with two
    /// edges; the tip `keep` stays. Returns how many were removed.
    pub fn prune_terminal_inside(&mut self, inside: impl Fn([f64; 2]) -> bool, keep: Option<usize>) -> usize {
        self.prune_terminal(keep, |g, e, _, _| g.edges[e].points.iter().all(|p| inside(*p)))
    }

    /// Removes edges from `root` to a free end for which `remove(edge)` holds, as long as the
    /// root keeps an edge. Returns how many were removed.
    pub fn prune_root_stubs(&mut self, root: usize, remove: impl Fn(&GraphEdge) -> bool) -> usize {
        let mut count = 0;
        for e in self.incident(root) {
            let tip = self.edges[e].other(root);
            if self.degree(root) > 1 && tip != root && self.degree(tip) == 1 && remove(&self.edges[e]) {
                self.edges[e].alive = false;
                self.nodes[tip].alive = false;
                count += 1;
            }
        }
        count
    }

    /// Removes terminal edges shorter than `min_length(junction position)`, repeatedly, merging
    /// the junctions left with two edges. An edge that is a whole component is never removed.
    pub fn prune_spurs(&mut self, min_length: impl Fn([f64; 2]) -> f64, keep: Option<usize>) {
        self.prune_terminal(keep, |g, e, _, junction| {
            g.edges[e].length_px() < min_length(g.nodes[junction].xy) && !g.is_turn_stem(e, junction)
        });
    }

    /// Whether terminal edge `e` at `junction` is the stem of a vein turning back on itself:
    /// the junction's two other edges leave it side by side (within 66 degrees) and the stem
    /// heads away from both (beyond 134 degrees). Where a vein folds back with its limbs
    /// touching, thinning joins the limbs below the turn and runs a short stem up the band to
    /// it; that stem is the turn's top, not a spur or a bump in the wall
    /// (see [`hairpin`](mod@super::hairpin), which draws the limbs up it).
    pub(crate) fn is_turn_stem(&self, e: usize, junction: usize) -> bool {
        let others: Vec<usize> = self.incident(junction).into_iter().filter(|f| *f != e).collect();
        let [f, g] = others[..] else { return false };
        let leaving = |edge: usize, reach: f64| {
            let pts = self.edges[edge].points_from(junction);
            super::label::direction(&pts, true, reach)
        };
        let stem_reach = self.edges[e].length_px();
        let (Some(ds), Some(df), Some(dg)) =
            (leaving(e, stem_reach), leaving(f, TURN_ARM_REACH_PX), leaving(g, TURN_ARM_REACH_PX))
        else {
            return false;
        };
        let cos = |a: [f64; 2], b: [f64; 2]| a[0] * b[0] + a[1] * b[1];
        self.edges[f].a != self.edges[f].b
            && self.edges[g].a != self.edges[g].b
            && cos(df, dg) >= TURN_LIMBS_MIN_COS
            && cos(ds, df) <= TURN_STEM_MAX_COS
            && cos(ds, dg) <= TURN_STEM_MAX_COS
    }

    /// Removes terminal edges whose free end is one of `contacts` and that are shorter than
    /// `max_length(junction position)`, repeatedly: the stubs left where a removed structure
    /// (a lead lying along a vein) touched the tree. Returns how many were removed.
    pub fn prune_contact_stubs(
        &mut self,
        contacts: &std::collections::HashSet<usize>,
        max_length: impl Fn([f64; 2]) -> f64,
        keep: Option<usize>,
    ) -> usize {
        self.prune_terminal(keep, |g, e, tip, junction| {
            contacts.contains(&tip) && g.edges[e].length_px() < max_length(g.nodes[junction].xy)
        })
    }

    /// Contracts every edge between two junctions (degree >= 3) shorter than
    /// `max_length(a, b)` into one node at its middle: a vein dividing inside a wide lumen
    /// thins to two junctions a few pixels apart, which are one bifurcation. Loops the
    /// contraction closes are dropped when short. `keep` is never moved. Returns the count.
    pub fn contract_junctions(&mut self, max_length: impl Fn([f64; 2], [f64; 2]) -> f64, keep: Option<usize>) -> usize {
        let mut count = 0;
        loop {
            let mut contracted = false;
            for e in 0..self.edges.len() {
                let edge = &self.edges[e];
                if !edge.alive || edge.a == edge.b {
                    continue;
                }
                let (a, b) = (edge.a, edge.b);
                if self.degree(a) < 3 || self.degree(b) < 3 || keep == Some(a) || keep == Some(b) {
                    continue;
                }
                let (pa, pb) = (self.nodes[a].xy, self.nodes[b].xy);
                let limit = max_length(pa, pb);
                if edge.length_px() >= limit {
                    continue;
                }
                let mid = [0.5 * (pa[0] + pb[0]), 0.5 * (pa[1] + pb[1])];
                self.edges[e].alive = false;
                self.nodes[b].alive = false;
                self.nodes[a].xy = mid;
                let touched: Vec<usize> = self.incident(a).into_iter().chain(self.incident(b)).collect();
                for f in touched {
                    if !self.incidence[a].contains(&f) {
                        self.incidence[a].push(f);
                    }
                    let edge = &mut self.edges[f];
                    if edge.a == b {
                        edge.a = a;
                    }
                    if edge.b == b {
                        edge.b = a;
                    }
                    if edge.a == a {
                        edge.points[0] = mid;
                    }
                    if edge.b == a {
                        let last = edge.points.len() - 1;
                        edge.points[last] = mid;
                    }
                    if edge.a == a && edge.b == a {
                        if polyline_length(&edge.points) < 2.0 * limit {
                            edge.alive = false;
                        } else if self.incidence[a].iter().filter(|g| **g == f).count() < 2 {
                            self.incidence[a].push(f);
                        }
                    }
                }
                contracted = true;
                count += 1;
            }
            if !contracted {
                return count;
            }
        }
    }

    /// The live node nearest to `point`.
    #[must_use]
    pub fn nearest_node(&self, point: [f64; 2], filter: impl Fn(usize) -> bool) -> Option<usize> {
        (0..self.nodes.len())
            .filter(|n| self.nodes[*n].alive && filter(*n))
            .min_by(|x, y| dist2(self.nodes[*x].xy, point).total_cmp(&dist2(self.nodes[*y].xy, point)))
    }

    /// Splits edge `e` at the polyline point nearest `point`, returning the new node there
    /// (or the nearer end node when the point is at an end).
    pub fn split_at(&mut self, e: usize, point: [f64; 2]) -> usize {
        let pts = self.edges[e].points.clone();
        let k = (0..pts.len()).min_by(|x, y| dist2(pts[*x], point).total_cmp(&dist2(pts[*y], point))).unwrap_or(0);
        if k == 0 {
            return self.edges[e].a;
        }
        if k + 1 >= pts.len() {
            return self.edges[e].b;
        }
        let id = self.nodes.len();
        self.add_node(pts[k]);
        let (a, b) = (self.edges[e].a, self.edges[e].b);
        self.edges[e].alive = false;
        self.add_edge(a, id, pts[..=k].to_vec());
        self.add_edge(id, b, pts[k..].to_vec());
        id
    }

    /// Component id of every live node (`usize::MAX` for dead ones).
    #[must_use]
    pub fn components(&self) -> Vec<usize> {
        let n = self.nodes.len();
        let mut comp = vec![usize::MAX; n];
        let mut next = 0;
        for s in 0..n {
            if !self.nodes[s].alive || comp[s] != usize::MAX {
                continue;
            }
            comp[s] = next;
            let mut stack = vec![s];
            while let Some(u) = stack.pop() {
                for e in self.incident(u) {
                    let v = self.edges[e].other(u);
                    if comp[v] == usize::MAX {
                        comp[v] = next;
                        stack.push(v);
                    }
                }
            }
            next += 1;
        }
        comp
    }

    /// Joins to the component of `root` every other component of at least `min_length_px`
    /// whose nearest centerline point lies within `max_gap_px` of it, by a straight edge
    /// between the two nearest points that `accept` allows (the image shows a vessel along
    /// it): a vessel interrupted where it crosses a denser structure or fades for a few
    /// pixels stays in the tree. Returns the number of joins.
    pub fn bridge_gaps(
        &mut self,
        root: usize,
        max_gap_px: f64,
        min_length_px: f64,
        accept: impl Fn([f64; 2], [f64; 2]) -> bool,
    ) -> usize {
        let mut joined = 0;
        loop {
            let comp = self.components();
            let main = comp[root];
            let mut length = HashMap::<usize, f64>::new();
            for e in self.edges.iter().filter(|e| e.alive) {
                *length.entry(comp[e.a]).or_default() += e.length_px();
            }
            // Grid of the main component's points.
            let cell = max_gap_px.max(1.0);
            let mut grid: HashMap<(i64, i64), Vec<(usize, usize)>> = HashMap::new();
            for (i, e) in self.edges.iter().enumerate() {
                if e.alive && comp[e.a] == main {
                    for (k, p) in e.points.iter().enumerate() {
                        grid.entry(((p[0] / cell).floor() as i64, (p[1] / cell).floor() as i64))
                            .or_default()
                            .push((i, k));
                    }
                }
            }
            let mut best: Option<(f64, usize, usize, usize, usize)> = None;
            for (i, e) in self.edges.iter().enumerate() {
                if !e.alive || comp[e.a] == main || length.get(&comp[e.a]).copied().unwrap_or(0.0) < min_length_px {
                    continue;
                }
                for (k, p) in e.points.iter().enumerate() {
                    let (cx, cy) = ((p[0] / cell).floor() as i64, (p[1] / cell).floor() as i64);
                    for dx in -1..=1 {
                        for dy in -1..=1 {
                            for &(j, m) in grid.get(&(cx + dx, cy + dy)).into_iter().flatten() {
                                let d = dist2(*p, self.edges[j].points[m]).sqrt();
                                if d <= max_gap_px
                                    && best.is_none_or(|b| d < b.0)
                                    && accept(*p, self.edges[j].points[m])
                                {
                                    best = Some((d, i, k, j, m));
                                }
                            }
                        }
                    }
                }
            }
            let Some((_, i, k, j, m)) = best else { break };
            let (p, q) = (self.edges[i].points[k], self.edges[j].points[m]);
            let a = self.split_at(i, p);
            let b = self.split_at(j, q);
            let (pa, pb) = (self.nodes[a].xy, self.nodes[b].xy);
            self.add_edge(b, a, vec![pb, pa]);
            joined += 1;
        }
        joined
    }

    /// Per node, whether it is reached from `root` over live edges.
    #[must_use]
    pub fn reached_from(&self, root: usize) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![root];
        seen[root] = true;
        while let Some(n) = stack.pop() {
            for e in self.incident(n) {
                let m = self.edges[e].other(n);
                if !seen[m] {
                    seen[m] = true;
                    stack.push(m);
                }
            }
        }
        seen
    }

    /// Kills every node and edge not connected to `root`.
    pub fn keep_component(&mut self, root: usize) {
        let seen = self.reached_from(root);
        for (n, node) in self.nodes.iter_mut().enumerate() {
            node.alive &= seen[n];
        }
        for e in &mut self.edges {
            e.alive &= seen[e.a];
        }
    }

    /// Breaks every loop: edges not on the shortest-path tree from `root` (path length
    /// weighted by `cost_per_px` of each edge) are cut in the middle into two free ends,
    /// so no centerline is lost. Returns the number of loops broken.
    pub fn break_loops(&mut self, root: usize, cost_per_px: impl Fn(&GraphEdge) -> f64) -> usize {
        self.break_loops_at(root, cost_per_px, |pts: &[[f64; 2]]| pts.len() / 2)
    }

    /// [`Self::break_loops`], cutting each edge off the tree where `cut_at(points)` says
    /// (the index of the first point of the second half, kept within the edge).
    pub fn break_loops_at(
        &mut self,
        root: usize,
        cost_per_px: impl Fn(&GraphEdge) -> f64,
        cut_at: impl Fn(&[[f64; 2]]) -> usize,
    ) -> usize {
        let n = self.nodes.len();
        let mut dist = vec![f64::INFINITY; n];
        let mut via: Vec<Option<usize>> = vec![None; n];
        let mut heap = BinaryHeap::new();
        dist[root] = 0.0;
        heap.push(HeapItem(0.0, root));
        let incident: Vec<Vec<usize>> = (0..n).map(|i| self.incident(i)).collect();
        while let Some(HeapItem(d, u)) = heap.pop() {
            if d > dist[u] {
                continue;
            }
            for &e in &incident[u] {
                let v = self.edges[e].other(u);
                let nd = d + self.edges[e].length_px() * cost_per_px(&self.edges[e]);
                if nd < dist[v] {
                    dist[v] = nd;
                    via[v] = Some(e);
                    heap.push(HeapItem(nd, v));
                }
            }
        }
        let tree: std::collections::HashSet<usize> = via.iter().flatten().copied().collect();
        let mut broken = 0;
        for e in 0..self.edges.len() {
            if !self.edges[e].alive || tree.contains(&e) {
                continue;
            }
            let pts = self.edges[e].points.clone();
            let (a, b) = (self.edges[e].a, self.edges[e].b);
            self.edges[e].alive = false;
            broken += 1;
            if pts.len() < 4 {
                continue;
            }
            let mid = cut_at(&pts).clamp(1, pts.len() - 1);
            let (n1, n2) = (self.nodes.len(), self.nodes.len() + 1);
            self.add_node(pts[mid - 1]);
            self.add_node(pts[mid]);
            self.add_edge(a, n1, pts[..mid].to_vec());
            self.add_edge(b, n2, pts[mid..].iter().rev().copied().collect());
        }
        broken
    }
}

fn dist2(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

/// Min-heap entry for Dijkstra.
struct HeapItem(f64, usize);

impl PartialEq for HeapItem {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for HeapItem {}
impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeapItem {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.total_cmp(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points every pixel from `a` to `b`.
    fn segment(a: [f64; 2], b: [f64; 2]) -> Vec<[f64; 2]> {
        let n = (b[0] - a[0]).hypot(b[1] - a[1]).ceil() as usize;
        (0..=n).map(|i| i as f64 / n as f64).map(|t| [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]).collect()
    }

    /// Two limbs leaving a junction at (50, 50) downwards, 14 degrees apart, and an 8 px edge
    /// to `stem_end`.
    fn turn(stem_end: [f64; 2]) -> SkeletonGraph {
        let mut g = SkeletonGraph::default();
        let j = g.add_node([50.0, 50.0]);
        for end in [[44.0, 100.0], [56.0, 100.0], stem_end] {
            let n = g.add_node(end);
            g.add_edge(j, n, segment([50.0, 50.0], end));
        }
        g
    }

    #[test]
    fn the_stem_up_to_a_turn_is_no_spur_and_a_stub_beside_the_limbs_is() {
        let mut g = turn([50.0, 42.0]);
        assert!(g.is_turn_stem(2, 0));
        g.prune_spurs(|_| 10.0, None);
        g.prune_within_lumen(|_| 8.0, 6.0, None);
        assert_eq!(g.edges.iter().filter(|e| e.alive).count(), 3, "the stem stays");
        let mut g = turn([58.0, 50.0]);
        assert!(!g.is_turn_stem(2, 0));
        g.prune_spurs(|_| 10.0, None);
        assert_eq!(g.edges.iter().filter(|e| e.alive).count(), 1, "the stub goes and the limbs merge");
    }

    fn draw(w: usize, h: usize, pixels: &[(usize, usize)]) -> Mask {
        let mut m = Mask::empty(w, h);
        for (x, y) in pixels {
            m.set(*x, *y, true);
        }
        m
    }

    #[test]
    fn a_t_gives_three_edges_and_a_staircase_no_junction() {
        // Horizontal line with a vertical branch, plus a diagonal staircase on the right.
        let mut px: Vec<(usize, usize)> = (2..30).map(|x| (x, 10)).collect();
        px.extend((11..25).map(|y| (15, y)));
        let g = SkeletonGraph::from_skeleton(&draw(40, 30, &px));
        let live: Vec<_> = g.edges.iter().filter(|e| e.alive).collect();
        assert_eq!(live.len(), 3);
        let junctions = (0..g.nodes.len()).filter(|n| g.degree(*n) == 3).count();
        assert_eq!(junctions, 1);

        let stair = [(2, 2), (3, 2), (3, 3), (4, 3), (4, 4), (5, 4), (5, 5), (6, 5)];
        let g = SkeletonGraph::from_skeleton(&draw(10, 10, &stair));
        assert_eq!(g.edges.iter().filter(|e| e.alive).count(), 1);
        assert!((0..g.nodes.len()).all(|n| g.degree(n) <= 1));
    }

    /// A vessel interrupted for 20 px: the far piece joins the root's component when the
    /// gap is within reach and `accept` allows the join, and stays apart otherwise.
    #[test]
    fn a_gap_is_bridged_within_reach_and_only_where_accepted() {
        let mut px: Vec<(usize, usize)> = (2..40).map(|x| (x, 10)).collect();
        px.extend((60..100).map(|x| (x, 10)));
        let build = || {
            let g = SkeletonGraph::from_skeleton(&draw(110, 20, &px));
            let root = (0..g.nodes.len()).find(|n| g.nodes[*n].xy[0] < 3.0).expect("the left end");
            (g, root)
        };
        let joined = |g: &SkeletonGraph, root: usize| {
            let comp = g.components();
            g.edges.iter().filter(|e| e.alive).all(|e| comp[e.a] == comp[root])
        };
        let (mut g, root) = build();
        assert_eq!(g.bridge_gaps(root, 10.0, 25.0, |_, _| true), 0, "20 px is beyond a 10 px reach");
        assert!(!joined(&g, root));
        let (mut g, root) = build();
        assert_eq!(g.bridge_gaps(root, 30.0, 25.0, |_, _| false), 0, "a refused join is not made");
        assert!(!joined(&g, root));
        let (mut g, root) = build();
        let nearest_asked = std::cell::Cell::new(f64::INFINITY);
        let accept = |p: [f64; 2], q: [f64; 2]| {
            nearest_asked.set(nearest_asked.get().min(dist2(p, q).sqrt()));
            true
        };
        assert_eq!(g.bridge_gaps(root, 30.0, 25.0, accept), 1);
        assert!(joined(&g, root));
        assert!((nearest_asked.get() - 21.0).abs() < 1e-9, "the nearest join spans the gap: {}", nearest_asked.get());
        g.keep_component(root);
        let length: f64 = g.edges.iter().filter(|e| e.alive).map(GraphEdge::length_px).sum();
        assert!(length > 95.0, "both pieces and the join stay: {length}");
    }

    #[test]
    fn spurs_are_pruned_and_loops_broken() {
        let mut px: Vec<(usize, usize)> = (2..60).map(|x| (x, 20)).collect();
        px.extend((21..24).map(|y| (30, y))); // a 3-pixel spur
        let mut g = SkeletonGraph::from_skeleton(&draw(64, 40, &px));
        g.prune_spurs(|_| 5.0, None);
        assert_eq!(g.edges.iter().filter(|e| e.alive).count(), 1);

        // A square loop with a tail: one loop to break.
        let mut px: Vec<(usize, usize)> = (10..30).map(|x| (x, 10)).collect();
        px.extend((10..30).map(|x| (x, 30)));
        px.extend((11..30).map(|y| (10, y)));
        px.extend((11..30).map(|y| (29, y)));
        px.extend((31..38).map(|y| (10, y)));
        let mut g = SkeletonGraph::from_skeleton(&draw(40, 40, &px));
        let root = g.nearest_node([10.0, 37.0], |_| true).unwrap();
        assert_eq!(g.break_loops(root, |_| 1.0), 1);
        let live_len: f64 = g.edges.iter().filter(|e| e.alive).map(GraphEdge::length_px).sum();
        assert!(live_len > 70.0, "centerline kept: {live_len}");
    }

    /// Two junctions three pixels apart on a line (a vein dividing in a wide lumen) become
    /// one node with four edges; a pair far apart stays two.
    #[test]
    fn near_junctions_are_contracted_into_one() {
        let mut px: Vec<(usize, usize)> = (2..60).map(|x| (x, 20)).collect();
        px.extend((21..35).map(|y| (30, y)));
        px.extend((5..20).map(|y| (33, y)));
        px.extend((5..20).map(|y| (50, y)));
        let mut g = SkeletonGraph::from_skeleton(&draw(64, 40, &px));
        let junctions =
            |g: &SkeletonGraph| (0..g.nodes.len()).filter(|n| g.nodes[*n].alive && g.degree(*n) >= 3).count();
        assert_eq!(junctions(&g), 3);
        assert_eq!(g.contract_junctions(|_, _| 5.0, None), 1);
        assert_eq!(junctions(&g), 2);
        let four = (0..g.nodes.len()).find(|n| g.nodes[*n].alive && g.degree(*n) == 4).unwrap();
        let xy = g.nodes[four].xy;
        assert!((xy[0] - 31.5).abs() < 1.0 && (xy[1] - 20.0).abs() < 1.0, "{xy:?}");
        // Every edge at the merged node starts or ends exactly there.
        for e in g.incident(four) {
            let edge = &g.edges[e];
            let end = if edge.a == four { edge.points[0] } else { edge.points[edge.points.len() - 1] };
            assert!((end[0] - xy[0]).abs() < 1e-12 && (end[1] - xy[1]).abs() < 1e-12, "{end:?} vs {xy:?}");
        }
    }

    /// A stub whose free end touched a removed structure goes; the same stub elsewhere stays.
    #[test]
    fn stubs_at_removed_structures_are_pruned() {
        let mut px: Vec<(usize, usize)> = (2..60).map(|x| (x, 20)).collect();
        px.extend((21..30).map(|y| (20, y)));
        px.extend((21..30).map(|y| (40, y)));
        let mut g = SkeletonGraph::from_skeleton(&draw(64, 40, &px));
        let tip = g.nearest_node([20.0, 29.0], |_| true).unwrap();
        let contacts: std::collections::HashSet<usize> = [tip].into_iter().collect();
        assert_eq!(g.prune_contact_stubs(&contacts, |_| 15.0, None), 1);
        assert!(!g.nodes[tip].alive);
        let other = g.nearest_node([40.0, 29.0], |_| true).unwrap();
        assert_eq!(g.degree(other), 1);
        assert_eq!(g.edges.iter().filter(|e| e.alive).count(), 3);
    }

    #[test]
    fn a_stub_at_the_root_goes_and_the_root_keeps_an_edge() {
        let px: Vec<(usize, usize)> = (2..60).map(|x| (x, 20)).collect();
        let mut g = SkeletonGraph::from_skeleton(&draw(64, 40, &px));
        let e = g.edges.iter().position(|e| e.alive).unwrap();
        let root = g.split_at(e, [20.0, 20.0]);
        let near = |e: &GraphEdge| e.points.iter().all(|p| dist2(*p, [20.0, 20.0]) < 25.0 * 25.0);
        assert_eq!(g.prune_root_stubs(root, near), 1);
        assert_eq!(g.degree(root), 1);
        let left = g.edges.iter().find(|e| e.alive).unwrap();
        assert!(left.points.iter().any(|p| p[0] > 55.0), "the long side stays");
        // Everything near: the root still keeps its one edge.
        assert_eq!(g.prune_root_stubs(root, |_| true), 0);
        assert_eq!(g.degree(root), 1);
    }

    #[test]
    fn a_tree_of_stubs_inside_a_blob_goes_a_stub_at_a_time() {
        // A trunk from x = 2 to 60 along y = 20; off it at x = 20, a stub up to y = 12 that
        // forks at y = 14 into two short arms: a small tree inside a disc round (20, 16).
        let mut px: Vec<(usize, usize)> = (2..60).map(|x| (x, 20)).collect();
        px.extend((14..20).map(|y| (20, y)));
        px.extend([(19, 13), (18, 12), (21, 13), (22, 12)]);
        let mut g = SkeletonGraph::from_skeleton(&draw(64, 40, &px));
        let keep = g.nearest_node([2.0, 20.0], |_| true).unwrap();
        let inside = |p: [f64; 2]| dist2(p, [20.0, 16.0]) < 8.0 * 8.0;
        // One arm goes; the other, merged with the stub it now continues, goes next.
        assert_eq!(g.prune_terminal_inside(inside, Some(keep)), 2);
        let alive: Vec<&GraphEdge> = g.edges.iter().filter(|e| e.alive).collect();
        assert_eq!(alive.len(), 1, "the trunk is one edge again");
        assert!(alive[0].points.iter().all(|p| (p[1] - 20.0).abs() < 0.5));
        assert_eq!(g.prune_terminal_inside(inside, Some(keep)), 0, "the trunk leaves the disc");
    }

    #[test]
    fn a_ring_round_a_small_hole_goes() {
        // A line with a 3x3 ring hanging off it by one pixel (a hole in the mask at its wall).
        let mut px: Vec<(usize, usize)> = (2..40).map(|x| (x, 20)).collect();
        px.push((20, 21));
        px.extend([(19, 22), (20, 22), (21, 22), (19, 23), (21, 23), (19, 24), (20, 24), (21, 24)]);
        let mut g = SkeletonGraph::from_skeleton(&draw(48, 32, &px));
        let rings = |g: &SkeletonGraph| g.edges.iter().filter(|e| e.alive && e.a == e.b).count();
        assert_eq!(rings(&g), 1);
        assert_eq!(g.remove_small_rings(4.0, None), 0, "a ring as long as the limit stays");
        assert_eq!(g.remove_small_rings(12.0, None), 1);
        assert_eq!(rings(&g), 0);
    }
}
