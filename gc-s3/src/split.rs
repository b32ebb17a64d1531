//! Where to split a key range: extrapolating the density of keys already listed.
//!
//! Keys are mapped to numbers in `[0, 1)` relative to a base prefix (the common prefix of the
//! first and last key a range has seen, widened to the start of that path segment when the
//! keys differ early in it). Digits are hex when the keys are hex there (digests: blob
//! directories, `_layers/sha256/<hex>`), and otherwise the 40 characters of repository names
//! and layout directories (`-./0-9_a-z`; other bytes count as the next character of that
//! alphabet), so that no estimate lands in the empty space of upper case or punctuation. A range
//! that has seen `c` keys between `first` and `last` is assumed to go on at the same density,
//! so the key `pages × 1000` keys further lies at `last + pages × 1000 × (last − first) / c`.
//! Beyond the base prefix's subtree nothing is known: the boundary there is the prefix's
//! successor, and it is always one of the points when it lies in the range, so that the
//! unknown rest gets a range of its own early. Every returned point lies strictly between `last` and the range's upper bound,
//! so a split is always correct; the density only decides whether it is useful.

/// Keys per S3 listing page.
pub(crate) const PAGE: f64 = 1000.0;

const HEX_DIGITS: usize = 13; // 16^13 = 2^52: exact in an f64
const NAME_DIGITS: usize = 9; // 41^9 < 2^53

/// Characters of repository names and layout directories, in byte order.
const NAME_ALPHABET: &[u8] = b"-./0123456789_abcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alphabet {
    Hex,
    Name,
}

impl Alphabet {
    fn radix(self) -> f64 {
        match self {
            Alphabet::Hex => 16.0,
            Alphabet::Name => (NAME_ALPHABET.len() + 1) as f64,
        }
    }

    fn digits(self) -> usize {
        match self {
            Alphabet::Hex => HEX_DIGITS,
            Alphabet::Name => NAME_DIGITS,
        }
    }

    /// The digit of byte `b`; `None` ends the number (a hex number ends at a non-hex byte).
    fn digit(self, b: u8) -> Option<u32> {
        match self {
            Alphabet::Hex => (b as char).to_digit(16).filter(|_| !b.is_ascii_uppercase()),
            // 0 is "end of string", which sorts before every byte.
            Alphabet::Name => {
                let below = NAME_ALPHABET.iter().filter(|&&c| c < b).count();
                let d = if NAME_ALPHABET.contains(&b) {
                    below + 1
                } else {
                    below
                };
                u32::try_from(d).ok()
            }
        }
    }

    fn byte(self, digit: u32) -> Option<u8> {
        match self {
            Alphabet::Hex => char::from_digit(digit, 16).map(|c| c as u8),
            Alphabet::Name => match digit {
                0 => None,
                d => NAME_ALPHABET.get(usize::try_from(d - 1).ok()?).copied(),
            },
        }
    }

    fn value(self, s: &[u8]) -> f64 {
        let radix = self.radix();
        let mut scale = 1.0;
        let mut v = 0.0;
        for &b in s.iter().take(self.digits()) {
            let Some(d) = self.digit(b) else { break };
            scale /= radix;
            v += f64::from(d) * scale;
        }
        v
    }

    fn render(self, mut v: f64) -> Vec<u8> {
        let radix = self.radix();
        let mut out = Vec::new();
        for _ in 0..self.digits() {
            v *= radix;
            let d = v.floor().clamp(0.0, radix - 1.0);
            v -= d;
            match self.byte(d as u32) {
                Some(b) => out.push(b),
                None => break,
            }
        }
        // Trailing "end of string" digits say nothing; trailing zeros neither for hex.
        while self == Alphabet::Hex && out.last() == Some(&b'0') {
            out.pop();
        }
        out
    }
}

fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The smallest string greater than every string starting with `prefix`, if any.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0x7f {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

/// Split points after `last` for a range that has seen `seen` keys from `first` to `last`
/// and ends at `upto` (inclusive; `None` = end of the listing): up to `max_points` points,
/// each about `pages` pages of keys after the previous one, in increasing order. The last
/// point may be the end of the base prefix's subtree. Empty when nothing can be estimated,
/// or when fewer than `min_pages` pages are expected before the first point (a split there
/// would cost a request and gain no parallelism).
pub(crate) fn split_points(
    first: &str,
    last: &str,
    seen: u64,
    upto: Option<&str>,
    pages: f64,
    min_pages: f64,
    max_points: usize,
) -> Vec<String> {
    let (f, l) = (first.as_bytes(), last.as_bytes());
    if seen < 2 || max_points == 0 || f >= l {
        return Vec::new();
    }
    let cp = common_prefix_len(f, l);
    // Widen the base to the segment start when the keys differ early in that segment, so
    // that `blobs/sha256/00/…` and `blobs/sha256/04/…` extrapolate over all of `blobs/sha256/`.
    let segment_start = f[..cp]
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(0, |i| i + 1);
    let base_len = if cp - segment_start < 6 {
        segment_start
    } else {
        cp
    };
    let base = &f[..base_len];
    let (fs, ls) = (&f[base_len..], &l[base_len..]);
    let is_hex = |s: &[u8]| {
        let seg: Vec<u8> = s.iter().copied().take_while(|&b| b != b'/').collect();
        !seg.is_empty() && seg.iter().all(|&b| Alphabet::Hex.digit(b).is_some())
    };
    let alphabet = if is_hex(fs) && is_hex(ls) {
        Alphabet::Hex
    } else {
        Alphabet::Name
    };
    let (vf, vl) = (alphabet.value(fs), alphabet.value(ls));
    if vl <= vf {
        return Vec::new();
    }
    let step = pages * PAGE * (vl - vf) / seen as f64;
    let mut points: Vec<String> = Vec::new();
    let mut previous: Vec<u8> = l.to_vec();
    for i in 1..=max_points {
        let v = vl + step * i as f64;
        let point = if v >= 1.0 {
            successor(base)
        } else {
            let mut p = base.to_vec();
            p.extend(alphabet.render(v));
            Some(p)
        };
        let Some(point) = point else { break };
        if i == 1 && (v.min(1.0) - vl) / (vl - vf) * (seen as f64) < min_pages * PAGE {
            break;
        }
        if point <= previous || upto.is_some_and(|u| point.as_slice() >= u.as_bytes()) {
            break;
        }
        // Only ASCII bytes are ever appended, and the base ends on a character boundary
        // of `first` unless the keys differ inside a multi-byte character: then give up.
        let Ok(text) = String::from_utf8(point.clone()) else {
            break;
        };
        previous = point;
        points.push(text);
        if v >= 1.0 {
            return points;
        }
    }
    // Out of points before the end of the subtree: let the last one be that end, so that
    // the unknown rest of the listing gets a range of its own and can be split once seen.
    if let (Some(end), Some(last_point)) = (successor(base), points.last_mut()) {
        let below_upto = upto.is_none_or(|u| end.as_slice() < u.as_bytes());
        if below_upto && end.as_slice() > last_point.as_bytes() {
            if let Ok(end) = String::from_utf8(end) {
                *last_point = end;
            }
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(hex: &str) -> String {
        format!("r/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2])
    }

    #[test]
    fn blob_keys_extrapolate_in_hex() {
        let first = blob(&format!("00{}", "a".repeat(62)));
        let last = blob(&format!("04{}", "b".repeat(62)));
        let points = split_points(&first, &last, 1000, None, 4.0, 1.0, 3);
        assert_eq!(points.len(), 3, "{points:?}");
        assert!(points[0].starts_with("r/docker/registry/v2/blobs/sha256/1"));
        assert_eq!(points[2], "r/docker/registry/v2/blobs/sha2560");
        assert!(points.windows(2).all(|w| w[0] < w[1]));
        assert!(points[0] > last);
    }

    #[test]
    fn the_subtree_end_is_the_last_point() {
        let first = blob(&format!("e0{}", "a".repeat(62)));
        let last = blob(&format!("f8{}", "b".repeat(62)));
        let points = split_points(&first, &last, 1000, None, 16.0, 0.0, 5);
        assert_eq!(
            points,
            vec!["r/docker/registry/v2/blobs/sha2560".to_string()]
        );
    }

    #[test]
    fn points_stay_below_the_upper_bound() {
        let first = blob(&format!("00{}", "a".repeat(62)));
        let last = blob(&format!("04{}", "b".repeat(62)));
        let upto = blob(&format!("0a{}", "0".repeat(62)));
        for p in split_points(&first, &last, 1000, Some(&upto), 1.0, 0.0, 10) {
            assert!(p > last && p < upto, "{p}");
        }
    }

    #[test]
    fn repository_names_extrapolate_in_the_name_alphabet() {
        let first = "docker/registry/v2/repositories/app-a/_layers/sha256/aa/link";
        let last = "docker/registry/v2/repositories/app-c/_manifests/tags/x/current/link";
        let points = split_points(first, last, 1000, None, 2.0, 1.0, 2);
        assert!(!points.is_empty());
        assert!(points[0].as_str() > last);
        assert!(points[0].starts_with("docker/registry/v2/repositories/app-"));
        assert!(
            points[0].bytes().all(|b| NAME_ALPHABET.contains(&b)),
            "{points:?}"
        );
    }

    #[test]
    fn nothing_to_estimate() {
        assert!(split_points("a", "a", 10, None, 1.0, 0.0, 3).is_empty());
        assert!(split_points("a", "b", 1, None, 1.0, 0.0, 3).is_empty());
        assert!(split_points("a", "b", 10, None, 1.0, 0.0, 0).is_empty());
        // The subtree ends right after `last`: nothing worth splitting off.
        let first = blob(&format!("e0{}", "a".repeat(62)));
        let last = blob(&format!("fe{}", "b".repeat(62)));
        assert!(split_points(&first, &last, 1000, None, 16.0, 2.0, 5).is_empty());
    }
}
