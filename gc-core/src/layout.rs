//! The registry's storage layout: every key kind, as one enum, with its parser and its inverse.
//!
//! This is distribution's `registry/storage/paths.go`, read in both directions. Keys are
//! driver-relative (an S3 key is `rootdirectory` without its leading `/`, plus this):
//!
//! ```text
//! docker/registry/v2/
//! ├── blobs/<alg>/<hex[0:2]>/<hex>/data                                  BlobData
//! └── repositories/<name>/                                               (<name> may hold '/')
//!     ├── _layers/<alg>/<hex>/link                                       LayerLink
//!     ├── _manifests/revisions/<alg>/<hex>/link                          RevisionLink
//!     ├── _manifests/revisions/<alg>/<hex>/signatures/<alg>/<hex>/link   LegacySignatureLink (≤ v2.4)
//!     ├── _manifests/tags/<tag>/current/link                             TagCurrent
//!     ├── _manifests/tags/<tag>/index/<alg>/<hex>/link                   TagIndexEntry
//!     └── _uploads/<id>/data                                             UploadData
//!         _uploads/<id>/startedat                                        UploadStartedAt
//!         _uploads/<id>/hashstates/<alg>/<offset>                        UploadHashState
//! ```
//!
//! Only blob data has the two-hex fan-out directory; links do not. An algorithm name's
//! `+ . ;` become `/` in paths (`blobAlgorithmReplacer`), which cannot be undone exactly, so
//! the parser reads a multi-segment algorithm back with `+`. Anything the parser does not
//! recognise is a [`LayoutError`] that the auditor turns into a finding; it never stops a
//! listing.

use crate::digest::{Digest, DigestError};
use std::fmt;

/// The prefix, relative to the storage root, under which the registry keeps everything.
pub const ROOT: &str = "docker/registry/v2/";
/// The blob store prefix.
pub const BLOBS: &str = "docker/registry/v2/blobs/";
/// The repositories prefix.
pub const REPOSITORIES: &str = "docker/registry/v2/repositories/";

/// One key of the registry layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// `blobs/<alg>/<hex[0:2]>/<hex>/data`: the content of a blob or manifest.
    BlobData {
        /// The blob's digest.
        digest: Digest,
    },
    /// `repositories/<repo>/_layers/<alg>/<hex>/link`: the blob is linked into the repository.
    LayerLink {
        /// Repository name.
        repo: String,
        /// Linked digest.
        digest: Digest,
    },
    /// `repositories/<repo>/_manifests/revisions/<alg>/<hex>/link`: a manifest revision.
    RevisionLink {
        /// Repository name.
        repo: String,
        /// Manifest digest.
        digest: Digest,
    },
    /// `…/revisions/<alg>/<hex>/signatures/<alg>/<hex>/link`: schema1 signature (≤ v2.4).
    LegacySignatureLink {
        /// Repository name.
        repo: String,
        /// The signed manifest.
        digest: Digest,
        /// The signature blob.
        signature: Digest,
    },
    /// `repositories/<repo>/_manifests/tags/<tag>/current/link`: what the tag points at.
    TagCurrent {
        /// Repository name.
        repo: String,
        /// Tag name.
        tag: String,
    },
    /// `repositories/<repo>/_manifests/tags/<tag>/index/<alg>/<hex>/link`: tag history.
    TagIndexEntry {
        /// Repository name.
        repo: String,
        /// Tag name.
        tag: String,
        /// A manifest the tag pointed at.
        digest: Digest,
    },
    /// `repositories/<repo>/_uploads/<id>/data`: data of an upload in progress.
    UploadData {
        /// Repository name.
        repo: String,
        /// Upload id.
        id: String,
    },
    /// `repositories/<repo>/_uploads/<id>/startedat`: RFC 3339 start time of an upload.
    UploadStartedAt {
        /// Repository name.
        repo: String,
        /// Upload id.
        id: String,
    },
    /// `repositories/<repo>/_uploads/<id>/hashstates/<alg>/<offset>`: resumable hash state.
    UploadHashState {
        /// Repository name.
        repo: String,
        /// Upload id.
        id: String,
        /// Hash algorithm.
        alg: String,
        /// Byte offset the state was saved at.
        offset: String,
    },
}

/// Why a key is not part of the layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// Not below `docker/registry/v2/`.
    #[error("key outside docker/registry/v2/")]
    OutsideRoot,
    /// Below the root, but no known key kind has this shape.
    #[error("unrecognised key")]
    Unrecognized {
        /// The repository the key is in, if that much could be read.
        repository: Option<String>,
    },
    /// The digest spelled by the path is not a valid digest.
    #[error("bad digest in path: {error}")]
    BadDigest {
        /// The repository the key is in, if any.
        repository: Option<String>,
        /// What is wrong with it.
        error: DigestError,
    },
    /// A blob whose fan-out directory is not the first two characters of its hex.
    #[error("fan-out directory {fanout:?} does not match {digest}")]
    FanoutMismatch {
        /// The digest in the path.
        digest: Digest,
        /// The fan-out directory found.
        fanout: String,
    },
    /// A repository name that the registry could not have created.
    #[error("invalid repository name {name:?}")]
    BadRepositoryName {
        /// The name as found.
        name: String,
    },
    /// A tag name that the registry could not have created.
    #[error("invalid tag name {tag:?}")]
    BadTagName {
        /// Repository name.
        repository: String,
        /// The tag as found.
        tag: String,
    },
}

impl LayoutError {
    /// The repository the bad key belongs to, when known.
    pub fn repository(&self) -> Option<&str> {
        match self {
            LayoutError::Unrecognized { repository }
            | LayoutError::BadDigest { repository, .. } => repository.as_deref(),
            LayoutError::BadRepositoryName { name } => Some(name),
            LayoutError::BadTagName { repository, .. } => Some(repository),
            LayoutError::OutsideRoot | LayoutError::FanoutMismatch { .. } => None,
        }
    }
}

impl Key {
    /// The driver-relative storage key (no leading `/`).
    pub fn to_path(&self) -> String {
        let repo_base = |repo: &str| format!("{REPOSITORIES}{repo}/");
        match self {
            Key::BlobData { digest } => {
                let (alg, hex) = digest.path_components();
                let fanout = hex.get(..2).unwrap_or(&hex);
                format!("{BLOBS}{alg}/{fanout}/{hex}/data")
            }
            Key::LayerLink { repo, digest } => {
                format!("{}_layers/{}/link", repo_base(repo), flat(digest))
            }
            Key::RevisionLink { repo, digest } => {
                format!(
                    "{}_manifests/revisions/{}/link",
                    repo_base(repo),
                    flat(digest)
                )
            }
            Key::LegacySignatureLink {
                repo,
                digest,
                signature,
            } => format!(
                "{}_manifests/revisions/{}/signatures/{}/link",
                repo_base(repo),
                flat(digest),
                flat(signature)
            ),
            Key::TagCurrent { repo, tag } => {
                format!("{}_manifests/tags/{tag}/current/link", repo_base(repo))
            }
            Key::TagIndexEntry { repo, tag, digest } => format!(
                "{}_manifests/tags/{tag}/index/{}/link",
                repo_base(repo),
                flat(digest)
            ),
            Key::UploadData { repo, id } => format!("{}_uploads/{id}/data", repo_base(repo)),
            Key::UploadStartedAt { repo, id } => {
                format!("{}_uploads/{id}/startedat", repo_base(repo))
            }
            Key::UploadHashState {
                repo,
                id,
                alg,
                offset,
            } => format!("{}_uploads/{id}/hashstates/{alg}/{offset}", repo_base(repo)),
        }
    }

    /// Parse a driver-relative storage key. A leading `/` is accepted.
    pub fn parse(key: &str) -> Result<Key, LayoutError> {
        let key = key.strip_prefix('/').unwrap_or(key);
        if let Some(rest) = key.strip_prefix(BLOBS) {
            return parse_blob(rest);
        }
        if let Some(rest) = key.strip_prefix(REPOSITORIES) {
            return parse_repository_key(rest);
        }
        if key.starts_with(ROOT) {
            return Err(LayoutError::Unrecognized { repository: None });
        }
        Err(LayoutError::OutsideRoot)
    }

    /// The repository this key belongs to; `None` for blob data.
    pub fn repository(&self) -> Option<&str> {
        match self {
            Key::BlobData { .. } => None,
            Key::LayerLink { repo, .. }
            | Key::RevisionLink { repo, .. }
            | Key::LegacySignatureLink { repo, .. }
            | Key::TagCurrent { repo, .. }
            | Key::TagIndexEntry { repo, .. }
            | Key::UploadData { repo, .. }
            | Key::UploadStartedAt { repo, .. }
            | Key::UploadHashState { repo, .. } => Some(repo),
        }
    }

    /// The digest spelled by the key's path, for links whose content must equal it.
    pub fn path_digest(&self) -> Option<&Digest> {
        match self {
            Key::BlobData { digest }
            | Key::LayerLink { digest, .. }
            | Key::RevisionLink { digest, .. }
            | Key::TagIndexEntry { digest, .. } => Some(digest),
            Key::LegacySignatureLink { signature, .. } => Some(signature),
            _ => None,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_path())
    }
}

/// `<alg>/<hex>`: the flat digest path used by links.
/// A directory of a repository that changes how a registry sees it: what an empty directory
/// key (`…/_layers/`, listed with a trailing `/`) says exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoDirectory {
    /// `<repo>/_layers/…`: what distribution 2.8 discovers repositories by.
    Layers(String),
    /// `<repo>/_manifests/…` outside `tags/`: what 3.x discovers repositories by.
    Manifests(String),
    /// `<repo>/_manifests/tags/…`.
    Tags(String),
}

impl RepoDirectory {
    /// The repository.
    pub fn repository(&self) -> &str {
        match self {
            RepoDirectory::Layers(r) | RepoDirectory::Manifests(r) | RepoDirectory::Tags(r) => r,
        }
    }
}

/// The prefix every key of repository `repo` starts with (`…/repositories/<repo>/`).
pub fn repository_prefix(repo: &str) -> String {
    format!("{REPOSITORIES}{repo}/")
}

/// A repository's `_layers` directory, as distribution 3.x names it in its errors (no
/// trailing `/`).
pub fn layers_directory(repo: &str) -> String {
    format!("{REPOSITORIES}{repo}/_layers")
}

/// A repository's `_manifests/tags/` directory prefix.
pub fn tags_prefix(repo: &str) -> String {
    format!("{REPOSITORIES}{repo}/_manifests/tags/")
}

/// Whether a listed key names a directory (an empty one: a filesystem lists them, an object
/// store lists a zero-byte `folder/` object), not an object.
pub fn is_directory(key: &str) -> bool {
    key.ends_with('/')
}

/// The repository directory an empty directory key lies in, if it is one that matters
/// ([`RepoDirectory`]); `None` for every other directory.
pub fn parse_directory(key: &str) -> Option<RepoDirectory> {
    let rest = key.strip_prefix(REPOSITORIES)?;
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let marker = segs.iter().position(|s| s.starts_with('_'))?;
    let repo = segs[..marker].join("/");
    if !valid_repository_name(&repo) {
        return None;
    }
    match &segs[marker..] {
        ["_layers", ..] => Some(RepoDirectory::Layers(repo)),
        ["_manifests", "tags", ..] => Some(RepoDirectory::Tags(repo)),
        ["_manifests", ..] => Some(RepoDirectory::Manifests(repo)),
        _ => None,
    }
}

/// Whether a key that is no valid layout key still sits where blob data does
/// (`blobs/…/data`): distribution's blob enumeration stops on such a path.
pub fn looks_like_blob_data(key: &str) -> bool {
    key.starts_with(BLOBS) && key.ends_with("/data")
}

fn flat(digest: &Digest) -> String {
    let (alg, hex) = digest.path_components();
    format!("{alg}/{hex}")
}

fn digest_from_segments(
    alg: &[&str],
    hex: &str,
    repo: Option<&str>,
) -> Result<Digest, LayoutError> {
    Digest::from_parts(&alg.join("+"), hex).map_err(|error| LayoutError::BadDigest {
        repository: repo.map(str::to_string),
        error,
    })
}

fn parse_blob(rest: &str) -> Result<Key, LayoutError> {
    let segs: Vec<&str> = rest.split('/').collect();
    // <alg...>/<xx>/<hex>/data
    let unrecognized = || LayoutError::Unrecognized { repository: None };
    if segs.len() < 4 || segs.last() != Some(&"data") {
        return Err(unrecognized());
    }
    let n = segs.len();
    let (alg, fanout, hex) = (&segs[..n - 3], segs[n - 3], segs[n - 2]);
    let digest = digest_from_segments(alg, hex, None)?;
    if hex.get(..2) != Some(fanout) {
        return Err(LayoutError::FanoutMismatch {
            digest,
            fanout: fanout.to_string(),
        });
    }
    Ok(Key::BlobData { digest })
}

fn parse_repository_key(rest: &str) -> Result<Key, LayoutError> {
    let segs: Vec<&str> = rest.split('/').collect();
    let Some(marker) = segs.iter().position(|s| s.starts_with('_')) else {
        return Err(LayoutError::Unrecognized { repository: None });
    };
    if marker == 0 {
        return Err(LayoutError::Unrecognized { repository: None });
    }
    let repo = segs[..marker].join("/");
    if !valid_repository_name(&repo) {
        return Err(LayoutError::BadRepositoryName { name: repo });
    }
    let tail = &segs[marker..];
    let unrecognized = |repo: &str| LayoutError::Unrecognized {
        repository: Some(repo.to_string()),
    };
    let digest = |alg: &[&str], hex: &str| digest_from_segments(alg, hex, Some(&repo));
    match tail {
        ["_layers", alg @ .., hex, "link"] if !alg.is_empty() => Ok(Key::LayerLink {
            digest: digest(alg, hex)?,
            repo,
        }),
        ["_manifests", "revisions", alg, hex, "link"] => Ok(Key::RevisionLink {
            digest: digest(&[alg], hex)?,
            repo,
        }),
        ["_manifests", "revisions", alg, hex, "signatures", salg, shex, "link"] => {
            Ok(Key::LegacySignatureLink {
                digest: digest(&[alg], hex)?,
                signature: digest(&[salg], shex)?,
                repo,
            })
        }
        ["_manifests", "tags", tag, "current", "link"] => {
            check_tag(&repo, tag)?;
            Ok(Key::TagCurrent {
                tag: tag.to_string(),
                repo,
            })
        }
        ["_manifests", "tags", tag, "index", alg, hex, "link"] => {
            check_tag(&repo, tag)?;
            Ok(Key::TagIndexEntry {
                tag: tag.to_string(),
                digest: digest(&[alg], hex)?,
                repo,
            })
        }
        ["_uploads", id, "data"] => Ok(Key::UploadData {
            id: id.to_string(),
            repo,
        }),
        ["_uploads", id, "startedat"] => Ok(Key::UploadStartedAt {
            id: id.to_string(),
            repo,
        }),
        ["_uploads", id, "hashstates", alg, offset] => Ok(Key::UploadHashState {
            id: id.to_string(),
            alg: alg.to_string(),
            offset: offset.to_string(),
            repo,
        }),
        _ => Err(unrecognized(&repo)),
    }
}

fn check_tag(repo: &str, tag: &str) -> Result<(), LayoutError> {
    if valid_tag(tag) {
        Ok(())
    } else {
        Err(LayoutError::BadTagName {
            repository: repo.to_string(),
            tag: tag.to_string(),
        })
    }
}

/// A tag as the reference grammar allows it: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A repository name as the reference grammar allows it: `/`-separated components, each
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub fn valid_repository_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(valid_name_component)
}

fn valid_name_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator run: ".", "_", "__" or "-"+, followed by an alphanumeric
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";

    fn d() -> Digest {
        Digest::parse(&format!("sha256:{HEX}")).unwrap()
    }

    /// Expected strings are distribution's `paths_test.go` (v2.8.3) byte for byte, minus the
    /// leading `/` that the driver strips.
    #[test]
    fn paths_match_distribution() {
        let cases = [
            (
                Key::RevisionLink { repo: "foo/bar".into(), digest: d() },
                format!("docker/registry/v2/repositories/foo/bar/_manifests/revisions/sha256/{HEX}/link"),
            ),
            (
                Key::TagCurrent { repo: "foo/bar".into(), tag: "thetag".into() },
                "docker/registry/v2/repositories/foo/bar/_manifests/tags/thetag/current/link".to_string(),
            ),
            (
                Key::TagIndexEntry { repo: "foo/bar".into(), tag: "thetag".into(), digest: d() },
                format!("docker/registry/v2/repositories/foo/bar/_manifests/tags/thetag/index/sha256/{HEX}/link"),
            ),
            (
                Key::LayerLink { repo: "foo/bar".into(), digest: d() },
                format!("docker/registry/v2/repositories/foo/bar/_layers/sha256/{HEX}/link"),
            ),
            (
                Key::BlobData { digest: d() },
                format!("docker/registry/v2/blobs/sha256/ab/{HEX}/data"),
            ),
            (
                Key::UploadData { repo: "foo/bar".into(), id: "asdf-asdf-asdf-adsf".into() },
                "docker/registry/v2/repositories/foo/bar/_uploads/asdf-asdf-asdf-adsf/data".to_string(),
            ),
            (
                Key::UploadStartedAt { repo: "foo/bar".into(), id: "asdf-asdf-asdf-adsf".into() },
                "docker/registry/v2/repositories/foo/bar/_uploads/asdf-asdf-asdf-adsf/startedat".to_string(),
            ),
        ];
        for (key, expected) in cases {
            assert_eq!(key.to_path(), expected);
        }
    }

    #[test]
    fn every_variant_round_trips() {
        let sig = Digest::sha256_of(b"signature");
        let keys = vec![
            Key::BlobData { digest: d() },
            Key::BlobData {
                digest: Digest::parse(&format!("sha512:{}", "0f".repeat(64))).unwrap(),
            },
            Key::LayerLink {
                repo: "a".into(),
                digest: d(),
            },
            Key::LayerLink {
                repo: "team/app/api".into(),
                digest: d(),
            },
            Key::RevisionLink {
                repo: "a/b".into(),
                digest: d(),
            },
            Key::LegacySignatureLink {
                repo: "a/b".into(),
                digest: d(),
                signature: sig,
            },
            Key::TagCurrent {
                repo: "a/b/c".into(),
                tag: "v1.2_rc-3".into(),
            },
            Key::TagIndexEntry {
                repo: "x".into(),
                tag: "latest".into(),
                digest: d(),
            },
            Key::UploadData {
                repo: "x".into(),
                id: "0d2b-11".into(),
            },
            Key::UploadStartedAt {
                repo: "x".into(),
                id: "0d2b-11".into(),
            },
            Key::UploadHashState {
                repo: "x".into(),
                id: "0d2b-11".into(),
                alg: "sha256".into(),
                offset: "0".into(),
            },
        ];
        for key in keys {
            assert_eq!(Key::parse(&key.to_path()), Ok(key.clone()), "{key}");
            assert_eq!(Key::parse(&format!("/{}", key.to_path())), Ok(key));
        }
    }

    #[test]
    fn nested_repository_inside_repository() {
        let outer = format!("docker/registry/v2/repositories/a/b/_layers/sha256/{HEX}/link");
        let inner = format!("docker/registry/v2/repositories/a/b/c/_layers/sha256/{HEX}/link");
        assert_eq!(Key::parse(&outer).unwrap().repository(), Some("a/b"));
        assert_eq!(Key::parse(&inner).unwrap().repository(), Some("a/b/c"));
    }

    #[test]
    fn fanout_mismatch_is_reported() {
        let key = format!("docker/registry/v2/blobs/sha256/zz/{HEX}/data");
        assert!(
            matches!(Key::parse(&key), Err(LayoutError::FanoutMismatch { fanout, .. }) if fanout == "zz")
        );
    }

    #[test]
    fn odd_keys_are_errors_not_panics() {
        let bad = [
            "",
            "/",
            "docker/registry/v2/",
            "docker/registry/v2/blobs/",
            "docker/registry/v2/blobs/sha256/ab/abc/data",
            "docker/registry/v2/blobs/sha256/ab/x/notdata",
            "docker/registry/v2/repositories/_layers/sha256/aa/link",
            "docker/registry/v2/repositories/foo/_manifests/revisions/sha256/xyz/link",
            "docker/registry/v2/repositories/foo/_manifests/tags/-bad/current/link",
            "docker/registry/v2/repositories/Foo/_layers/sha256/aa/link",
            "docker/registry/v2/repositories/foo/_weird/file",
            "docker/registry/v2/repositories/foo/bar",
            "docker/registry/v2/repositories/foo/_layers/link",
            "docker/registry/v2/other/thing",
            "elsewhere/file",
            "docker/registry/v2/repositories/foo/_manifests/tags/t/current/link/extra",
        ];
        for key in bad {
            assert!(Key::parse(key).is_err(), "{key:?} should not parse");
        }
    }

    #[test]
    fn repository_name_grammar() {
        for ok in [
            "a",
            "library/hello",
            "a.b",
            "a_b",
            "a__b",
            "a---b",
            "team/app/api",
            "0",
        ] {
            assert!(valid_repository_name(ok), "{ok}");
        }
        for bad in [
            "", "A", "a/", "/a", "a..b", "a___b", "-a", "a-", "a/_b", "a b",
        ] {
            assert!(!valid_repository_name(bad), "{bad}");
        }
    }
}
