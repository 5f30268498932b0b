//! OpenIGTLink time stamps: seconds since 1970-01-01 UTC in the upper 32 bits, the fraction
//! of a second in units of 2^-32 s in the lower 32 (OpenIGTLink `timestamp.md`). The
//! conversions between nanoseconds and the fraction are the reference library's
//! successive-approximation routines (`igtl_util.c`), so our bytes equal theirs.

/// An OpenIGTLink time stamp; zero means "not set".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Whole seconds since the Unix epoch.
    pub seconds: u32,
    /// Fraction of a second, units of 2^-32 s.
    pub fraction: u32,
}

impl Timestamp {
    /// The unset time stamp.
    pub const ZERO: Self = Self { seconds: 0, fraction: 0 };

    /// From the 64-bit header field.
    #[must_use]
    pub fn from_bits(bits: u64) -> Self {
        Self { seconds: (bits >> 32) as u32, fraction: bits as u32 }
    }

    /// The 64-bit header field.
    #[must_use]
    pub fn to_bits(self) -> u64 {
        (u64::from(self.seconds) << 32) | u64::from(self.fraction)
    }

    /// From seconds since the epoch, as pyigtl does (`sec = int(t)`, fraction from the
    /// nanoseconds of the remainder). Negative or non-finite input gives [`Self::ZERO`].
    #[must_use]
    pub fn from_secs_f64(t: f64) -> Self {
        if !t.is_finite() || t < 0.0 || t >= f64::from(u32::MAX) + 1.0 {
            return Self::ZERO;
        }
        let seconds = t.trunc();
        let nanos = ((t - seconds) * 1e9) as u32;
        Self { seconds: seconds as u32, fraction: nanosec_to_fraction(nanos) }
    }

    /// Seconds since the epoch.
    #[must_use]
    pub fn as_secs_f64(self) -> f64 {
        f64::from(self.seconds) + f64::from(fraction_to_nanosec(self.fraction)) * 1e-9
    }
}

/// `igtl_nanosec_to_frac`: nanoseconds (below 1e9) to a 2^-32 s fraction.
#[must_use]
pub fn nanosec_to_fraction(mut nanosec: u32) -> u32 {
    let mut base: u32 = 1_000_000_000;
    if nanosec >= base {
        return 0;
    }
    let mut mask: u32 = 0x8000_0000;
    let mut r = 0;
    while mask != 0 {
        base = (base + 1) >> 1;
        if nanosec >= base {
            r |= mask;
            nanosec -= base;
        }
        mask >>= 1;
    }
    r
}

/// `igtl_frac_to_nanosec`: a 2^-32 s fraction to nanoseconds.
#[must_use]
pub fn fraction_to_nanosec(fraction: u32) -> u32 {
    let mut base: u32 = 1_000_000_000;
    let mut mask: u32 = 0x8000_0000;
    let mut r: u32 = 0;
    while mask != 0 {
        base = (base + 1) >> 1;
        if fraction & mask != 0 {
            r += base;
        }
        mask >>= 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pyigtl's 1.5 s is seconds 1, fraction 0x80000000 (research note 3.5).
    #[test]
    fn one_and_a_half_seconds_matches_pyigtl() {
        let t = Timestamp::from_secs_f64(1.5);
        assert_eq!(t, Timestamp { seconds: 1, fraction: 0x8000_0000 });
        assert_eq!(t.to_bits(), 0x0000_0001_8000_0000);
        assert!((t.as_secs_f64() - 1.5).abs() < 1e-9);
    }

    /// The fraction round-trips to within a nanosecond or two and is monotonic.
    #[test]
    fn fractions_round_trip() {
        let mut last = 0;
        for nanos in (0..1_000_000_000u32).step_by(9_999_991) {
            let f = nanosec_to_fraction(nanos);
            assert!(f >= last);
            last = f;
            let back = fraction_to_nanosec(f);
            assert!(nanos.abs_diff(back) <= 2, "{nanos} -> {f} -> {back}");
        }
        assert_eq!(nanosec_to_fraction(1_000_000_000), 0);
        assert_eq!(Timestamp::from_secs_f64(-1.0), Timestamp::ZERO);
        assert_eq!(Timestamp::from_secs_f64(f64::NAN), Timestamp::ZERO);
    }
}
