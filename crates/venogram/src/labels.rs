//! The anatomical vocabulary of the coronary venous tree (research-imaging.md 4.1), shared
//! by segmentation, the simulator's ground truth and the app so a label means one thing.

use serde::{Deserialize, Serialize};

/// Anatomical label of a coronary vein segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum VeinLabel {
    /// Coronary sinus: ostium in the right atrium to the vein of Marshall, posterior AV groove.
    CoronarySinus,
    /// Great cardiac vein: the AV-groove continuation of the CS up to the anterior groove.
    GreatCardiacVein,
    /// Anterior interventricular vein: down the anterior interventricular groove.
    AnteriorInterventricularVein,
    /// Middle cardiac vein: the posterior interventricular vein, joining next to the ostium.
    MiddleCardiacVein,
    /// Posterolateral (inferolateral) vein of the LV.
    PosterolateralVein,
    /// Lateral (left, obtuse) marginal vein.
    LateralMarginalVein,
    /// Anterolateral vein, often draining into the GCV or AIV.
    AnterolateralVein,
    /// A smaller side branch not named anatomically (or a branch the labeller is unsure of).
    Branch,
}

impl VeinLabel {
    /// Every label, the named veins from the ostium outward, then `Branch` (legend order).
    pub const ALL: [Self; 8] = [
        Self::CoronarySinus,
        Self::GreatCardiacVein,
        Self::AnteriorInterventricularVein,
        Self::MiddleCardiacVein,
        Self::PosterolateralVein,
        Self::LateralMarginalVein,
        Self::AnterolateralVein,
        Self::Branch,
    ];

    /// The label with this abbreviation (case-insensitive), e.g. `PLV`.
    #[must_use]
    pub fn from_abbreviation(abbreviation: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.abbreviation().eq_ignore_ascii_case(abbreviation.trim()))
    }

    /// The abbreviation implanters use (`CS`, `GCV`, `AIV`, `MCV`, `PLV`, `LMV`, `ALV`, `branch`).
    #[must_use]
    pub fn abbreviation(self) -> &'static str {
        match self {
            Self::CoronarySinus => "CS",
            Self::GreatCardiacVein => "GCV",
            Self::AnteriorInterventricularVein => "AIV",
            Self::MiddleCardiacVein => "MCV",
            Self::PosterolateralVein => "PLV",
            Self::LateralMarginalVein => "LMV",
            Self::AnterolateralVein => "ALV",
            Self::Branch => "branch",
        }
    }

    /// The vein's name in words (`Posterolateral vein`), for reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::CoronarySinus => "Coronary sinus",
            Self::GreatCardiacVein => "Great cardiac vein",
            Self::AnteriorInterventricularVein => "Anterior interventricular vein",
            Self::MiddleCardiacVein => "Middle cardiac vein",
            Self::PosterolateralVein => "Posterolateral vein",
            Self::LateralMarginalVein => "Lateral marginal vein",
            Self::AnterolateralVein => "Anterolateral vein",
            Self::Branch => "Unnamed coronary vein branch",
        }
    }

    /// The label's display colour, sRGB: one palette for the app's views and lists, the
    /// overlay pictures and the recordings. Chosen to stay apart from each other, from the
    /// grey of a venogram and from the magenta of a tracked tip.
    #[must_use]
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Self::CoronarySinus => [255, 140, 30],
            Self::GreatCardiacVein => [235, 210, 50],
            Self::AnteriorInterventricularVein => [70, 130, 255],
            Self::MiddleCardiacVein => [165, 95, 255],
            Self::PosterolateralVein => [40, 215, 90],
            Self::LateralMarginalVein => [30, 205, 230],
            Self::AnterolateralVein => [255, 100, 170],
            Self::Branch => [190, 190, 190],
        }
    }

    /// The display colour of a label given by abbreviation ([`Self::rgb`]; grey when unknown).
    #[must_use]
    pub fn rgb_of(abbreviation: &str) -> [u8; 3] {
        Self::from_abbreviation(abbreviation).unwrap_or(Self::Branch).rgb()
    }

    /// Whether a tree holds at most one segment with this label (the AV-groove trunk and MCV).
    #[must_use]
    pub fn is_unique(self) -> bool {
        matches!(
            self,
            Self::CoronarySinus | Self::GreatCardiacVein | Self::AnteriorInterventricularVein | Self::MiddleCardiacVein
        )
    }

    /// Whether this vein is a usual target for an LV lead (the lateral-wall tributaries).
    #[must_use]
    pub fn is_lv_lead_target(self) -> bool {
        matches!(self, Self::PosterolateralVein | Self::LateralMarginalVein | Self::AnterolateralVein)
    }
}

impl std::fmt::Display for VeinLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.abbreviation())
    }
}
