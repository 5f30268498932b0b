//! C-arm views by their clinical names (`LAO30`, `RAO30`, `AP`, `LAO40CRA10`, `RAO30CAU5`):
//! positioner primary angle LAO positive, secondary cranial positive, as in DICOM.

use serde::Serialize;

/// A C-arm angulation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ViewAngles {
    /// Positioner primary angle, degrees, LAO positive.
    pub primary_deg: f64,
    /// Positioner secondary angle, degrees, cranial positive.
    pub secondary_deg: f64,
}

/// Why a view name could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewNameError(pub String);

impl std::fmt::Display for ViewNameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot read view {:?}: expected AP, LAO<deg> or RAO<deg>, optionally followed by CRA<deg> or CAU<deg> (e.g. LAO30, RAO30CAU10)",
            self.0
        )
    }
}

impl std::error::Error for ViewNameError {}

fn take_angle<'a>(text: &'a str, prefix: &str) -> Option<(f64, &'a str)> {
    let rest = text.strip_prefix(prefix)?;
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let value: f64 = rest[..end].parse().ok()?;
    Some((value, &rest[end..]))
}

impl std::str::FromStr for ViewAngles {
    type Err = ViewNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let upper = name.trim().to_ascii_uppercase();
        let error = || ViewNameError(name.to_owned());
        let (primary_deg, rest) = if let Some(rest) = upper.strip_prefix("AP") {
            (0.0, rest)
        } else if let Some((v, rest)) = take_angle(&upper, "LAO") {
            (v, rest)
        } else if let Some((v, rest)) = take_angle(&upper, "RAO") {
            (-v, rest)
        } else {
            return Err(error());
        };
        let (secondary_deg, rest) = if rest.is_empty() {
            (0.0, rest)
        } else if let Some((v, rest)) = take_angle(rest, "CRA") {
            (v, rest)
        } else if let Some((v, rest)) = take_angle(rest, "CAU") {
            (-v, rest)
        } else {
            return Err(error());
        };
        if !rest.is_empty() || primary_deg.abs() > 180.0 || secondary_deg.abs() > 90.0 {
            return Err(error());
        }
        Ok(Self { primary_deg, secondary_deg })
    }
}

impl std::fmt::Display for ViewAngles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.primary_deg;
        if p.abs() < 1e-9 {
            write!(f, "AP")?;
        } else {
            write!(f, "{}{}", if p > 0.0 { "LAO" } else { "RAO" }, p.abs())?;
        }
        let s = self.secondary_deg;
        if s.abs() > 1e-9 {
            write!(f, "{}{}", if s > 0.0 { "CRA" } else { "CAU" }, s.abs())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clinical_names_parse_and_print() {
        let v: ViewAngles = "LAO30".parse().unwrap();
        assert_eq!((v.primary_deg, v.secondary_deg), (30.0, 0.0));
        let v: ViewAngles = "rao30cau10".parse().unwrap();
        assert_eq!((v.primary_deg, v.secondary_deg), (-30.0, -10.0));
        assert_eq!(v.to_string(), "RAO30CAU10");
        assert_eq!("AP".parse::<ViewAngles>().unwrap().to_string(), "AP");
        assert!("LAX30".parse::<ViewAngles>().unwrap_err().to_string().contains("LAX30"));
        assert!("LAO200".parse::<ViewAngles>().is_err());
    }
}
