//! What a listed ETag says about a link file's content, without reading it.
//!
//! The registry writes every link with one PutObject, and S3 (and servers compatible with it)
//! gives a single-part, unencrypted or SSE-S3 object the ETag `"<hex MD5 of its content>"`. A
//! link holds only a digest string, so a link whose ETag equals MD5 of the digest in its path is
//! verified by the listing alone (SPEC §2). ETags of another shape — `"<hex>-<parts>"` for a
//! multipart upload, anything that is not 32 hex digits — say nothing about the content; an
//! SSE-KMS object's ETag has the MD5 shape but is not an MD5, which only reading a few such links
//! can tell (the audit does that, see `audit`).

use crate::digest::Digest;
use crate::graph::{DigestId, Interner, Repo};
use md5::{Digest as _, Md5};
use std::collections::HashMap;

/// What an ETag tells about an object's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EtagEvidence {
    /// The ETag is the MD5 of the expected content: verified.
    Matches,
    /// The ETag has the shape of an MD5 but is not the MD5 of the expected content: the content
    /// differs (or the ETag is no MD5 at all, as with SSE-KMS).
    Differs,
    /// The ETag is not an MD5 (multipart upload, another server's scheme): it tells nothing.
    NotMd5,
    /// The backend gives no ETags (a filesystem).
    Absent,
}

/// Compare a listed ETag (quotes included or not) with the content a link should hold.
pub(crate) fn evidence(e_tag: Option<&str>, expected_content: &[u8]) -> EtagEvidence {
    let Some(e_tag) = e_tag else {
        return EtagEvidence::Absent;
    };
    let hex = e_tag.trim().trim_matches('"');
    let Some(md5) = parse_md5(hex) else {
        return EtagEvidence::NotMd5;
    };
    if md5 == <[u8; 16]>::from(Md5::digest(expected_content)) {
        EtagEvidence::Matches
    } else {
        EtagEvidence::Differs
    }
}

/// The ETag S3 gives a single-part object with this content, quotes included.
pub(crate) fn md5_etag(content: &[u8]) -> String {
    format!(
        "\"{}\"",
        crate::digest::encode_hex(&<[u8; 16]>::from(Md5::digest(content)))
    )
}

/// The MD5 an ETag states, when it has the shape of one.
pub(crate) fn md5_of(e_tag: Option<&str>) -> Option<[u8; 16]> {
    parse_md5(e_tag?.trim().trim_matches('"'))
}

/// MD5 of the content of a link to `digest` (`<alg>:<hex>`, no newline).
pub(crate) fn md5_of_link(digest: &Digest) -> [u8; 16] {
    Md5::digest(digest.to_string().as_bytes()).into()
}

/// The MD5s of one repository's revision links, computed when a tag's ETag matches none of
/// its history, and kept while the tags resolved next are of the same repository.
#[derive(Default)]
pub(crate) struct RevisionMd5s {
    repo: String,
    by_md5: HashMap<[u8; 16], DigestId>,
}

impl RevisionMd5s {
    /// The revision of `repo` whose link content has MD5 `md5`.
    pub(crate) fn find(
        &mut self,
        repo: &Repo,
        digests: &Interner,
        md5: [u8; 16],
    ) -> Option<DigestId> {
        if self.repo != repo.name || self.by_md5.is_empty() {
            self.repo = repo.name.clone();
            self.by_md5 = repo
                .revisions
                .keys()
                .map(|id| (md5_of_link(&digests.digest(*id)), *id))
                .collect();
        }
        self.by_md5.get(&md5).copied()
    }
}

/// 32 hex digits (either case) as 16 bytes.
fn parse_md5(hex: &str) -> Option<[u8; 16]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &[u8] = b"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn an_md5_etag_verifies_or_contradicts_the_content() {
        let etag = md5_etag(LINK);
        assert_eq!(evidence(Some(&etag), LINK), EtagEvidence::Matches);
        assert_eq!(
            evidence(Some(&etag.to_uppercase()), LINK),
            EtagEvidence::Matches
        );
        assert_eq!(
            evidence(Some(etag.trim_matches('"')), LINK),
            EtagEvidence::Matches
        );
        assert_eq!(evidence(Some(&etag), b"sha256:00"), EtagEvidence::Differs);
    }

    #[test]
    fn other_etags_tell_nothing() {
        assert_eq!(
            evidence(Some("\"d41d8cd98f00b204e9800998ecf8427e-2\""), LINK),
            EtagEvidence::NotMd5
        );
        assert_eq!(evidence(Some("\"\""), LINK), EtagEvidence::NotMd5);
        assert_eq!(
            evidence(Some("\"zz1d8cd98f00b204e9800998ecf8427e\""), LINK),
            EtagEvidence::NotMd5
        );
        assert_eq!(evidence(None, LINK), EtagEvidence::Absent);
    }
}
