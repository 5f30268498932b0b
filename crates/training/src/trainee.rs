//! A scripted trainee: drives the wire and the lead to a chosen site the way a competent
//! implanter would (roll set before each takeoff, fluoroscopy only while negotiating a
//! takeoff and to confirm the site, one injection to open and one to confirm, the lead
//! advanced with the wire ahead for support), and returns the timed script it played, so
//! that the same case can be replayed through `csnav train --script`.

use device_link::lead::LeadModel;
use serde::{Deserialize, Serialize};
use simulator::venous_tree::BranchId;

use crate::catheter::wrap_rad;
use crate::session::{Action, TrainingSession};
use crate::site::Candidate;

/// One timed action of a script.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Seconds from the start.
    pub t_s: f64,
    /// What is done.
    #[serde(flatten)]
    pub action: Action,
}

/// Where the trainee goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Goal {
    /// The lead to use.
    pub lead: LeadModel,
    /// The segment.
    pub branch: BranchId,
    /// Centerline index in it.
    pub index: usize,
}

impl Goal {
    /// A candidate site as a goal.
    #[must_use]
    pub fn of(c: &Candidate) -> Self {
        Self { lead: c.lead.model, branch: BranchId(c.eval.branch), index: c.index }
    }

    /// The best usable site.
    #[must_use]
    pub fn best(session: &TrainingSession) -> Self {
        Self::of(session.best_site())
    }

    /// The most apical position the first lead can be left at (the apical trap).
    #[must_use]
    pub fn apex(session: &TrainingSession) -> Option<Self> {
        let lead = session.scenario().leads[0].name();
        session
            .candidates()
            .iter()
            .filter(|c| c.usable() && c.eval.lead == lead && c.eval.apical)
            .max_by(|a, b| depth(session, a).total_cmp(&depth(session, b)))
            .map(Self::of)
    }

    /// The usable position with the most scar under the lead.
    #[must_use]
    pub fn scar(session: &TrainingSession) -> Option<Self> {
        session
            .candidates()
            .iter()
            .filter(|c| c.usable() && c.eval.scar > 0.3)
            .max_by(|a, b| a.eval.scar.total_cmp(&b.eval.scar))
            .map(Self::of)
    }
}

fn depth(session: &TrainingSession, c: &Candidate) -> f64 {
    session.patient().lv.coord_of(&nalgebra::Point3::from(c.eval.tip_in_patient_mm)).depth
}

/// Seconds per millimetre of wire and of lead, and per rotation.
const WIRE_S_PER_MM: f64 = 0.1;
const LEAD_S_PER_MM: f64 = 0.2;
const ROTATE_S: f64 = 0.5;

/// Plays the trainee to `goal` and finishes the case; returns the script it played.
pub fn drive(session: &mut TrainingSession, goal: Goal) -> Vec<Step> {
    let mut script = Vec::new();
    let mut t = 0.0;
    let mut act = |session: &mut TrainingSession, t: f64, action: Action| {
        script.push(Step { t_s: t, action });
        session.apply(t, action)
    };
    if session.catheter().lead().model != goal.lead {
        act(session, t, Action::ChangeLead { model: goal.lead });
        t += 5.0;
    }
    // Open with a look at the ostium.
    act(session, t, Action::Fluoro { on: true });
    act(session, t + 0.5, Action::Inject);
    t += 2.0;
    act(session, t, Action::Fluoro { on: false });

    let route = session.catheter().tree().lineage(goal.branch);
    let support = session.catheter().config().support_mm + 3.0;
    let mut fluoro = false;
    for _ in 0..2000 {
        let wire = session.catheter().wire_place();
        let past_goal = wire.branch == goal.branch && wire.index as f64 >= goal.index as f64 + support;
        if past_goal {
            break;
        }
        let ahead = session.catheter().takeoffs_ahead(1.5);
        let near_route_takeoff = session.catheter().takeoffs_ahead(6.0).iter().any(|a| route.contains(&a.branch));
        // Fluoroscopy while a takeoff on the route is being negotiated.
        if near_route_takeoff != fluoro {
            fluoro = near_route_takeoff;
            act(session, t, Action::Fluoro { on: fluoro });
        }
        if let Some(first) = ahead.first() {
            let desired = if let Some(into) = ahead.iter().find(|a| route.contains(&a.branch)) {
                into.roll_deg
            } else {
                let takeoff = session.catheter().tree().get(first.branch).and_then(|b| b.takeoff);
                takeoff.map_or(session.catheter().roll_deg(), |tk| {
                    session.catheter().roll_avoiding_deg(tk.parent, tk.index, None)
                })
            };
            let turn = wrap_rad((desired - session.catheter().roll_deg()).to_radians()).to_degrees();
            if turn.abs() > 1.0 {
                act(session, t, Action::Rotate { deg: turn });
                t += ROTATE_S;
            }
        }
        let feedback = act(session, t, Action::AdvanceWire { mm: 1.0 });
        t += WIRE_S_PER_MM;
        if session.catheter().wire_place().branch == goal.branch
            && feedback.iter().any(|f| f.text.starts_with("wire at the end"))
        {
            break;
        }
    }
    if fluoro {
        act(session, t, Action::Fluoro { on: false });
    }
    // The lead over the wire to the goal; when it stops, more wire for support, unless wedged.
    for _ in 0..2000 {
        let lead = session.catheter().lead_place();
        if lead.branch == goal.branch && lead.index >= goal.index {
            break;
        }
        let before = session.catheter().lead_s_mm();
        act(session, t, Action::AdvanceLead { mm: 1.0 });
        t += LEAD_S_PER_MM;
        if session.catheter().lead_s_mm() > before + 1e-9 {
            continue;
        }
        let wire_before = session.catheter().wire_s_mm();
        if session.catheter().lead_place().wedged {
            break;
        }
        act(session, t, Action::AdvanceWire { mm: 3.0 });
        t += 3.0 * WIRE_S_PER_MM;
        if session.catheter().wire_s_mm() <= wire_before + 1e-9 {
            break;
        }
    }
    // Confirm, test, leave the lead.
    act(session, t, Action::Fluoro { on: true });
    act(session, t + 0.5, Action::Inject);
    t += 3.0;
    act(session, t, Action::Fluoro { on: false });
    act(session, t, Action::TestSite);
    t += 30.0;
    act(session, t, Action::Finish);
    script
}
