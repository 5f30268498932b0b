//! A guidewire and an LV lead in the synthetic patient's veins. Both start at the coronary
//! sinus ostium (in the guide catheter) and move along one *track*: the path through the
//! tree that the wire has opened. The lead rides over the wire and never passes its tip.
//!
//! - Branch selection: the wire's angled tip has a roll (rotation about the vessel axis,
//!   measured from the epicardial outward normal toward `tangent x outward`). When the tip
//!   passes a takeoff it enters the side branch if its roll is within the capture window of
//!   the branch's own direction there; otherwise it stays in the parent. At the end of a
//!   segment it continues into the segment that carries on (CS into GCV, GCV into AIV).
//! - The lead follows while the vein admits it (diameter at least `distension` times the
//!   lead's); where it stops it is *wedged*. Pushing on past `max_excess_push_mm` injures
//!   the vein. Through a bend sharper than `bend_curvature_per_mm` it needs `support_mm` of
//!   wire ahead of it.
//! - An unsupported lead (less than `min_support_to_stay_mm` of wire ahead) in a vein more
//!   than `stable_ratio` times its diameter dislodges: it falls back to where its segment
//!   leaves the parent, and on through every vein too large to hold it.
//!
//! The numbers are a training model's, not measured mechanics (fields of [`CatheterConfig`]).

use std::collections::HashMap;

use nalgebra::{Point3, Vector3};
use serde::Serialize;
use simulator::heart::LvSurface;
use simulator::venous_tree::{BranchId, VenousTree};
use venogram::VeinLabel;

use crate::leads::LeadSpec;

/// The steering model's constants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CatheterConfig {
    /// Half-width of the roll window that takes the wire into a side branch, degrees.
    pub capture_window_deg: f64,
    /// The lead passes where the vein is at least this times its diameter (veins stretch).
    pub distension: f64,
    /// Wedged: the vein at the tip is at most this times the lead's diameter.
    pub wedge_ratio: f64,
    /// An unsupported lead stays put in a vein at most this times its diameter.
    pub stable_ratio: f64,
    /// Wire ahead of the lead tip that holds it in a large vein, mm.
    pub min_support_to_stay_mm: f64,
    /// Wire ahead of the lead tip needed to track through a sharp bend, mm.
    pub support_mm: f64,
    /// Curvature above which a bend needs support, radians per mm.
    pub bend_curvature_per_mm: f64,
    /// Push on a wedged lead beyond which the vein is injured, mm.
    pub max_excess_push_mm: f64,
}

impl Default for CatheterConfig {
    fn default() -> Self {
        Self {
            capture_window_deg: 35.0,
            distension: 0.85,
            wedge_ratio: 1.15,
            stable_ratio: 1.6,
            min_support_to_stay_mm: 5.0,
            support_mm: 12.0,
            bend_curvature_per_mm: 0.09,
            max_excess_push_mm: 8.0,
        }
    }
}

/// What a move did, for the trainee's feedback and the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CatheterEvent {
    /// The wire entered a vein.
    WireEntered {
        /// Its label.
        vein: VeinLabel,
    },
    /// The wire is at the end of its vein.
    WireAtVeinEnd {
        /// The vein.
        vein: VeinLabel,
    },
    /// The lead stopped: the vein is too small for it here.
    LeadWedged {
        /// Vein diameter at the tip, mm.
        vein_diameter_mm: f64,
    },
    /// The lead stopped at a bend: advance the wire further for support.
    LeadNeedsSupport {
        /// Wire beyond the lead tip now, mm.
        wire_ahead_mm: f64,
    },
    /// The lead reached the wire tip.
    LeadAtWireTip,
    /// A wedged lead was pushed on: the vein is injured.
    VeinTrauma {
        /// Where.
        vein: VeinLabel,
    },
    /// An unsupported lead in a vein too large for it fell back.
    Dislodged {
        /// The vein it fell out of.
        from: VeinLabel,
        /// The vein it came to rest in (None: back at the ostium).
        to: Option<VeinLabel>,
        /// Diameter of the vein it could not hold in, mm.
        vein_diameter_mm: f64,
    },
    /// A lead was exchanged.
    LeadChanged {
        /// The new lead's name.
        lead: String,
    },
    /// A lead can only be exchanged while it is back at the ostium.
    LeadNotOut,
}

/// One point of the track: a centerline point of a branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    branch: BranchId,
    index: usize,
}

/// A side branch leaving at a centerline point, with the roll that enters it.
#[derive(Debug, Clone, Copy)]
struct Takeoff {
    child: BranchId,
    roll_rad: f64,
    /// Alignment of the child's first millimetres with the parent's tangent (1 = straight on).
    alignment: f64,
}

/// A point on the track: which segment, how far along.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Place {
    /// The segment.
    pub branch: BranchId,
    /// Its label.
    pub vein: VeinLabel,
    /// Centerline index in the segment.
    pub index: usize,
    /// Fraction of the segment's length from its takeoff.
    pub fraction: f64,
    /// Distance along the track from the ostium, mm.
    pub arc_from_ostium_mm: f64,
    /// Vein diameter at the tip, mm.
    pub vein_diameter_mm: f64,
    /// Whether the lead would be wedged here.
    pub wedged: bool,
}

/// A takeoff ahead of the wire tip on its present course.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TakeoffAhead {
    /// Distance from the wire tip, mm.
    pub distance_mm: f64,
    /// The side branch.
    pub branch: BranchId,
    /// Its label.
    pub vein: VeinLabel,
    /// The roll that enters it, degrees in (-180, 180].
    pub roll_deg: f64,
}

/// The wire and the lead in the veins.
#[derive(Debug, Clone)]
pub struct Catheter {
    tree: VenousTree,
    lv: LvSurface,
    config: CatheterConfig,
    lead: LeadSpec,
    takeoffs: HashMap<(BranchId, usize), Vec<Takeoff>>,
    track: Vec<Node>,
    arc_mm: Vec<f64>,
    wire_s_mm: f64,
    lead_s_mm: f64,
    roll_rad: f64,
    excess_push_mm: f64,
}

/// Continues a path that ends at the ostium 60 mm out along the coronary sinus's initial
/// direction (the guide catheter's line), so a lead shallower than its span has its proximal
/// electrodes outside the CS.
pub fn extend_out_of_ostium(tree: &VenousTree, path: &mut Vec<[f64; 3]>) {
    let Some(cs) = tree.branches.first() else { return };
    let points = &cs.centerline_in_patient;
    if points.len() < 3 {
        return;
    }
    let t = (points[2] - points[0]).normalize();
    for mm in 1..=60 {
        path.push((points[0] - t * f64::from(mm)).coords.into());
    }
}

/// Angle difference wrapped to [0, pi].
fn angle_between(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(std::f64::consts::TAU);
    d.min(std::f64::consts::TAU - d)
}

/// Wraps an angle to (-pi, pi].
#[must_use]
pub fn wrap_rad(a: f64) -> f64 {
    let w = a.rem_euclid(std::f64::consts::TAU);
    if w > std::f64::consts::PI { w - std::f64::consts::TAU } else { w }
}

impl Catheter {
    /// Wire and lead at the ostium, the wire's roll at 0.
    #[must_use]
    pub fn new(tree: &VenousTree, lv: &LvSurface, lead: LeadSpec, config: CatheterConfig) -> Self {
        let mut c = Self {
            tree: tree.clone(),
            lv: lv.clone(),
            config,
            lead,
            takeoffs: HashMap::new(),
            track: vec![Node { branch: BranchId(0), index: 0 }],
            arc_mm: vec![0.0],
            wire_s_mm: 0.0,
            lead_s_mm: 0.0,
            roll_rad: 0.0,
            excess_push_mm: 0.0,
        };
        let mut takeoffs: HashMap<(BranchId, usize), Vec<Takeoff>> = HashMap::new();
        for b in &tree.branches {
            let Some(t) = b.takeoff else { continue };
            let n = b.centerline_in_patient.len();
            if n < 2 {
                continue;
            }
            let parent = Node { branch: t.parent, index: t.index };
            let (tangent, outward, side) = c.frame(parent);
            let d = b.centerline_in_patient[4.min(n - 1)] - b.centerline_in_patient[0];
            let across = d - tangent * tangent.dot(&d);
            let roll_rad = across.dot(&side).atan2(across.dot(&outward));
            let alignment = d.normalize().dot(&tangent);
            takeoffs.entry((t.parent, t.index)).or_default().push(Takeoff { child: b.id, roll_rad, alignment });
        }
        c.takeoffs = takeoffs;
        c
    }

    fn point(&self, node: Node) -> Point3<f64> {
        self.tree.branches[node.branch.0 as usize].centerline_in_patient[node.index]
    }

    fn radius(&self, node: Node) -> f64 {
        self.tree.branches[node.branch.0 as usize].radius_mm[node.index]
    }

    /// Tangent, outward normal and side at a centerline point.
    fn frame(&self, node: Node) -> (Vector3<f64>, Vector3<f64>, Vector3<f64>) {
        let points = &self.tree.branches[node.branch.0 as usize].centerline_in_patient;
        let n = points.len();
        let a = points[node.index.saturating_sub(1)];
        let b = points[(node.index + 1).min(n - 1)];
        let tangent = (b - a).try_normalize(1e-9).unwrap_or_else(Vector3::z);
        let v = points[node.index] - self.lv.base_center_in_patient;
        let axis = self.lv.long_axis.into_inner();
        let radial = v - axis * v.dot(&axis);
        let outward =
            (radial - tangent * tangent.dot(&radial)).try_normalize(1e-9).unwrap_or_else(|| tangent.cross(&axis));
        let side = tangent.cross(&outward);
        (tangent, outward, side)
    }

    fn label(&self, branch: BranchId) -> VeinLabel {
        self.tree.branches[branch.0 as usize].label
    }

    /// The node after `node` on the wire's course with roll `roll_rad`, and whether that enters a new segment.
    fn next_node(&self, node: Node, roll_rad: f64) -> Option<(Node, bool)> {
        let len = self.tree.branches[node.branch.0 as usize].centerline_in_patient.len();
        let here = self.takeoffs.get(&(node.branch, node.index)).map_or(&[][..], Vec::as_slice);
        // The side branch the roll aims at: within the window, the nearest in angle.
        let window = self.config.capture_window_deg.to_radians();
        let aimed = here
            .iter()
            .filter(|t| angle_between(t.roll_rad, roll_rad) <= window)
            .min_by(|a, b| angle_between(a.roll_rad, roll_rad).total_cmp(&angle_between(b.roll_rad, roll_rad)));
        let chosen = if node.index + 1 < len {
            match aimed {
                Some(t) => t,
                None => return Some((Node { branch: node.branch, index: node.index + 1 }, false)),
            }
        } else {
            // The end of a segment: the aimed side branch, else the one that carries on.
            aimed.or_else(|| here.iter().max_by(|a, b| a.alignment.total_cmp(&b.alignment)))?
        };
        Some((Node { branch: chosen.child, index: 1 }, true))
    }

    /// Extends the track to `s_mm` (or as far as the veins go); events for veins entered.
    fn extend_to(&mut self, s_mm: f64, events: &mut Vec<CatheterEvent>) -> f64 {
        while self.arc_mm.last().copied().unwrap_or(0.0) < s_mm {
            let last = *self.track.last().unwrap_or(&Node { branch: BranchId(0), index: 0 });
            let Some((next, entered)) = self.next_node(last, self.roll_rad) else {
                events.push(CatheterEvent::WireAtVeinEnd { vein: self.label(last.branch) });
                return self.arc_mm.last().copied().unwrap_or(0.0);
            };
            let step = (self.point(next) - self.point(last)).norm();
            self.track.push(next);
            self.arc_mm.push(self.arc_mm.last().copied().unwrap_or(0.0) + step);
            if entered {
                events.push(CatheterEvent::WireEntered { vein: self.label(next.branch) });
            }
        }
        s_mm
    }

    /// Drops the track beyond the wire and the lead (a retracted wire chooses again).
    fn trim_track(&mut self) {
        let keep = self.wire_s_mm.max(self.lead_s_mm);
        let k = self.arc_mm.iter().position(|&a| a >= keep - 1e-9).unwrap_or(self.arc_mm.len() - 1);
        self.track.truncate(k + 1);
        self.arc_mm.truncate(k + 1);
    }

    /// The track segment index containing `s` and the fraction within it.
    fn locate(&self, s_mm: f64) -> (usize, f64) {
        let n = self.arc_mm.len();
        if n < 2 || s_mm <= 0.0 {
            return (0, 0.0);
        }
        let k = self.arc_mm.partition_point(|&a| a <= s_mm).clamp(1, n - 1) - 1;
        let span = (self.arc_mm[k + 1] - self.arc_mm[k]).max(1e-9);
        (k, ((s_mm - self.arc_mm[k]) / span).clamp(0.0, 1.0))
    }

    /// The point at `s_mm` along the track.
    #[must_use]
    pub fn point_at(&self, s_mm: f64) -> Point3<f64> {
        let (k, t) = self.locate(s_mm);
        let a = self.point(self.track[k]);
        match self.track.get(k + 1) {
            Some(next) => a + (self.point(*next) - a) * t,
            None => a,
        }
    }

    /// Vein diameter at `s_mm` along the track, mm.
    #[must_use]
    pub fn diameter_at(&self, s_mm: f64) -> f64 {
        let (k, t) = self.locate(s_mm);
        let a = self.radius(self.track[k]);
        let r = self.track.get(k + 1).map_or(a, |next| a + (self.radius(*next) - a) * t);
        2.0 * r
    }

    /// Curvature of the track at `s_mm` (turning over 3 mm either side), radians per mm.
    fn curvature_at(&self, s_mm: f64) -> f64 {
        let end = self.arc_mm.last().copied().unwrap_or(0.0);
        let (a, b) = ((s_mm - 3.0).max(0.0), (s_mm + 3.0).min(end));
        if b - a < 2.0 {
            return 0.0;
        }
        let (p0, p1, p2) = (self.point_at(a), self.point_at(s_mm), self.point_at(b));
        match ((p1 - p0).try_normalize(1e-9), (p2 - p1).try_normalize(1e-9)) {
            (Some(u), Some(v)) => u.dot(&v).clamp(-1.0, 1.0).acos() / (b - a),
            _ => 0.0,
        }
    }

    /// Advances the wire by `mm` (its roll picks the branches it enters).
    pub fn advance_wire(&mut self, mm: f64) -> Vec<CatheterEvent> {
        let mut events = Vec::new();
        let want = self.wire_s_mm + mm.max(0.0);
        self.wire_s_mm = self.extend_to(want, &mut events).min(want);
        events
    }

    /// Pulls the wire back by `mm` (not behind the ostium); the lead may then lose its support.
    pub fn retract_wire(&mut self, mm: f64) -> Vec<CatheterEvent> {
        self.wire_s_mm = (self.wire_s_mm - mm.max(0.0)).max(0.0);
        self.trim_track();
        self.settle()
    }

    /// Turns the wire tip by `deg`.
    pub fn rotate(&mut self, deg: f64) {
        self.roll_rad = wrap_rad(self.roll_rad + deg.to_radians());
    }

    /// Sets the wire tip's roll, degrees.
    pub fn set_roll_deg(&mut self, deg: f64) {
        self.roll_rad = wrap_rad(deg.to_radians());
    }

    /// Advances the lead over the wire by `mm`.
    pub fn advance_lead(&mut self, mm: f64) -> Vec<CatheterEvent> {
        let mut events = Vec::new();
        let target = self.lead_s_mm + mm.max(0.0);
        let lead_d = self.lead.diameter_mm();
        let mut s = self.lead_s_mm;
        while s < target - 1e-9 {
            let next = (s + 0.25).min(target);
            if next > self.wire_s_mm + 1e-9 {
                self.lead_s_mm = s;
                events.push(CatheterEvent::LeadAtWireTip);
                return events;
            }
            let vein_d = self.diameter_at(next);
            if vein_d < self.config.distension * lead_d {
                self.lead_s_mm = s;
                self.excess_push_mm += target - s;
                events.push(CatheterEvent::LeadWedged { vein_diameter_mm: vein_d });
                if self.excess_push_mm > self.config.max_excess_push_mm {
                    self.excess_push_mm = 0.0;
                    events.push(CatheterEvent::VeinTrauma { vein: self.label(self.track[self.locate(s).0].branch) });
                }
                return events;
            }
            if self.curvature_at(next) > self.config.bend_curvature_per_mm
                && self.wire_s_mm - next < self.config.support_mm
            {
                self.lead_s_mm = s;
                events.push(CatheterEvent::LeadNeedsSupport { wire_ahead_mm: self.wire_s_mm - s });
                return events;
            }
            s = next;
        }
        self.lead_s_mm = s;
        events
    }

    /// Pulls the lead back by `mm`; unsupported in a large vein, it may dislodge.
    pub fn retract_lead(&mut self, mm: f64) -> Vec<CatheterEvent> {
        self.lead_s_mm = (self.lead_s_mm - mm.max(0.0)).max(0.0);
        self.excess_push_mm = 0.0;
        self.trim_track();
        self.settle()
    }

    /// Exchanges the lead (only while it is out at the ostium).
    pub fn change_lead(&mut self, lead: LeadSpec) -> Vec<CatheterEvent> {
        if self.lead_s_mm > 0.5 {
            return vec![CatheterEvent::LeadNotOut];
        }
        self.lead = lead;
        self.lead_s_mm = 0.0;
        vec![CatheterEvent::LeadChanged { lead: lead.name() }]
    }

    /// An unsupported lead in a vein too large for it falls back, segment by segment.
    fn settle(&mut self) -> Vec<CatheterEvent> {
        let lead_d = self.lead.diameter_mm();
        let mut events = Vec::new();
        let mut from: Option<(VeinLabel, f64)> = None;
        loop {
            if self.lead_s_mm <= 0.0 || self.wire_s_mm - self.lead_s_mm >= self.config.min_support_to_stay_mm {
                break;
            }
            let vein_d = self.diameter_at(self.lead_s_mm);
            if vein_d <= self.config.stable_ratio * lead_d {
                break;
            }
            // Back to where this segment leaves its parent (or the ostium).
            let (k, _) = self.locate(self.lead_s_mm);
            let branch = self.track[k].branch;
            from.get_or_insert((self.label(branch), vein_d));
            let start = (0..=k).rev().take_while(|&j| self.track[j].branch == branch).last().unwrap_or(0);
            self.lead_s_mm = if start == 0 { 0.0 } else { self.arc_mm[start - 1] };
        }
        if let Some((vein, vein_diameter_mm)) = from {
            let to = (self.lead_s_mm > 0.0).then(|| self.label(self.track[self.locate(self.lead_s_mm).0].branch));
            events.push(CatheterEvent::Dislodged { from: vein, to, vein_diameter_mm });
            self.trim_track();
        }
        events
    }

    /// The wire tip's position.
    #[must_use]
    pub fn wire_tip(&self) -> Point3<f64> {
        self.point_at(self.wire_s_mm)
    }

    /// The lead tip's position.
    #[must_use]
    pub fn lead_tip(&self) -> Point3<f64> {
        self.point_at(self.lead_s_mm)
    }

    /// Direction of the track at `s_mm` (toward the distal end).
    #[must_use]
    pub fn direction_at(&self, s_mm: f64) -> Vector3<f64> {
        let end = self.arc_mm.last().copied().unwrap_or(0.0);
        let (a, b) = ((s_mm - 1.0).max(0.0), (s_mm + 1.0).min(end));
        (self.point_at(b) - self.point_at(a)).try_normalize(1e-9).unwrap_or_else(|| {
            let (t, _, _) = self.frame(self.track[0]);
            t
        })
    }

    /// Wire tip distance from the ostium along the track, mm.
    #[must_use]
    pub fn wire_s_mm(&self) -> f64 {
        self.wire_s_mm
    }

    /// Lead tip distance from the ostium along the track, mm.
    #[must_use]
    pub fn lead_s_mm(&self) -> f64 {
        self.lead_s_mm
    }

    /// The wire tip's roll, degrees.
    #[must_use]
    pub fn roll_deg(&self) -> f64 {
        self.roll_rad.to_degrees()
    }

    /// The lead in use.
    #[must_use]
    pub fn lead(&self) -> LeadSpec {
        self.lead
    }

    /// The model's constants.
    #[must_use]
    pub fn config(&self) -> &CatheterConfig {
        &self.config
    }

    /// Where the lead tip is.
    #[must_use]
    pub fn lead_place(&self) -> Place {
        self.place_at(self.lead_s_mm)
    }

    /// Where the wire tip is.
    #[must_use]
    pub fn wire_place(&self) -> Place {
        self.place_at(self.wire_s_mm)
    }

    /// The place `s_mm` along the track.
    #[must_use]
    pub fn place_at(&self, s_mm: f64) -> Place {
        let (k, t) = self.locate(s_mm);
        let node = if t > 0.5 && k + 1 < self.track.len() { self.track[k + 1] } else { self.track[k] };
        let branch = &self.tree.branches[node.branch.0 as usize];
        let n = branch.centerline_in_patient.len();
        let vein_diameter_mm = self.diameter_at(s_mm);
        Place {
            branch: node.branch,
            vein: branch.label,
            index: node.index,
            fraction: node.index as f64 / (n.saturating_sub(1)).max(1) as f64,
            arc_from_ostium_mm: s_mm,
            vein_diameter_mm,
            wedged: vein_diameter_mm <= self.config.wedge_ratio * self.lead.diameter_mm(),
        }
    }

    /// Track points from `s_mm` back to the ostium, then on out along the guide catheter's
    /// line (a lead shallower than its span has proximal electrodes outside the CS).
    #[must_use]
    pub fn path_back_from(&self, s_mm: f64) -> Vec<[f64; 3]> {
        let (k, _) = self.locate(s_mm);
        let mut path: Vec<[f64; 3]> = vec![self.point_at(s_mm).coords.into()];
        for j in (0..=k).rev() {
            path.push(self.point(self.track[j]).coords.into());
        }
        extend_out_of_ostium(&self.tree, &mut path);
        path
    }

    /// The wire's points from the ostium to its tip (for drawing).
    #[must_use]
    pub fn wire_points(&self) -> Vec<Point3<f64>> {
        self.points_to(self.wire_s_mm)
    }

    /// The lead's points from the ostium to its tip (for drawing).
    #[must_use]
    pub fn lead_points(&self) -> Vec<Point3<f64>> {
        self.points_to(self.lead_s_mm)
    }

    fn points_to(&self, s_mm: f64) -> Vec<Point3<f64>> {
        let (k, _) = self.locate(s_mm);
        let mut out: Vec<Point3<f64>> = self.track[..=k].iter().map(|n| self.point(*n)).collect();
        out.push(self.point_at(s_mm));
        out
    }

    /// The side branches the wire would pass in the next `within_mm` on its present course
    /// (staying in its segment), nearest first.
    #[must_use]
    pub fn takeoffs_ahead(&self, within_mm: f64) -> Vec<TakeoffAhead> {
        let (k, t) = self.locate(self.wire_s_mm);
        let node = if t > 0.999 && k + 1 < self.track.len() { self.track[k + 1] } else { self.track[k] };
        let branch = &self.tree.branches[node.branch.0 as usize];
        let arc = branch.arc_lengths_mm();
        let here = arc[node.index];
        let mut out = Vec::new();
        for (index, at_mm) in arc.iter().enumerate().skip(node.index) {
            let distance_mm = at_mm - here;
            if distance_mm > within_mm {
                break;
            }
            if index == node.index && t < 0.999 && k + 1 < self.track.len() {
                // Already passing this point.
                continue;
            }
            for takeoff in self.takeoffs.get(&(node.branch, index)).into_iter().flatten() {
                out.push(TakeoffAhead {
                    distance_mm,
                    branch: takeoff.child,
                    vein: self.label(takeoff.child),
                    roll_deg: takeoff.roll_rad.to_degrees(),
                });
            }
        }
        out
    }

    /// The roll that enters `child` where it leaves its parent, degrees.
    #[must_use]
    pub fn roll_into_deg(&self, child: BranchId) -> Option<f64> {
        let t = self.tree.get(child)?.takeoff?;
        self.takeoffs.get(&(t.parent, t.index))?.iter().find(|x| x.child == child).map(|x| x.roll_rad.to_degrees())
    }

    /// A roll that enters none of the side branches leaving at `child`'s takeoff point other
    /// than `keep` (None: none at all), degrees: the middle of the widest free arc.
    #[must_use]
    pub fn roll_avoiding_deg(&self, parent: BranchId, index: usize, keep: Option<BranchId>) -> f64 {
        let Some(ts) = self.takeoffs.get(&(parent, index)) else { return self.roll_deg() };
        let mut angles: Vec<f64> =
            ts.iter().filter(|t| Some(t.child) != keep).map(|t| t.roll_rad.rem_euclid(std::f64::consts::TAU)).collect();
        if angles.is_empty() {
            return self.roll_deg();
        }
        angles.sort_by(f64::total_cmp);
        let mut best = (0.0, 0.0);
        for (i, a) in angles.iter().enumerate() {
            let next = if i + 1 < angles.len() { angles[i + 1] } else { angles[0] + std::f64::consts::TAU };
            if next - a > best.0 {
                best = (next - a, a + 0.5 * (next - a));
            }
        }
        wrap_rad(best.1).to_degrees()
    }

    /// The segments the track passes through, ostium first.
    #[must_use]
    pub fn track_branches(&self) -> Vec<BranchId> {
        let mut out: Vec<BranchId> = Vec::new();
        for n in &self.track {
            if out.last() != Some(&n.branch) {
                out.push(n.branch);
            }
        }
        out
    }

    /// The tree the catheter moves in.
    #[must_use]
    pub fn tree(&self) -> &VenousTree {
        &self.tree
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leads::default_diameter_fr;
    use device_link::lead::LeadModel;
    use simulator::SyntheticPatient;

    fn catheter(seed: u64) -> (SyntheticPatient, Catheter) {
        let p = SyntheticPatient::generate(seed);
        let lead = LeadSpec { model: LeadModel::Quartet, diameter_fr: default_diameter_fr(LeadModel::Quartet) };
        let c = Catheter::new(&p.tree, &p.lv, lead, CatheterConfig::default());
        (p, c)
    }

    /// Drives the wire into `child`, rotating before each takeoff.
    fn wire_into(c: &mut Catheter, child: BranchId) {
        for _ in 0..400 {
            if c.track_branches().contains(&child) {
                return;
            }
            let ahead = c.takeoffs_ahead(1.5);
            if let Some(t) = ahead.iter().find(|t| t.branch == child) {
                c.set_roll_deg(t.roll_deg);
            } else if let Some(t) = ahead.first() {
                let parent = c.tree().get(t.branch).and_then(|b| b.takeoff).unwrap();
                let keep = ahead.iter().find(|a| c.tree().subtree(a.branch).contains(&child)).map(|a| a.branch);
                c.set_roll_deg(c.roll_avoiding_deg(parent.parent, parent.index, keep));
                if let Some(k) = keep {
                    c.set_roll_deg(c.roll_into_deg(k).unwrap());
                }
            }
            c.advance_wire(1.0);
        }
    }

    #[test]
    fn roll_selects_the_branch_and_the_trunk_carries_on() {
        for seed in [3, 7, 11] {
            let (p, mut c) = catheter(seed);
            // Rolled away from every side branch, the wire follows CS -> GCV -> AIV.
            for _ in 0..400 {
                if let Some(t) = c.takeoffs_ahead(1.5).first() {
                    let parent = p.tree.get(t.branch).unwrap().takeoff.unwrap();
                    c.set_roll_deg(c.roll_avoiding_deg(parent.parent, parent.index, None));
                }
                if c.advance_wire(1.0).iter().any(|e| matches!(e, CatheterEvent::WireAtVeinEnd { .. })) {
                    break;
                }
            }
            let labels: Vec<VeinLabel> = c.track_branches().iter().map(|b| p.tree.get(*b).unwrap().label).collect();
            assert_eq!(
                labels,
                [VeinLabel::CoronarySinus, VeinLabel::GreatCardiacVein, VeinLabel::AnteriorInterventricularVein],
                "seed {seed}"
            );
            // Back out and into each lateral vein in turn.
            for label in [VeinLabel::PosterolateralVein, VeinLabel::LateralMarginalVein] {
                let Some(vein) = p.tree.find(label) else { continue };
                c.retract_wire(1000.0);
                wire_into(&mut c, vein.id);
                assert!(c.track_branches().contains(&vein.id), "seed {seed}: wire did not enter {label:?}");
            }
        }
    }

    #[test]
    fn the_lead_follows_the_wire_wedges_and_dislodges_without_support() {
        let (p, mut c) = catheter(7);
        let plv = p.tree.find(VeinLabel::PosterolateralVein).unwrap().id;
        wire_into(&mut c, plv);
        c.advance_wire(200.0);
        let wire = c.wire_s_mm();
        // The lead never passes the wire and stops where the vein is too small.
        let events = c.advance_lead(500.0);
        assert!(c.lead_s_mm() <= wire + 1e-9);
        let place = c.lead_place();
        assert_eq!(place.branch, plv);
        assert!(events.iter().any(|e| matches!(e, CatheterEvent::LeadWedged { .. })), "{events:?}");
        assert!(place.wedged && place.vein_diameter_mm < c.lead().diameter_mm());
        // Pushing on hurts the vein.
        let events = c.advance_lead(10.0);
        assert!(events.iter().any(|e| matches!(e, CatheterEvent::VeinTrauma { .. })), "{events:?}");
        // Wedged, the lead stays when the wire comes out.
        let s = c.lead_s_mm();
        assert!(c.retract_wire(1000.0).is_empty());
        assert!((c.lead_s_mm() - s).abs() < 1e-9);
        // Pulled back into the wide proximal vein without the wire, it falls out of the PLV.
        let events =
            c.retract_lead(c.lead_s_mm() - c.arc_mm[c.track.iter().position(|n| n.branch == plv).unwrap()] - 2.0);
        let dislodged = events.iter().find_map(|e| match e {
            CatheterEvent::Dislodged { from, .. } => Some(*from),
            _ => None,
        });
        if p.tree.get(plv).unwrap().radius_mm[2] * 2.0 > c.config().stable_ratio * c.lead().diameter_mm() {
            assert_eq!(dislodged, Some(VeinLabel::PosterolateralVein), "{events:?}");
            assert!(!c.track_branches()[..].is_empty());
            assert_ne!(c.lead_place().branch, plv);
        }
    }
}
