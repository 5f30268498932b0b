//! A synthetic patient: one seed gives the LV surface, the venous tree on it, the motion and
//! the physiology, each from its own random stream so adding a feature to one does not
//! change the others.

use serde::Serialize;

use crate::heart::LvSurface;
use crate::motion::Motion;
use crate::physiology::Physiology;
use crate::rng::SimRng;
use crate::venous_tree::VenousTree;

/// Everything about one synthetic patient, in patient LPS coordinates (mm).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyntheticPatient {
    /// The seed it was generated from.
    pub seed: u64,
    /// The LV epicardium.
    pub lv: LvSurface,
    /// The coronary venous tree at end-diastole.
    pub tree: VenousTree,
    /// Cardiac and respiratory motion.
    pub motion: Motion,
    /// Activation, scar, phrenic nerve and tissue excitability.
    pub physiology: Physiology,
}

impl SyntheticPatient {
    /// Generates the patient for `seed` (deterministic).
    #[must_use]
    pub fn generate(seed: u64) -> Self {
        let lv = LvSurface::generate(&mut SimRng::new(seed, 1));
        let tree = VenousTree::generate(&lv, &mut SimRng::new(seed, 2));
        let motion = Motion::generate(&mut SimRng::new(seed, 3));
        let physiology = Physiology::generate(&lv, &mut SimRng::new(seed, 4));
        Self { seed, lv, tree, motion, physiology }
    }
}
