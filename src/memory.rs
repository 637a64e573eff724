//! How the proxy asks glibc's allocator to treat the large buffers of big activations.
//!
//! By default glibc hands every allocation over 128 KiB straight to the kernel (`mmap`) and
//! returns it on `free`: a 1 MiB activation then costs hundreds of fresh page faults for the
//! request body, the answer and the response, each time. Keeping such buffers in the heap, and
//! keeping a few MiB of freed heap instead of trimming it at once, makes those pages warm for
//! the next activation. The ceilings keep the idle proxy small all the same.

/// Allocations below this come from the heap and are reused.
const MMAP_THRESHOLD: i32 = 8 * 1024 * 1024;
/// Free heap kept before it is given back to the kernel.
const TRIM_THRESHOLD: i32 = 16 * 1024 * 1024;

/// The same settings for a child process, in glibc's own words (`GLIBC_TUNABLES`).
pub fn glibc_tunables() -> String {
    format!(
        "glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:glibc.malloc.trim_threshold={TRIM_THRESHOLD}"
    )
}

/// Applies the settings above; a no-op where the C library is not glibc.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes two tunables of the allocator; it is called once at start,
    // before the runtime spawns any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
