//! Wider vector instructions where the CPU has them, chosen at run time.
//!
//! The build targets baseline x86-64 (SSE2, four `f32` lanes) so that one binary runs on any
//! cath-lab PC. The per-pixel loops written by hand (the line detector, the Hessian's
//! eigenvalues, the scale competition) are plain element-wise arithmetic that the compiler
//! vectorises; compiled a second time with AVX2 enabled they run eight lanes at a time. The
//! same operations run in the same order in both builds, so the results are the same to the
//! bit (each module's tests check it). A caller runs a loop through [`avx2_or`], which calls
//! the loop's `_avx2` variant (`unsafe` to call only because the instructions must exist)
//! when [`has_avx2`] holds, and its baseline build otherwise.

/// `$avx2` (a call of an `#[target_feature(enable = "avx2")]` build) when [`has_avx2`]
/// holds, else `$baseline` (the same loop's baseline build); both of type `()`. The one place
/// that calls the AVX2 builds, so the check and the call cannot come apart.
macro_rules! avx2_or {
    ($avx2:expr, $baseline:expr $(,)?) => {{
        #[cfg(target_arch = "x86_64")]
        if $crate::segment::simd::has_avx2() {
            #[allow(unsafe_code, reason = "an AVX2 build of the same loop, called only on a CPU that has AVX2")]
            // SAFETY: `has_avx2()` found AVX2 on this CPU, the one feature the builds enable.
            unsafe {
                $avx2;
            }
        } else {
            $baseline;
        }
        #[cfg(not(target_arch = "x86_64"))]
        $baseline;
    }};
}
pub(crate) use avx2_or;

/// Whether to use the AVX2 builds: the CPU runs AVX2 (never off x86-64) and the environment
/// variable `CSNAV_NO_AVX2` is not set (for timing the baseline build, or to rule the wide
/// path out when investigating). Decided once per process.
#[must_use]
pub fn has_avx2() -> bool {
    static WIDE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WIDE.get_or_init(|| std::env::var_os("CSNAV_NO_AVX2").is_none() && cpu_has_avx2())
}

/// Whether this CPU runs AVX2.
fn cpu_has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// For the tests that compare a loop's two builds: whether this CPU runs AVX2, saying so
/// when it does not (the comparison is then skipped).
#[cfg(test)]
pub(crate) fn avx2_to_compare() -> bool {
    let has = cpu_has_avx2();
    if !has {
        eprintln!("this CPU has no AVX2: nothing to compare");
    }
    has
}
