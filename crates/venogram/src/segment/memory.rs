//! Process-wide allocator setting for following a cine: keep freed frame buffers.
//!
//! A 1024x1024 `f32` image is 4 MiB, above glibc's initial mmap threshold (128 KiB), so each
//! of the pipeline's frame-sized buffers (its own and OpenCV's) is mapped and unmapped once
//! per frame, and every one of its pages faults again on first touch: about 25,000 faults
//! per 1024 frame. The segmentation benchmark measured the whole pipeline on a 1024 frame
//! at 59-69 ms with the defaults and 44-48 ms with the buffers kept (2 cores, a VM). The
//! setting belongs to the process, so the binaries (the `csnav` CLI and app, the
//! benchmarks) call [`retain_freed_buffers`] once at start; the library never does.

/// Largest mmap threshold glibc accepts on 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 32 << 20;

/// Serves allocations up to 32 MiB from the heap and never trims freed memory back to the
/// kernel, so frame-sized buffers are reused from one frame to the next. Returns whether
/// the allocator took the setting (always `false` off glibc, where it does nothing).
#[must_use]
pub fn retain_freed_buffers() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(
        unsafe_code,
        reason = "mallopt is glibc's only interface to these settings; see the module doc's benchmark"
    )]
    {
        // SAFETY: mallopt only changes the allocator's tuning parameters; it is thread-safe
        // (it takes the arena locks) and takes no pointers.
        let threshold = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) };
        // SAFETY: as above.
        let trim = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) };
        threshold == 1 && trim == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
