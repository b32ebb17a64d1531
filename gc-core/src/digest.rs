//! Content digests (`sha256:<hex>`), parsed strictly and stored compactly.
//!
//! Every node of the reference graph is a digest, so a registry of a million blobs holds a
//! million of them: a `sha256` digest is kept as its 32 raw bytes, not as a 71-byte `String`.
//! Other algorithms (`sha384`, `sha512`, and anything else the OCI digest grammar allows) are rare and
//! kept as their canonical string. Parsing follows the OCI image-spec digest grammar and, for
//! the registered algorithms, the exact length and lowercase hex that distribution enforces, so
//! a digest that parses here is one the registry itself would accept.

use std::fmt;
use std::str::FromStr;

/// A validated content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Digest {
    /// `sha256:` followed by 64 lowercase hex characters, kept as raw bytes.
    Sha256([u8; 32]),
    /// Any other algorithm, kept as its full canonical string (`sha512:…`).
    Other(Box<str>),
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// No `:` separating algorithm and encoded part.
    #[error("invalid checksum digest format: {0:?}")]
    Format(String),
    /// The algorithm component does not match `[a-z0-9]+([+._-][a-z0-9]+)*`.
    #[error("invalid digest algorithm in {0:?}")]
    Algorithm(String),
    /// The encoded part has the wrong length or characters for its algorithm.
    #[error("invalid digest encoding in {0:?}")]
    Encoding(String),
}

impl Digest {
    /// Parse `alg:encoded`.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let (alg, enc) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Format(s.to_string()))?;
        Self::from_parts(alg, enc).map_err(|e| match e {
            DigestError::Algorithm(_) => DigestError::Algorithm(s.to_string()),
            DigestError::Encoding(_) => DigestError::Encoding(s.to_string()),
            other => other,
        })
    }

    /// Build a digest from its algorithm and encoded parts, as found in a storage path.
    pub fn from_parts(alg: &str, enc: &str) -> Result<Digest, DigestError> {
        // Nearly every digest: skip the algorithm's grammar check, which it passes.
        if alg == "sha256" {
            return decode_lower_hex::<32>(enc)
                .map(Digest::Sha256)
                .ok_or_else(|| DigestError::Encoding(enc.to_string()));
        }
        if !valid_algorithm(alg) {
            return Err(DigestError::Algorithm(alg.to_string()));
        }
        match alg {
            "sha256" => {
                let bytes = decode_lower_hex::<32>(enc)
                    .ok_or_else(|| DigestError::Encoding(enc.to_string()))?;
                Ok(Digest::Sha256(bytes))
            }
            // go-digest's other registered algorithms: fixed-length lowercase hex.
            "sha384" | "sha512" => {
                let len = if alg == "sha384" { 96 } else { 128 };
                if enc.len() != len || !enc.bytes().all(is_lower_hex) {
                    return Err(DigestError::Encoding(enc.to_string()));
                }
                Ok(Digest::Other(format!("{alg}:{enc}").into()))
            }
            _ => {
                let ok = !enc.is_empty()
                    && enc
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
                if !ok {
                    return Err(DigestError::Encoding(enc.to_string()));
                }
                Ok(Digest::Other(format!("{alg}:{enc}").into()))
            }
        }
    }

    /// The sha256 digest of `content`.
    pub fn sha256_of(content: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest::Sha256(sha2::Sha256::digest(content).into())
    }

    /// Whether `content` hashes to this digest. `None` when the algorithm is not one we can
    /// compute (anything but sha256, sha384 and sha512).
    pub fn verify(&self, content: &[u8]) -> Option<bool> {
        use sha2::Digest as _;
        match self {
            Digest::Sha256(b) => Some(sha2::Sha256::digest(content).as_slice() == b),
            Digest::Other(s) if s.starts_with("sha512:") => {
                let computed = sha2::Sha512::digest(content);
                Some(encode_hex(&computed) == s["sha512:".len()..])
            }
            Digest::Other(s) if s.starts_with("sha384:") => {
                let computed = sha2::Sha384::digest(content);
                Some(encode_hex(&computed) == s["sha384:".len()..])
            }
            Digest::Other(_) => None,
        }
    }

    /// Order of the canonical strings, without building them for two sha256 digests (raw bytes
    /// order as their lowercase hex does). Report files list digests in this order.
    pub fn cmp_text(&self, other: &Digest) -> std::cmp::Ordering {
        match (self, other) {
            (Digest::Sha256(a), Digest::Sha256(b)) => a.cmp(b),
            _ => self.to_string().cmp(&other.to_string()),
        }
    }

    /// Order of the path components (algorithm, then encoded part), as distribution's storage
    /// walks them; two sha256 digests compare by their raw bytes, without building their hex.
    pub fn cmp_components(&self, other: &Digest) -> std::cmp::Ordering {
        match (self, other) {
            (Digest::Sha256(a), Digest::Sha256(b)) => a.cmp(b),
            _ => self
                .algorithm()
                .cmp(other.algorithm())
                .then_with(|| self.encoded().cmp(&other.encoded())),
        }
    }

    /// The length of the canonical string (`sha256:` + 64 hex = 71), without building it.
    pub fn string_len(&self) -> usize {
        match self {
            Digest::Sha256(_) => 71,
            Digest::Other(s) => s.len(),
        }
    }

    /// The algorithm component (`sha256`).
    pub fn algorithm(&self) -> &str {
        match self {
            Digest::Sha256(_) => "sha256",
            Digest::Other(s) => s.split_once(':').map(|(a, _)| a).unwrap_or(""),
        }
    }

    /// The encoded component (the hex), as a new string.
    pub fn encoded(&self) -> String {
        match self {
            Digest::Sha256(b) => encode_hex(b),
            Digest::Other(s) => s.split_once(':').map(|(_, e)| e).unwrap_or("").to_string(),
        }
    }

    /// The path components distribution uses for this digest: the algorithm with `+ . ;`
    /// replaced by `/` (paths.go `blobAlgorithmReplacer`), and the encoded part.
    pub fn path_components(&self) -> (String, String) {
        let alg = self.algorithm().replace(['+', '.', ';'], "/");
        (alg, self.encoded())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Digest::Sha256(b) => {
                f.write_str("sha256:")?;
                f.write_str(&encode_hex(b))
            }
            Digest::Other(s) => f.write_str(s),
        }
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn valid_algorithm(alg: &str) -> bool {
    // algorithm-component ([+._-] algorithm-component)*, component = [a-z0-9]+
    !alg.is_empty()
        && alg.split(['+', '.', '_', '-']).all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn is_lower_hex(b: u8) -> bool {
    HEX_VALUE[b as usize] & 0x80 == 0
}

fn decode_lower_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let bytes = s.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    // Branch-free: a digest is decoded for every listed blob and link, and every reference
    // of every manifest. Any invalid digit sets the high bit of `invalid`.
    let mut invalid = 0u8;
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (hi, lo) = (HEX_VALUE[pair[0] as usize], HEX_VALUE[pair[1] as usize]);
        invalid |= hi | lo;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    (invalid & 0x80 == 0).then_some(out)
}

/// The value of each lowercase hex digit; `0x80` for every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0x80u8; 256];
    let mut digit = 0;
    while digit < 10 {
        table[(b'0' + digit) as usize] = digit;
        digit += 1;
    }
    let mut letter = 0;
    while letter < 6 {
        table[(b'a' + letter) as usize] = 10 + letter;
        letter += 1;
    }
    table
};

/// Lowercase hex of `bytes`.
pub fn encode_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sha256_encoding_is_exactly_64_lowercase_hex_digits() {
        for byte in 0..=255u8 {
            let is_digit = byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte);
            for at in [0, 1, 31, 62, 63] {
                let mut enc = vec![b'0'; 64];
                enc[at] = byte;
                let Ok(enc) = String::from_utf8(enc) else {
                    continue; // not a &str: no digest path holds it
                };
                let decoded = Digest::from_parts("sha256", &enc);
                assert_eq!(decoded.is_ok(), is_digit, "byte {byte:#04x} at {at}");
                if let Ok(digest) = decoded {
                    assert_eq!(digest.to_string(), format!("sha256:{enc}"));
                }
            }
        }
        for len in [0, 63, 65, 128] {
            assert!(
                Digest::from_parts("sha256", &"a".repeat(len)).is_err(),
                "{len} digits"
            );
        }
    }

    #[test]
    fn text_order_is_the_order_of_the_strings() {
        let mut digests: Vec<Digest> = [
            format!("sha512:{}", "0".repeat(128)),
            format!("sha256:{}", "f".repeat(64)),
            "blake3:abc".to_string(),
            format!("sha256:0a{}", "0".repeat(62)),
            format!("sha256:a0{}", "0".repeat(62)),
        ]
        .iter()
        .map(|s| Digest::parse(s).expect("digest"))
        .collect();
        digests.sort_by(Digest::cmp_text);
        let texts: Vec<String> = digests.iter().map(ToString::to_string).collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
    }

    #[test]
    fn component_order_is_algorithm_then_hex() {
        let mut digests: Vec<Digest> = [
            format!("sha256:{}", "f".repeat(64)),
            format!("sha2:{}", "1".repeat(64)),
            format!("sha256:0a{}", "0".repeat(62)),
            format!("sha256+b64:{}", "0".repeat(64)),
            format!("sha256:a0{}", "0".repeat(62)),
        ]
        .iter()
        .map(|s| Digest::parse(s).expect("digest"))
        .collect();
        digests.sort_by(Digest::cmp_components);
        let pairs: Vec<(String, String)> = digests
            .iter()
            .map(|d| (d.algorithm().to_string(), d.encoded()))
            .collect();
        let mut sorted = pairs.clone();
        sorted.sort();
        assert_eq!(pairs, sorted);
        assert_eq!(pairs[0].0, "sha2");
    }

    const HEX: &str = "96443a84ce518ac22acb2e985eda402b58ac19ce6f91980bde63726a79d80b36";

    #[test]
    fn sha256_round_trips_through_display() {
        let s = format!("sha256:{HEX}");
        let d = Digest::parse(&s).unwrap();
        assert!(matches!(d, Digest::Sha256(_)));
        assert_eq!(d.to_string(), s);
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.encoded(), HEX);
        assert_eq!(d.string_len(), s.len());
    }

    #[test]
    fn uppercase_short_and_empty_digests_are_rejected() {
        assert!(Digest::parse(&format!("sha256:{}", HEX.to_uppercase())).is_err());
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse("").is_err());
        assert!(Digest::parse("sha256").is_err());
        assert!(Digest::parse(&format!("SHA256:{HEX}")).is_err());
        assert!(Digest::parse(&format!("sha256:{HEX}\n")).is_err());
    }

    #[test]
    fn other_algorithms_are_kept_as_strings() {
        let s512 = format!("sha512:{}", "ab".repeat(64));
        assert_eq!(Digest::parse(&s512).unwrap().to_string(), s512);
        assert!(Digest::parse("sha512:abcd").is_err());
        let s384 = format!("sha384:{}", "cd".repeat(48));
        assert_eq!(Digest::parse(&s384).unwrap().to_string(), s384);
        assert!(Digest::parse(&format!("sha384:{}", "cd".repeat(64))).is_err());
        let custom =
            Digest::parse("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8")
                .unwrap();
        assert_eq!(custom.path_components().0, "multihash/base58");
    }

    #[test]
    fn verify_checks_content() {
        let d = Digest::sha256_of(b"{}");
        assert_eq!(d.verify(b"{}"), Some(true));
        assert_eq!(d.verify(b"{ }"), Some(false));
        assert_eq!(
            d.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        use sha2::Digest as _;
        for (alg, hex) in [
            ("sha384", encode_hex(&sha2::Sha384::digest(b"{}"))),
            ("sha512", encode_hex(&sha2::Sha512::digest(b"{}"))),
        ] {
            let d = Digest::parse(&format!("{alg}:{hex}")).unwrap();
            assert_eq!(d.verify(b"{}"), Some(true), "{alg}");
            assert_eq!(d.verify(b"{ }"), Some(false), "{alg}");
        }
    }
}
