//! Links, tags and manifests caught while the registry writes them.
//!
//! The filesystem driver writes a link in place: it opens the file with `O_CREATE`, truncates
//! it, then writes the digest. A push rewrites the links it goes through even when they exist
//! already (a tag moved back onto a manifest rewrites that manifest's revision link, a blob
//! uploaded again rewrites its `_layers` link), and two pushes of one manifest both write its
//! data, so a read can find a healthy link or manifest empty or cut short. Such a read proves
//! nothing: the key is read again, spaced out by [`PAUSES`], until a read finds it whole or
//! finds something that is not a cut-short write, or the pauses run out; only then does what
//! it holds count.

use std::collections::HashMap;
use std::time::Duration;

/// The pauses before the rereads of a key whose reads keep finding it cut short. A bad link or
/// tag is read again once without a pause first (every bad one is); a manifest's first reread
/// takes the first pause. A key still cut short after these is reported as it is: a registry
/// writes a link or a manifest in microseconds.
pub(super) const PAUSES: [Duration; 4] = [
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_millis(800),
];

/// Whether `content` can be a digest being written: empty, or a proper prefix of `expected`
/// when the path names the digest, else of a digest of an algorithm the registry writes.
pub(super) fn looks_cut_short(content: &[u8], expected: Option<&[u8]>) -> bool {
    if content.is_empty() {
        return true;
    }
    if let Some(full) = expected {
        return content.len() < full.len() && full.starts_with(content);
    }
    let Some(colon) = content.iter().position(|&b| b == b':') else {
        return DIGEST_HEX_LENGTHS
            .iter()
            .any(|(algorithm, _)| algorithm.as_bytes().starts_with(content));
    };
    let (algorithm, hex) = (&content[..colon], &content[colon + 1..]);
    DIGEST_HEX_LENGTHS.iter().any(|(name, len)| {
        name.as_bytes() == algorithm
            && hex.len() < *len
            && hex
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    })
}

/// The digest algorithms a registry writes, with the length of their hex.
const DIGEST_HEX_LENGTHS: [(&str, usize); 3] = [("sha256", 64), ("sha384", 96), ("sha512", 128)];

/// The keys whose last read looked cut short, with how many times each was read again
/// because of that.
#[derive(Debug, Default)]
pub(super) struct CutShort {
    keys: HashMap<String, CutShortKey>,
    /// The longest pause of the rereads taken since [`CutShort::take_round_pause`].
    round_pause: Duration,
}

#[derive(Debug, Default)]
struct CutShortKey {
    last_read_cut_short: bool,
    rereads: usize,
}

impl CutShort {
    /// Record what a read of `key` found.
    pub(super) fn record(&mut self, key: &str, cut_short: bool) {
        if cut_short {
            self.keys
                .entry(key.to_string())
                .or_default()
                .last_read_cut_short = true;
        } else if let Some(k) = self.keys.get_mut(key) {
            k.last_read_cut_short = false;
        }
    }

    /// If `key`'s last read looked cut short and its pauses are not used up, count one more
    /// reread of it, keep its pause for the round, and return true.
    pub(super) fn take_reread(&mut self, key: &str) -> bool {
        let Some(k) = self.keys.get_mut(key) else {
            return false;
        };
        let Some(&pause) = PAUSES.get(k.rereads).filter(|_| k.last_read_cut_short) else {
            return false;
        };
        k.rereads += 1;
        k.last_read_cut_short = false;
        self.round_pause = self.round_pause.max(pause);
        true
    }

    /// The pause to take before the rereads taken since the last call: the longest of theirs.
    pub(super) fn take_round_pause(&mut self) -> Duration {
        std::mem::take(&mut self.round_pause)
    }
}

/// Wait `d` without a runtime's timer (the audit runs on any executor): a thread sleeps and
/// wakes it. Rare: only a round with a key caught cut short again pauses.
pub(super) async fn pause(d: Duration) {
    if d.is_zero() {
        return;
    }
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("gc-audit-pause".into())
        .spawn(move || {
            std::thread::sleep(d);
            let _ = tx.send(());
        });
    if spawned.is_ok() {
        let _ = rx.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &[u8] = b"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn cut_short_is_empty_or_a_proper_prefix() {
        assert!(looks_cut_short(b"", Some(D)));
        assert!(looks_cut_short(&D[..10], Some(D)));
        assert!(!looks_cut_short(D, Some(D)));
        assert!(!looks_cut_short(b"sha256:00", Some(D)));
        assert!(!looks_cut_short(b"garbage", Some(D)));
        // A tag's link names no digest in its path: any digest-shaped prefix.
        assert!(looks_cut_short(b"", None));
        assert!(looks_cut_short(b"sha2", None));
        assert!(looks_cut_short(b"sha256:0a", None));
        assert!(!looks_cut_short(D, None));
        assert!(!looks_cut_short(b"sha256:zz", None));
        assert!(!looks_cut_short(b"<html>", None));
        assert!(!looks_cut_short(b"SHA256", None));
        assert!(!looks_cut_short(b"md5:00", None));
        assert!(!looks_cut_short(b"sha256:0A", None));
    }

    #[test]
    fn rereads_stop_when_a_read_is_whole_or_the_pauses_run_out() {
        let mut c = CutShort::default();
        assert!(!c.take_reread("k"));
        c.record("k", false);
        assert!(!c.take_reread("k"));
        c.record("k", true);
        assert!(c.take_reread("k"));
        assert_eq!(c.take_round_pause(), PAUSES[0]);
        assert_eq!(c.take_round_pause(), Duration::ZERO);
        // Not read since: nothing to reread.
        assert!(!c.take_reread("k"));
        c.record("k", false);
        assert!(!c.take_reread("k"));
        for pause in &PAUSES[1..] {
            c.record("k", true);
            assert!(c.take_reread("k"));
            assert_eq!(c.take_round_pause(), *pause);
        }
        c.record("k", true);
        assert!(!c.take_reread("k"));
        // A round's pause is the longest of its rereads.
        c.record("a", true);
        c.record("b", true);
        assert!(c.take_reread("a") && !c.take_reread("a"));
        c.record("a", true);
        assert!(c.take_reread("a") && c.take_reread("b"));
        assert_eq!(c.take_round_pause(), PAUSES[1]);
    }

    #[test]
    fn pause_waits() {
        let t = std::time::Instant::now();
        futures::executor::block_on(pause(Duration::from_millis(20)));
        assert!(t.elapsed() >= Duration::from_millis(20));
    }
}
