//! ECG-gated roadmap: the heart moves the veins by several millimetres between systole and
//! diastole, so a live tip is drawn over the cine frame taken at the same cardiac phase
//! (and, when a respiration signal arrives too, the same breathing phase). Phases are
//! fractions of the cycle in [0, 1): the cardiac phase from the last R wave over the RR
//! interval, the respiratory phase from the last end-expiration.

/// Cardiac and respiratory phase of one cine frame or one tip sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Cardiac phase, fraction of the RR interval since the R wave, [0, 1).
    pub cardiac: f64,
    /// Respiratory phase, fraction of the breath, [0, 1); `None` when not measured.
    pub respiratory: Option<f64>,
}

/// Cyclic distance between two phases in [0, 1).
#[must_use]
pub fn cyclic_distance(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(1.0);
    d.min(1.0 - d)
}

/// Cardiac phase at `t_ms` from the R-wave times (ascending, ms): the fraction of the
/// current RR interval elapsed; past the last R wave the last interval is extrapolated.
/// `None` with fewer than two R waves or before the first.
#[must_use]
pub fn cardiac_phase(r_waves_ms: &[f64], t_ms: f64) -> Option<f64> {
    if r_waves_ms.len() < 2 || t_ms < r_waves_ms[0] {
        return None;
    }
    let i = r_waves_ms.partition_point(|r| *r <= t_ms).clamp(1, r_waves_ms.len() - 1);
    let (start, rr) = if t_ms >= r_waves_ms[r_waves_ms.len() - 1] {
        let n = r_waves_ms.len();
        (r_waves_ms[n - 1], r_waves_ms[n - 1] - r_waves_ms[n - 2])
    } else {
        (r_waves_ms[i - 1], r_waves_ms[i] - r_waves_ms[i - 1])
    };
    (rr > 0.0).then(|| ((t_ms - start) / rr).rem_euclid(1.0))
}

/// Weight of the respiratory phase against the cardiac one when both are known (the
/// respiratory excursion of the CS is comparable to the cardiac one, but a cine holds only
/// one or two breaths, so cardiac matching comes first).
const RESPIRATORY_WEIGHT: f64 = 0.5;

/// The cine frame whose phase best matches `now`: the nearest cardiac phase, with the
/// respiratory phase as a weighted second term when both sides have it. `None` for an
/// empty cine.
#[must_use]
pub fn gated_frame(frames: &[Phase], now: &Phase) -> Option<usize> {
    let cost = |f: &Phase| {
        let cardiac = cyclic_distance(f.cardiac, now.cardiac);
        let respiratory = match (f.respiratory, now.respiratory) {
            (Some(a), Some(b)) => RESPIRATORY_WEIGHT * cyclic_distance(a, b),
            _ => 0.0,
        };
        cardiac + respiratory
    };
    (0..frames.len()).min_by(|a, b| cost(&frames[*a]).total_cmp(&cost(&frames[*b])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_wrap_and_frames_match_by_phase() {
        assert!((cyclic_distance(0.95, 0.05) - 0.1).abs() < 1e-12);
        let r = [100.0, 900.0, 1700.0];
        assert_eq!(cardiac_phase(&r, 50.0), None);
        assert!((cardiac_phase(&r, 500.0).unwrap() - 0.5).abs() < 1e-12);
        assert!((cardiac_phase(&r, 1300.0).unwrap() - 0.5).abs() < 1e-12);
        // Past the last R wave, the last RR (800 ms) is extrapolated.
        assert!((cardiac_phase(&r, 1900.0).unwrap() - 0.25).abs() < 1e-12);
        // 15 frames over one beat: the frame at phase 0.93 is matched by a sample at 0.02
        // only if none is nearer; the one at 0.0 is.
        let frames: Vec<Phase> = (0..15).map(|i| Phase { cardiac: f64::from(i) / 15.0, respiratory: None }).collect();
        assert_eq!(gated_frame(&frames, &Phase { cardiac: 0.02, respiratory: None }), Some(0));
        assert_eq!(gated_frame(&frames, &Phase { cardiac: 0.98, respiratory: None }), Some(0));
        assert_eq!(gated_frame(&frames, &Phase { cardiac: 0.5, respiratory: None }), Some(7));
        // With respiration: two frames at one cardiac phase, different breaths.
        let frames = [
            Phase { cardiac: 0.3, respiratory: Some(0.1) },
            Phase { cardiac: 0.3, respiratory: Some(0.6) },
            Phase { cardiac: 0.8, respiratory: Some(0.6) },
        ];
        assert_eq!(gated_frame(&frames, &Phase { cardiac: 0.32, respiratory: Some(0.55) }), Some(1));
        assert_eq!(gated_frame(&[], &Phase { cardiac: 0.3, respiratory: None }), None);
    }
}
