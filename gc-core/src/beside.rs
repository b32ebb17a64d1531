//! Two pieces of work at once: one on a scoped thread, one on the caller's.
//!
//! The audit's heavy steps that split in two (the GC models beside the analysis, the
//! repositories of a settle round, the largest report file beside the others) use this one
//! mechanism, so that each behaves the same when no thread can start and when one panics.

/// `there()` on a scoped thread named `name` while `here()` runs on the caller's thread; both
/// results, `there`'s first.
///
/// When no thread starts, `there()` runs on the caller's thread after `here()` (so it is `Fn`:
/// it may be called where the thread would have called it). A panic of `there` is the
/// caller's, as it would have been inline.
pub fn beside<T: Send, U>(
    name: &str,
    there: impl Fn() -> T + Sync,
    here: impl FnOnce() -> U,
) -> (T, U) {
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name(name.to_string())
            .spawn_scoped(scope, &there)
            .ok();
        let here = here();
        let there = match helper.map(std::thread::ScopedJoinHandle::join) {
            Some(Ok(value)) => value,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => there(),
        };
        (there, here)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_results_come_back_and_a_panic_there_is_the_callers() {
        let (there, here) = beside("gc-audit-test", || 6 * 7, || "here");
        assert_eq!((there, here), (42, "here"));
        let caught = std::panic::catch_unwind(|| beside("gc-audit-test", || panic!("there"), || 1));
        let panic = caught.expect_err("the helper's panic reaches the caller");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"there"));
    }
}
