//! Typed access to the attributes of a parsed data set: one place that turns dicom-rs values
//! into `Option`s and numbers, and names the attribute (keyword and tag) when one is malformed.

use dicom_core::Tag;
use dicom_object::InMemDicomObject;

/// A data element csnav reads, by keyword and tag, for lookups and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attribute {
    /// The DICOM keyword, e.g. `PositionerPrimaryAngle`.
    pub keyword: &'static str,
    /// The tag.
    pub tag: Tag,
}

impl std::fmt::Display for Attribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:04X},{:04X})", self.keyword, self.tag.group(), self.tag.element())
    }
}

macro_rules! attributes {
    ($($name:ident = $keyword:literal ($group:literal, $element:literal);)*) => {
        $(
            #[doc = concat!("The `", $keyword, "` attribute.")]
            pub(crate) const $name: Attribute = Attribute { keyword: $keyword, tag: Tag($group, $element) };
        )*
    };
}

attributes! {
    SOP_CLASS_UID = "SOPClassUID" (0x0008, 0x0016);
    SOP_INSTANCE_UID = "SOPInstanceUID" (0x0008, 0x0018);
    MODALITY = "Modality" (0x0008, 0x0060);
    STUDY_INSTANCE_UID = "StudyInstanceUID" (0x0020, 0x000D);
    SERIES_INSTANCE_UID = "SeriesInstanceUID" (0x0020, 0x000E);
    CINE_RATE = "CineRate" (0x0018, 0x0040);
    DISTANCE_SOURCE_TO_DETECTOR = "DistanceSourceToDetector" (0x0018, 0x1110);
    DISTANCE_SOURCE_TO_PATIENT = "DistanceSourceToPatient" (0x0018, 0x1111);
    ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR = "EstimatedRadiographicMagnificationFactor" (0x0018, 0x1114);
    IMAGER_PIXEL_SPACING = "ImagerPixelSpacing" (0x0018, 0x1164);
    FRAME_TIME = "FrameTime" (0x0018, 0x1063);
    FRAME_TIME_VECTOR = "FrameTimeVector" (0x0018, 0x1065);
    FRAME_DELAY = "FrameDelay" (0x0018, 0x1066);
    HEART_RATE = "HeartRate" (0x0018, 0x1088);
    POSITIONER_MOTION = "PositionerMotion" (0x0018, 0x1500);
    POSITIONER_PRIMARY_ANGLE = "PositionerPrimaryAngle" (0x0018, 0x1510);
    POSITIONER_SECONDARY_ANGLE = "PositionerSecondaryAngle" (0x0018, 0x1511);
    RECOMMENDED_DISPLAY_FRAME_RATE = "RecommendedDisplayFrameRate" (0x0008, 0x2144);
    SAMPLES_PER_PIXEL = "SamplesPerPixel" (0x0028, 0x0002);
    PHOTOMETRIC_INTERPRETATION = "PhotometricInterpretation" (0x0028, 0x0004);
    NUMBER_OF_FRAMES = "NumberOfFrames" (0x0028, 0x0008);
    ROWS = "Rows" (0x0028, 0x0010);
    COLUMNS = "Columns" (0x0028, 0x0011);
    PIXEL_SPACING = "PixelSpacing" (0x0028, 0x0030);
    BITS_ALLOCATED = "BitsAllocated" (0x0028, 0x0100);
    BITS_STORED = "BitsStored" (0x0028, 0x0101);
    HIGH_BIT = "HighBit" (0x0028, 0x0102);
    PIXEL_REPRESENTATION = "PixelRepresentation" (0x0028, 0x0103);
    WINDOW_CENTER = "WindowCenter" (0x0028, 0x1050);
    WINDOW_WIDTH = "WindowWidth" (0x0028, 0x1051);
    RESCALE_INTERCEPT = "RescaleIntercept" (0x0028, 0x1052);
    RESCALE_SLOPE = "RescaleSlope" (0x0028, 0x1053);
    WINDOW_CENTER_WIDTH_EXPLANATION = "WindowCenterWidthExplanation" (0x0028, 0x1055);
    R_WAVE_POINTER = "RWavePointer" (0x0028, 0x6040);
    PIXEL_INTENSITY_RELATIONSHIP = "PixelIntensityRelationship" (0x0028, 0x1040);
    LOSSY_IMAGE_COMPRESSION = "LossyImageCompression" (0x0028, 0x2110);
    LOSSY_IMAGE_COMPRESSION_RATIO = "LossyImageCompressionRatio" (0x0028, 0x2112);
    LOSSY_IMAGE_COMPRESSION_METHOD = "LossyImageCompressionMethod" (0x0028, 0x2114);
    PIXEL_DATA = "PixelData" (0x7FE0, 0x0010);
}

/// Why an attribute could not be read as the type csnav needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttributeProblem {
    /// The attribute.
    pub attribute: Attribute,
    /// What was wrong with it.
    pub reason: String,
}

/// Reads attributes of one data set.
pub(crate) struct Attributes<'a> {
    obj: &'a InMemDicomObject,
}

impl<'a> Attributes<'a> {
    /// Wraps a data set.
    pub(crate) fn new(obj: &'a InMemDicomObject) -> Self {
        Self { obj }
    }

    /// Whether the element is present (even if empty).
    pub(crate) fn has(&self, attribute: Attribute) -> bool {
        matches!(self.obj.element_opt(attribute.tag), Ok(Some(_)))
    }

    fn element(&self, attribute: Attribute) -> Option<&'a dicom_object::mem::InMemElement> {
        self.obj.element_opt(attribute.tag).ok().flatten()
    }

    /// A string value, trimmed of padding; `None` when absent or empty.
    pub(crate) fn string(&self, attribute: Attribute) -> Option<String> {
        let text = self.element(attribute)?.to_str().ok()?;
        let trimmed = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }

    fn is_empty(element: &dicom_object::mem::InMemElement) -> bool {
        element.to_str().is_ok_and(|s| s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).is_empty())
    }

    /// All numeric values (DS, IS, FL, FD, US, ...); `Ok(None)` when absent or empty.
    pub(crate) fn floats(&self, attribute: Attribute) -> Result<Option<Vec<f64>>, AttributeProblem> {
        let Some(element) = self.element(attribute) else { return Ok(None) };
        if Self::is_empty(element) {
            return Ok(None);
        }
        let values = element
            .to_multi_float64()
            .map_err(|e| AttributeProblem { attribute, reason: format!("not a number: {e}") })?;
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(AttributeProblem { attribute, reason: format!("value {bad} is not finite") });
        }
        Ok((!values.is_empty()).then_some(values))
    }

    /// The first numeric value; `Ok(None)` when absent or empty.
    pub(crate) fn float(&self, attribute: Attribute) -> Result<Option<f64>, AttributeProblem> {
        Ok(self.floats(attribute)?.and_then(|v| v.first().copied()))
    }

    /// Exactly two numeric values (a row\column pair); `Ok(None)` when absent or empty.
    pub(crate) fn pair(&self, attribute: Attribute) -> Result<Option<[f64; 2]>, AttributeProblem> {
        match self.floats(attribute)? {
            None => Ok(None),
            Some(v) if v.len() == 2 => Ok(Some([v[0], v[1]])),
            Some(v) => Err(AttributeProblem { attribute, reason: format!("expected 2 values, found {}", v.len()) }),
        }
    }

    /// All integer values; `Ok(None)` when absent or empty.
    pub(crate) fn integers(&self, attribute: Attribute) -> Result<Option<Vec<i64>>, AttributeProblem> {
        let Some(element) = self.element(attribute) else { return Ok(None) };
        if Self::is_empty(element) {
            return Ok(None);
        }
        let values = element
            .to_multi_int::<i64>()
            .map_err(|e| AttributeProblem { attribute, reason: format!("not an integer: {e}") })?;
        Ok((!values.is_empty()).then_some(values))
    }

    /// The first integer value, checked to fit `T`; `Ok(None)` when absent or empty.
    pub(crate) fn integer<T: TryFrom<i64>>(&self, attribute: Attribute) -> Result<Option<T>, AttributeProblem> {
        let Some(value) = self.integers(attribute)?.and_then(|v| v.first().copied()) else {
            return Ok(None);
        };
        T::try_from(value)
            .map(Some)
            .map_err(|_| AttributeProblem { attribute, reason: format!("value {value} is out of range") })
    }

    /// A required integer attribute.
    pub(crate) fn required_integer<T: TryFrom<i64>>(&self, attribute: Attribute) -> Result<T, AttributeProblem> {
        self.integer(attribute)?.ok_or_else(|| AttributeProblem { attribute, reason: "is missing or empty".to_owned() })
    }
}
