//! Quadripolar LV leads: their electrodes (distance from the tip along the lead) and the
//! pacing vectors a CRT system offers with them (research-device.md 4). Electrode gaps and
//! the exact vector sets the vendors do not publish are modelling assumptions, marked here
//! and in docs/device-link-protocol.md, each a value of this table, not scattered constants.

use serde::{Deserialize, Serialize};

/// A lead model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadModel {
    /// Medtronic Attain Performa (LV1 tip ... LV4), 16 vectors, 1.3 mm LV2-LV3 short bipole.
    AttainPerforma,
    /// Abbott Quartet 1458Q (D1, M2, M3, P4), 10 vectors.
    Quartet,
    /// Boston Scientific Acuity X4 (LV1 ... LV4), 17 vectors.
    AcuityX4,
}

/// One pole of a pacing vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pole {
    /// LV electrode `n` (0 = most distal).
    Lv(u8),
    /// The RV defibrillation coil (the common "extended bipolar" anode).
    RvCoil,
    /// The device can (unipolar).
    Can,
}

/// A pacing vector: cathode (where capture happens) to anode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Vector {
    /// Cathode: always an LV electrode.
    pub cathode: u8,
    /// Anode.
    pub anode: Pole,
}

impl LeadModel {
    /// Every model.
    pub const ALL: [Self; 3] = [Self::AttainPerforma, Self::Quartet, Self::AcuityX4];

    /// Electrode names, distal first.
    #[must_use]
    pub fn electrode_names(self) -> [&'static str; 4] {
        match self {
            Self::AttainPerforma | Self::AcuityX4 => ["LV1", "LV2", "LV3", "LV4"],
            Self::Quartet => ["D1", "M2", "M3", "P4"],
        }
    }

    /// Distance of each electrode from the tip electrode along the lead, mm. Performa: the
    /// 1.3 mm LV2-LV3 bipole is published, the ~21 mm gaps are not (assumed); Quartet
    /// 20/10/17 mm (unconfirmed); Acuity X4 spacing not found (assumed like Performa without
    /// the short bipole).
    #[must_use]
    pub fn electrode_offsets_mm(self) -> [f64; 4] {
        match self {
            Self::AttainPerforma => [0.0, 21.0, 22.3, 43.3],
            Self::Quartet => [0.0, 20.0, 30.0, 47.0],
            Self::AcuityX4 => [0.0, 21.0, 32.0, 43.0],
        }
    }

    /// The pacing vectors offered with this lead.
    ///
    /// Performa (16) and Acuity X4 (17): every LV cathode to each other LV electrode and to
    /// the RV coil (4 x 4 = 16), and for the Acuity X4 also LV1 to the can (the count is
    /// published, the set is assumed). Quartet (10): the published configuration list.
    #[must_use]
    pub fn vectors(self) -> Vec<Vector> {
        let v = |cathode: u8, anode: Pole| Vector { cathode, anode };
        match self {
            Self::AttainPerforma | Self::AcuityX4 => {
                let mut out = Vec::new();
                for cathode in 0..4 {
                    for anode in 0..4 {
                        if anode != cathode {
                            out.push(v(cathode, Pole::Lv(anode)));
                        }
                    }
                    out.push(v(cathode, Pole::RvCoil));
                }
                if self == Self::AcuityX4 {
                    out.push(v(0, Pole::Can));
                }
                out
            }
            Self::Quartet => vec![
                v(0, Pole::Lv(1)),
                v(0, Pole::Lv(3)),
                v(0, Pole::RvCoil),
                v(1, Pole::Lv(3)),
                v(1, Pole::RvCoil),
                v(2, Pole::Lv(1)),
                v(2, Pole::Lv(3)),
                v(2, Pole::RvCoil),
                v(3, Pole::Lv(1)),
                v(3, Pole::RvCoil),
            ],
        }
    }

    /// A vector's name as programmers print it, e.g. `LV2-LV3`, `D1-RV coil`.
    #[must_use]
    pub fn vector_name(self, vector: Vector) -> String {
        let names = self.electrode_names();
        let pole = |p: Pole| match p {
            Pole::Lv(n) => names.get(usize::from(n)).copied().unwrap_or("?").to_owned(),
            Pole::RvCoil => "RV coil".to_owned(),
            Pole::Can => "Can".to_owned(),
        };
        format!("{}-{}", pole(Pole::Lv(vector.cathode)), pole(vector.anode))
    }
}

/// The electrode positions of `lead` whose tip is at `path_from_tip[0]` and whose body lies
/// along `path_from_tip` (points from the tip back toward the ostium, e.g. the vein's
/// centerline): electrode k at its offset of arc length along the path. `None` when the path
/// is shorter than the lead's span.
#[must_use]
pub fn electrodes_along(lead: LeadModel, path_from_tip: &[[f64; 3]]) -> Option<[[f64; 3]; 4]> {
    let offsets = lead.electrode_offsets_mm();
    let mut out = [[0.0; 3]; 4];
    let mut walked = 0.0;
    let mut k = 0;
    for w in path_from_tip.windows(2) {
        let (a, b) = (w[0], w[1]);
        let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2) + (b[2] - a[2]).powi(2)).sqrt();
        while k < 4 && offsets[k] <= walked + len {
            let t = if len > 0.0 { (offsets[k] - walked) / len } else { 0.0 };
            out[k] = [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]), a[2] + t * (b[2] - a[2])];
            k += 1;
        }
        walked += len;
    }
    (k == 4).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_counts_match_the_published_ones_and_all_are_distinct() {
        for (lead, count) in [(LeadModel::AttainPerforma, 16), (LeadModel::Quartet, 10), (LeadModel::AcuityX4, 17)] {
            let v = lead.vectors();
            assert_eq!(v.len(), count, "{lead:?}");
            let mut sorted = v.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), count, "{lead:?} repeats a vector");
            assert!(v.iter().all(|x| x.cathode < 4 && x.anode != Pole::Lv(x.cathode)));
        }
        assert_eq!(LeadModel::Quartet.vector_name(LeadModel::Quartet.vectors()[2]), "D1-RV coil");
        let offsets = LeadModel::AttainPerforma.electrode_offsets_mm();
        assert!((offsets[2] - offsets[1] - 1.3).abs() < 1e-9, "Performa's short bipole");
    }

    #[test]
    fn electrodes_sit_at_their_offsets_along_the_path() {
        let path: Vec<[f64; 3]> = (0..=60).map(|i| [f64::from(i), 0.0, 0.0]).collect();
        let e = electrodes_along(LeadModel::Quartet, &path).unwrap();
        for (p, x) in e.iter().zip([0.0, 20.0, 30.0, 47.0]) {
            assert!((p[0] - x).abs() < 1e-12 && p[1].abs() < 1e-12, "{p:?} vs {x}");
        }
        assert!(electrodes_along(LeadModel::Quartet, &path[..40]).is_none());
    }
}
