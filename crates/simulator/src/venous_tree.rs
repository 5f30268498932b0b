//! The coronary venous tree of a synthetic patient: the AV-groove trunk (coronary sinus from
//! its ostium, great cardiac vein, anterior interventricular vein), the middle cardiac vein,
//! the lateral-wall tributaries that are LV-lead targets, and small twigs. Each branch is a
//! centerline on the epicardium (1 mm spacing) with a radius at each point, its anatomical
//! label and where it leaves its parent. Positions, prevalences and calibres follow
//! research-imaging.md 4.2 (cadaver series, scaled up for balloon-occluded in-vivo veins).

use nalgebra::Point3;
use serde::Serialize;
use venogram::geometry::cumulative_arc_mm;
use venogram::{VeinLabel, atlas};

use crate::heart::{LvSurface, SurfaceCoord};
use crate::rng::SimRng;

/// Index of a branch in its [`VenousTree`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct BranchId(pub u32);

/// Where a branch leaves its parent: the parent and the index of the parent's centerline
/// point the branch starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Takeoff {
    /// The parent branch.
    pub parent: BranchId,
    /// Index into the parent's centerline; the child's first point equals that point.
    pub index: usize,
}

/// One vein segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Branch {
    /// Its index in the tree.
    pub id: BranchId,
    /// Anatomical label.
    pub label: VeinLabel,
    /// Where it leaves its parent; `None` for the coronary sinus, which starts at the ostium.
    pub takeoff: Option<Takeoff>,
    /// Centerline points (patient LPS, mm), about 1 mm apart, from takeoff (or ostium) outward.
    pub centerline_in_patient: Vec<Point3<f64>>,
    /// Vessel radius at each centerline point, mm, never increasing outward.
    pub radius_mm: Vec<f64>,
}

impl Branch {
    /// Length along the centerline, mm.
    #[must_use]
    pub fn length_mm(&self) -> f64 {
        self.arc_lengths_mm().last().copied().unwrap_or(0.0)
    }

    /// Distance along the centerline from its first point to each point, mm.
    #[must_use]
    pub fn arc_lengths_mm(&self) -> Vec<f64> {
        cumulative_arc_mm(&self.centerline_in_patient)
    }
}

/// A synthetic coronary venous tree; branch `i` has `BranchId(i)`, the coronary sinus first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VenousTree {
    /// All branches, parents before children.
    pub branches: Vec<Branch>,
}

/// Centerline sample spacing, mm.
pub const SPACING_MM: f64 = 1.0;

/// A dense path in surface coordinates with a radius profile, before resampling.
struct SurfacePath {
    coords: Vec<SurfaceCoord>,
    radius_start_mm: f64,
    radius_end_mm: f64,
}

impl VenousTree {
    /// The branch with this id.
    #[must_use]
    pub fn get(&self, id: BranchId) -> Option<&Branch> {
        self.branches.get(id.0 as usize)
    }

    /// The branches leaving `id`.
    pub fn children(&self, id: BranchId) -> impl Iterator<Item = &Branch> {
        self.branches.iter().filter(move |b| b.takeoff.is_some_and(|t| t.parent == id))
    }

    /// The first branch with a label.
    #[must_use]
    pub fn find(&self, label: VeinLabel) -> Option<&Branch> {
        self.branches.iter().find(|b| b.label == label)
    }

    /// The coronary sinus ostium (first point of the tree).
    #[must_use]
    pub fn ostium(&self) -> Option<Point3<f64>> {
        self.branches.first().and_then(|b| b.centerline_in_patient.first().copied())
    }

    /// Generates the tree of one patient on its LV surface.
    pub fn generate(lv: &LvSurface, rng: &mut SimRng) -> Self {
        let mut tree = Self { branches: Vec::new() };
        let deg = f64::to_radians;

        // The AV-groove trunk, from the ostium (posteroseptal, just past the posterior
        // interventricular groove) around the lateral wall to the anterior groove.
        let ostium_angle = deg(rng.normal_clamped(atlas::OSTIUM_ANGLE_DEG, 4.0, 212.0, 232.0));
        let anterior_groove = deg(rng.normal_clamped(atlas::ANTERIOR_GROOVE_ANGLE_DEG, 5.0, -35.0, -10.0));
        let groove_depth = rng.range(-0.035, -0.02);
        let trunk: Vec<SurfaceCoord> = (0..=800)
            .map(|i| {
                let t = f64::from(i) / 800.0;
                let wiggle = 0.006 * (t * 9.0).sin();
                SurfaceCoord {
                    depth: groove_depth + wiggle,
                    angle_rad: ostium_angle + (anterior_groove - ostium_angle) * t,
                }
            })
            .collect();
        let ostium_radius = rng.normal_clamped(4.7, 0.4, 4.0, 5.4);
        let cs_length = rng.normal_clamped(atlas::CS_LENGTH_MM, 5.0, 26.0, 38.0);
        let gcv_radius = rng.normal_clamped(2.75, 0.3, 2.3, 3.2);
        // Trunk points with a radius by arc length: CS tapers to the GCV calibre at the vein
        // of Marshall, the GCV tapers slightly to the anterior groove.
        let (points, radii) = offset_and_resample(
            lv,
            &trunk,
            |s, total| {
                if s <= cs_length {
                    ostium_radius + (gcv_radius - ostium_radius) * s / cs_length
                } else {
                    gcv_radius - 0.4 * (s - cs_length) / (total - cs_length).max(1.0)
                }
            },
            None,
        );
        let cs_end =
            cumulative_arc_mm(&points).iter().take_while(|s| **s <= cs_length).count().saturating_sub(1).max(1);
        let cs = tree.push(VeinLabel::CoronarySinus, None, points[..=cs_end].to_vec(), radii[..=cs_end].to_vec());
        let gcv = tree.push(
            VeinLabel::GreatCardiacVein,
            Some(Takeoff { parent: cs, index: cs_end }),
            points[cs_end..].to_vec(),
            radii[cs_end..].to_vec(),
        );

        // AIV: down the anterior interventricular groove toward the apex.
        let gcv_len = tree.branches[gcv.0 as usize].centerline_in_patient.len() - 1;
        let aiv_depth = rng.range(0.85, 0.95);
        let aiv = surface_path(
            groove_depth,
            anterior_groove,
            aiv_depth,
            anterior_groove + deg(rng.normal(0.0, 4.0)),
            0.0,
            rng,
        );
        let aiv_radius = rng.normal_clamped(2.0, 0.2, 1.6, 2.3);
        tree.attach(
            lv,
            VeinLabel::AnteriorInterventricularVein,
            gcv,
            gcv_len,
            &SurfacePath { coords: aiv, radius_start_mm: aiv_radius, radius_end_mm: 0.8 },
        );

        // MCV: joins about 7 mm from the ostium, runs down the posterior interventricular groove.
        let mcv_at = index_at_arc_length(
            &tree.branches[cs.0 as usize],
            rng.normal_clamped(atlas::MCV_FROM_OSTIUM_MM, 1.5, 4.0, 10.0),
        );
        let mcv_start = lv.coord_of(&tree.branches[cs.0 as usize].centerline_in_patient[mcv_at]);
        let posterior_groove = deg(rng.normal_clamped(202.0, 4.0, 194.0, 210.0));
        let mcv =
            surface_path(mcv_start.depth, mcv_start.angle_rad, rng.range(0.8, 0.9), posterior_groove, deg(3.0), rng);
        tree.attach(
            lv,
            VeinLabel::MiddleCardiacVein,
            cs,
            mcv_at,
            &SurfacePath { coords: mcv, radius_start_mm: rng.normal_clamped(2.0, 0.2, 1.6, 2.4), radius_end_mm: 0.7 },
        );

        let mut twig_parents = vec![tree.branches.len() - 1, tree.branches.len() - 2];
        twig_parents.extend(tree.add_tributaries(lv, cs, gcv, rng));

        // Tertiary twigs off the tributaries, MCV and AIV.
        for parent_index in twig_parents {
            for _ in 0..(rng.next_u64() % 3) {
                tree.add_twig(lv, BranchId(parent_index as u32), rng);
            }
        }
        tree
    }

    /// Adds the lateral-wall tributaries (prevalence: PLV 72%, mid-lateral 58%; 1-4 between
    /// MCV and AIV, at least one); returns their indices.
    fn add_tributaries(&mut self, lv: &LvSurface, cs: BranchId, gcv: BranchId, rng: &mut SimRng) -> Vec<usize> {
        let deg = f64::to_radians;
        let mut tributaries = Vec::new();
        if rng.chance(0.72) {
            tributaries.push((
                VeinLabel::PosterolateralVein,
                rng.range(atlas::PLV_ANGLE_RANGE_DEG.0, atlas::PLV_ANGLE_RANGE_DEG.1),
            ));
        }
        if rng.chance(0.6) {
            tributaries.push((
                VeinLabel::LateralMarginalVein,
                rng.range(atlas::LMV_ANGLE_RANGE_DEG.0, atlas::LMV_ANGLE_RANGE_DEG.1),
            ));
        }
        if rng.chance(0.2) {
            tributaries.push((
                VeinLabel::LateralMarginalVein,
                rng.range(atlas::LMV_ANTERIOR_ANGLE_RANGE_DEG.0, atlas::LMV_ANTERIOR_ANGLE_RANGE_DEG.1),
            ));
        }
        if rng.chance(0.5) {
            tributaries.push((
                VeinLabel::AnterolateralVein,
                rng.range(atlas::ALV_ANGLE_RANGE_DEG.0, atlas::ALV_ANGLE_RANGE_DEG.1),
            ));
        }
        if tributaries.is_empty() {
            tributaries.push((
                VeinLabel::LateralMarginalVein,
                rng.range(atlas::LMV_ANGLE_RANGE_DEG.0, atlas::LMV_ANGLE_RANGE_DEG.1),
            ));
        }
        let mut added = Vec::new();
        for (label, angle_deg) in tributaries {
            let (parent, index) = self.trunk_point_nearest(lv, deg(angle_deg), cs, gcv);
            let start = lv.coord_of(&self.branches[parent.0 as usize].centerline_in_patient[index]);
            let end_angle = start.angle_rad + deg(rng.normal(0.0, 8.0));
            let meander = deg(rng.range(2.0, 5.0));
            let coords = surface_path(start.depth, start.angle_rad, rng.range(0.55, 0.85), end_angle, meander, rng);
            let radius = rng.normal_clamped(1.2, 0.3, 0.75, 2.0);
            let path = SurfacePath { coords, radius_start_mm: radius, radius_end_mm: rng.range(0.4, 0.6) };
            added.push(self.branches.len());
            self.attach(lv, label, parent, index, &path);
        }
        added
    }

    fn push(
        &mut self,
        label: VeinLabel,
        takeoff: Option<Takeoff>,
        points: Vec<Point3<f64>>,
        radii: Vec<f64>,
    ) -> BranchId {
        let id = BranchId(self.branches.len() as u32);
        self.branches.push(Branch { id, label, takeoff, centerline_in_patient: points, radius_mm: radii });
        id
    }

    /// Adds a branch that starts exactly at `parent`'s centerline point `index` and follows `path`.
    fn attach(
        &mut self,
        lv: &LvSurface,
        label: VeinLabel,
        parent: BranchId,
        index: usize,
        path: &SurfacePath,
    ) -> BranchId {
        let parent_branch = &self.branches[parent.0 as usize];
        let start = parent_branch.centerline_in_patient[index];
        let start_radius = path.radius_start_mm.min(0.9 * parent_branch.radius_mm[index]);
        let end_radius = path.radius_end_mm.min(start_radius);
        let (mut points, mut radii) = offset_and_resample(
            lv,
            &path.coords,
            |s, total| start_radius + (end_radius - start_radius) * s / total.max(1e-9),
            Some(parent_branch.radius_mm[index]),
        );
        // Join the parent exactly: replace the first sample by the parent's point.
        points[0] = start;
        radii[0] = start_radius;
        let (points, radii) = resample(&points, &radii);
        self.push(label, Some(Takeoff { parent, index }), points, radii)
    }

    /// The trunk (CS or GCV) point whose angle is nearest `angle_rad`.
    fn trunk_point_nearest(&self, lv: &LvSurface, angle_rad: f64, cs: BranchId, gcv: BranchId) -> (BranchId, usize) {
        let mut best = (cs, 0, f64::INFINITY);
        for id in [cs, gcv] {
            for (i, p) in self.branches[id.0 as usize].centerline_in_patient.iter().enumerate() {
                let d = (lv.coord_of(p).angle_rad - angle_rad).sin().abs()
                    + if (lv.coord_of(p).angle_rad - angle_rad).cos() < 0.0 { 2.0 } else { 0.0 };
                if d < best.2 {
                    best = (id, i, d);
                }
            }
        }
        (best.0, best.1)
    }

    /// The branches from the coronary sinus to `id`, root first.
    #[must_use]
    pub fn lineage(&self, id: BranchId) -> Vec<BranchId> {
        let mut out = vec![id];
        let mut at = id;
        while let Some(t) = self.get(at).and_then(|b| b.takeoff) {
            out.push(t.parent);
            at = t.parent;
            if out.len() > self.branches.len() {
                break;
            }
        }
        out.reverse();
        out
    }

    /// The centerline from point `index` of segment `id` back to the ostium through its
    /// parents, distal first, with the radius at each point, mm. A segment's first point
    /// stands for its parent's takeoff point, which it equals.
    #[must_use]
    pub fn path_to_ostium(&self, id: BranchId, index: usize) -> Vec<(Point3<f64>, f64)> {
        let mut path = Vec::new();
        let (mut at, mut end) = (id, index + 1);
        while let Some(seg) = self.get(at) {
            let n = end.min(seg.centerline_in_patient.len());
            path.extend(seg.centerline_in_patient[..n].iter().copied().zip(seg.radius_mm[..n].iter().copied()).rev());
            let Some(t) = seg.takeoff else { break };
            (at, end) = (t.parent, t.index);
        }
        path
    }

    /// The branch and everything distal to it.
    #[must_use]
    pub fn subtree(&self, id: BranchId) -> Vec<BranchId> {
        let mut out = vec![id];
        let mut k = 0;
        while k < out.len() {
            let parent = out[k];
            out.extend(self.children(parent).map(|c| c.id));
            k += 1;
        }
        out
    }

    /// Removes a branch with everything distal to it (a vein absent in this patient); the
    /// remaining branches are renumbered in order, takeoffs following.
    pub fn remove_subtree(&mut self, id: BranchId) {
        let removed = self.subtree(id);
        let mut new_id = vec![None; self.branches.len()];
        let mut next = 0u32;
        for b in &self.branches {
            if !removed.contains(&b.id) {
                new_id[b.id.0 as usize] = Some(BranchId(next));
                next += 1;
            }
        }
        let old = std::mem::take(&mut self.branches);
        for mut b in old.into_iter().filter(|b| !removed.contains(&b.id)) {
            b.id = new_id[b.id.0 as usize].unwrap_or(b.id);
            if let Some(t) = &mut b.takeoff {
                t.parent = new_id[t.parent.0 as usize].unwrap_or(t.parent);
            }
            self.branches.push(b);
        }
    }

    /// Scales a branch's calibre (every radius by `factor`), e.g. a vein too small for a
    /// standard lead; its children keep theirs but never exceed 0.9 of the parent where
    /// they leave it.
    pub fn scale_calibre(&mut self, id: BranchId, factor: f64) {
        let Some(b) = self.branches.get_mut(id.0 as usize) else { return };
        for r in &mut b.radius_mm {
            *r *= factor;
        }
        let parent_radii = b.radius_mm.clone();
        for child in self.branches.iter_mut().filter(|c| c.takeoff.is_some_and(|t| t.parent == id)) {
            let Some(t) = child.takeoff else { continue };
            let cap = 0.9 * parent_radii[t.index.min(parent_radii.len() - 1)];
            let first = child.radius_mm.first().copied().unwrap_or(cap);
            if first > cap {
                let f = cap / first;
                for r in &mut child.radius_mm {
                    *r *= f;
                }
            }
        }
    }

    /// Bends a branch's first `over_mm` into an S over the epicardium (`amplitude_mm`
    /// sideways, two turns): a tortuous takeoff. The takeoff point stays; children leaving
    /// inside the bend move with it.
    pub fn bend_takeoff(&mut self, lv: &LvSurface, id: BranchId, amplitude_mm: f64, over_mm: f64) {
        let Some(b) = self.branches.get(id.0 as usize) else { return };
        let arc = b.arc_lengths_mm();
        let points = b.centerline_in_patient.clone();
        let n = points.len();
        if n < 3 || over_mm <= 0.0 {
            return;
        }
        let bent: Vec<Point3<f64>> = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let s = arc[i];
                if s >= over_mm {
                    return *p;
                }
                let tangent = (points[(i + 1).min(n - 1)] - points[i.saturating_sub(1)]).normalize();
                let v = p - lv.base_center_in_patient;
                let axis = lv.long_axis.into_inner();
                let outward = (v - axis * v.dot(&axis)).normalize();
                let side = outward.cross(&tangent).normalize();
                let u = s / over_mm;
                let envelope = (std::f64::consts::PI * u).sin();
                p + side * (amplitude_mm * envelope * (std::f64::consts::TAU * u).sin())
            })
            .collect();
        self.branches[id.0 as usize].centerline_in_patient.clone_from(&bent);
        for child in self.branches.iter_mut().filter(|c| c.takeoff.is_some_and(|t| t.parent == id)) {
            if let (Some(t), Some(first)) = (child.takeoff, child.centerline_in_patient.first_mut()) {
                *first = bent[t.index.min(n - 1)];
            }
        }
    }

    /// Adds tertiary twigs (off the named side branches, the longest first) until the tree has
    /// `branches` branches or no side branch is long enough: denser trees than the anatomy's
    /// usual 8-18 branches, for benchmarks.
    pub fn add_twigs_up_to(&mut self, lv: &LvSurface, branches: usize, rng: &mut SimRng) {
        let mut parents: Vec<BranchId> = self
            .branches
            .iter()
            .filter(|b| b.takeoff.is_some() && b.label != VeinLabel::Branch && b.label != VeinLabel::GreatCardiacVein)
            .map(|b| b.id)
            .collect();
        parents.sort_by_key(|id| std::cmp::Reverse(self.branches[id.0 as usize].centerline_in_patient.len()));
        for round in 0..4 {
            for parent in &parents {
                if self.branches.len() >= branches {
                    return;
                }
                let before = self.branches.len();
                self.add_twig(lv, *parent, rng);
                if before == self.branches.len() && round == 3 {
                    return;
                }
            }
        }
    }

    fn add_twig(&mut self, lv: &LvSurface, parent: BranchId, rng: &mut SimRng) {
        let parent_branch = &self.branches[parent.0 as usize];
        let n = parent_branch.centerline_in_patient.len();
        if n < 12 {
            return;
        }
        let index = ((rng.range(0.3, 0.75) * n as f64) as usize).min(n - 1);
        let start = lv.coord_of(&parent_branch.centerline_in_patient[index]);
        let length_mm = rng.range(10.0, 25.0);
        let side = if rng.chance(0.5) { 1.0 } else { -1.0 };
        let sweep = side * length_mm * rng.range(0.6, 0.85) / lv.radius_at(start.depth).max(5.0);
        let along = length_mm * rng.range(0.4, 0.7) / lv.base_to_apex_mm;
        let coords = surface_path(
            start.depth,
            start.angle_rad,
            (start.depth + along).min(0.95),
            start.angle_rad + sweep,
            0.02,
            rng,
        );
        let radius = rng.range(0.35, 0.6);
        self.attach(
            lv,
            VeinLabel::Branch,
            parent,
            index,
            &SurfacePath { coords, radius_start_mm: radius, radius_end_mm: 0.25 },
        );
    }
}

/// A gently meandering surface path from `(depth0, angle0)` to `(depth1, angle1)`, turning
/// the short way round the long axis.
fn surface_path(
    depth0: f64,
    angle0: f64,
    depth1: f64,
    angle1: f64,
    meander_rad: f64,
    rng: &mut SimRng,
) -> Vec<SurfaceCoord> {
    let pi = std::f64::consts::PI;
    let angle1 = angle0 + (angle1 - angle0 + pi).rem_euclid(std::f64::consts::TAU) - pi;
    let phase = rng.range(0.0, std::f64::consts::TAU);
    let waves = rng.range(1.0, 2.5);
    (0..=400)
        .map(|i| {
            let t = f64::from(i) / 400.0;
            // The meander vanishes at both ends so the path meets its parent cleanly.
            let m = meander_rad * (std::f64::consts::PI * t).sin() * (std::f64::consts::TAU * waves * t + phase).sin();
            SurfaceCoord { depth: depth0 + (depth1 - depth0) * t, angle_rad: angle0 + (angle1 - angle0) * t + m }
        })
        .collect()
}

/// Lays a dense surface path onto the epicardium (centerline one radius outside it) and
/// resamples it at [`SPACING_MM`]; `radius(s, total)` gives the radius at arc length `s`.
/// Over its first `emerge_mm` the centerline rises from `emerge_offset_mm` (the parent's
/// radius: the branch leaves the parent's lumen) to its own radius.
fn offset_and_resample(
    lv: &LvSurface,
    coords: &[SurfaceCoord],
    radius: impl Fn(f64, f64) -> f64,
    emerge_offset_mm: Option<f64>,
) -> (Vec<Point3<f64>>, Vec<f64>) {
    let on_surface: Vec<Point3<f64>> = coords.iter().map(|c| lv.point(*c, 0.0)).collect();
    let arc = cumulative_arc_mm(&on_surface);
    let total = arc.last().copied().unwrap_or(0.0);
    let radii: Vec<f64> = arc.iter().map(|&s| radius(s, total)).collect();
    let points: Vec<Point3<f64>> = coords
        .iter()
        .zip(&radii)
        .zip(&arc)
        .map(|((c, r), s)| {
            let offset = match emerge_offset_mm {
                Some(parent) => {
                    let blend = (1.0 - s / (parent + 1.0)).clamp(0.0, 1.0);
                    r + (parent - r).max(0.0) * blend * blend
                }
                None => *r,
            };
            lv.point(*c, offset)
        })
        .collect();
    resample(&points, &radii)
}

/// Resamples a polyline and its radii at [`SPACING_MM`] by arc length, keeping both ends.
fn resample(points: &[Point3<f64>], radii: &[f64]) -> (Vec<Point3<f64>>, Vec<f64>) {
    let arc = cumulative_arc_mm(points);
    let total = arc.last().copied().unwrap_or(0.0);
    let n = (total / SPACING_MM).round().max(1.0) as usize;
    let mut out_p = Vec::with_capacity(n + 1);
    let mut out_r = Vec::with_capacity(n + 1);
    let mut j = 0;
    for k in 0..=n {
        let s = total * k as f64 / n as f64;
        while j + 2 < arc.len() && arc[j + 1] < s {
            j += 1;
        }
        let (s0, s1) = (arc[j], arc[(j + 1).min(arc.len() - 1)]);
        let t = if s1 > s0 { ((s - s0) / (s1 - s0)).clamp(0.0, 1.0) } else { 0.0 };
        let (a, b) = (points[j], points[(j + 1).min(points.len() - 1)]);
        out_p.push(a + (b - a) * t);
        out_r.push(radii[j] + (radii[(j + 1).min(radii.len() - 1)] - radii[j]) * t);
    }
    // Interpolation keeps radii non-increasing when the input is; enforce it against rounding.
    for i in 1..out_r.len() {
        out_r[i] = out_r[i].min(out_r[i - 1]);
    }
    (out_p, out_r)
}

fn index_at_arc_length(branch: &Branch, s_mm: f64) -> usize {
    let arc = branch.arc_lengths_mm();
    arc.iter().position(|&s| s >= s_mm).unwrap_or(arc.len().saturating_sub(1))
}
