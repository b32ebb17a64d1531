//! Giving freed memory back to the operating system between the audit's phases.
//!
//! Listing a bucket keeps dozens of pages in flight, each a few hundred kilobytes of XML and
//! parsed keys, on the runtime's worker threads; glibc gives each thread its own arena and keeps
//! what those pages freed for later use by the same arena. The analysis that follows runs
//! elsewhere and grows the heap anew, so at a million keys the freed listing buffers would add
//! about ten megabytes to the peak. `malloc_trim(0)` returns free pages of every arena. With
//! other C libraries or allocators this does nothing.

/// Return free heap pages to the operating system, where the allocator allows it.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions: it only walks glibc's own arenas under their
    // locks and releases pages that hold no allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
