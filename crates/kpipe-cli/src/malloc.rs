//! glibc's allocator set up for what `kpipe` does: a pull of a few large buffers at a time
//! (response bodies, metric batches, encoded pages) on several threads, then the KPI stage.
//!
//! With glibc's defaults, the threshold above which a block gets its own mapping rises to the
//! size of the largest such block freed (up to 32 MiB): after the first batch or response body
//! is freed, the next ones come from the arenas, where the holes they leave keep the resident
//! memory far above what is in use; and every thread that allocates gets an arena of its own,
//! whose free space the other threads do not reuse. Measured with `cargo xtask bench` (memory-10m
//! scenario, 9.8M rows): peak RSS 161-199 MiB with the defaults, 107 MiB with a fixed threshold of
//! 1 MiB and two arenas, for about 7% more CPU time (docs/benchmarks.md).
//!
//! A setting given in the environment (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_ARENA_MAX`, or any
//! `glibc.malloc` tunable in `GLIBC_TUNABLES`) is left as the user set it.

/// Blocks of at least this size get their own mapping, returned to the system when freed.
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Arenas at most, whatever the number of threads.
const ARENA_MAX: i32 = 2;

/// Applies the settings; called first thing in `main`, before any other thread exists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune() {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if tunables.contains("glibc.malloc.") {
        return;
    }
    for (variable, parameter, value) in [
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, ARENA_MAX),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: `mallopt` only changes parameters of the allocator, which glibc guards
            // with its own lock; it is called before `main` starts any thread. A refused value
            // (return 0) leaves glibc's default, which is correct, only larger.
            unsafe {
                libc::mallopt(parameter, value);
            }
        }
    }
}

/// Other C libraries and allocators keep their defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}

/// Hands the free memory of glibc's arenas back to the system. glibc returns only the free
/// space at the top of an arena by itself; what a finished stage freed inside the arenas (a
/// source's writer and its batches) stays resident, and the next stage's peak adds to it
/// rather than reusing it. Called after each source's commit and before the KPI stage: on the
/// memory-10m scenario of `kpipe-bench`, 30-60 MiB of free arena space was resident during
/// the KPI stage without it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() {
    // SAFETY: `malloc_trim` takes each arena's lock while it releases that arena's free pages,
    // as any allocation would, and touches no memory in use: it may be called from any thread
    // at any time. Its result only says whether anything was released.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other C libraries and allocators return memory in their own way.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}
