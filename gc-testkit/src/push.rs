//! Blocking client for the registry HTTP API v2 as distribution 2.8.2 implements it: monolithic
//! and chunked blob upload (and an upload left unfinished, as an interrupted push leaves it),
//! cross-repository mount, manifest put/get/head/delete, blob head/get, tag list, and helpers that push a whole [`Image`] or [`MultiArch`] in a valid order (blobs, then
//! children by digest, then the index).
//!
//! Every call checks the status code it expects and returns an error naming the request and
//! the registry's answer otherwise.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};

use crate::image::{sha256_digest, Blob, Image, Manifest, MultiArch};

/// Accept header value listing every manifest media type [`crate::image`] produces.
pub const ACCEPT_ALL_MANIFESTS: &str = concat!(
    "application/vnd.oci.image.index.v1+json, ",
    "application/vnd.oci.image.manifest.v1+json, ",
    "application/vnd.docker.distribution.manifest.list.v2+json, ",
    "application/vnd.docker.distribution.manifest.v2+json"
);

/// Largest response body read (manifests and test blobs are small).
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// A client for one registry base URL (`http://127.0.0.1:<port>`).
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

/// A manifest as served by `GET /v2/<repo>/manifests/<reference>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedManifest {
    /// HTTP status (200).
    pub status: u16,
    /// `Content-Type` header.
    pub content_type: String,
    /// `Docker-Content-Digest` header.
    pub digest: String,
    /// Body.
    pub bytes: Vec<u8>,
}

/// What [`Client::push_image`] pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedImage {
    /// Manifest digest (as returned by the registry, checked against the local digest).
    pub manifest: String,
    /// Config digest.
    pub config: String,
    /// Layer digests in manifest order.
    pub layers: Vec<String>,
    /// Blob digests that were mounted from another repository instead of uploaded.
    pub mounted: Vec<String>,
    /// Tag it was pushed under (None: pushed by digest only).
    pub tag: Option<String>,
}

/// What [`Client::push_multi_arch`] pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedIndex {
    /// Index digest.
    pub index: String,
    /// Children in index order (each pushed by digest, untagged).
    pub children: Vec<PushedImage>,
    /// Tag of the index (None: by digest).
    pub tag: Option<String>,
}

impl PushedIndex {
    /// Every digest involved: index, children, configs, layers (sorted, deduplicated).
    pub fn all_digests(&self) -> BTreeSet<String> {
        let mut set = BTreeSet::new();
        set.insert(self.index.clone());
        for c in &self.children {
            set.extend(c.all_digests());
        }
        set
    }
}

impl PushedImage {
    /// Manifest, config and layer digests (sorted, deduplicated).
    pub fn all_digests(&self) -> BTreeSet<String> {
        let mut set = BTreeSet::new();
        set.insert(self.manifest.clone());
        set.insert(self.config.clone());
        set.extend(self.layers.iter().cloned());
        set
    }
}

/// A blob upload in progress (see [`Client::start_upload`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadSession {
    /// Repository the upload belongs to.
    pub repo: String,
    /// Absolute URL of the upload's next request (the last `Location` answered).
    pub location: String,
    /// Bytes sent so far.
    pub offset: u64,
}

struct Answer {
    status: u16,
    location: Option<String>,
    digest: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(2000)
            .collect()
    }
}

fn answer(result: std::result::Result<ureq::Response, ureq::Error>, what: &str) -> Result<Answer> {
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(anyhow!("{what}: {e}")),
    };
    let status = resp.status();
    let location = resp.header("Location").map(str::to_string);
    let digest = resp.header("Docker-Content-Digest").map(str::to_string);
    let content_type = resp.header("Content-Type").map(str::to_string);
    let mut body = Vec::new();
    resp.into_reader()
        .take(MAX_BODY)
        .read_to_end(&mut body)
        .with_context(|| format!("{what}: reading the response body"))?;
    Ok(Answer {
        status,
        location,
        digest,
        content_type,
        body,
    })
}

fn expect(a: &Answer, status: u16, what: &str) -> Result<()> {
    if a.status != status {
        bail!(
            "{what}: expected HTTP {status}, got {}: {}",
            a.status,
            a.body_text()
        );
    }
    Ok(())
}

impl Client {
    /// A client for `base_url` (e.g. `http://127.0.0.1:5000`, no trailing slash needed).
    /// Does not follow redirects and ignores proxy environment variables.
    pub fn new(base_url: &str) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .redirects(0)
            .build();
        Client {
            base: base_url.trim_end_matches('/').to_string(),
            agent,
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            self.url(location)
        } else {
            format!("{}/{}", self.base, location)
        }
    }

    /// Upload `bytes` as a blob of `repo` (monolithic: `POST` an upload, then `PUT` with
    /// `?digest=`). Returns `sha256:<hex>`, checked against the registry's answer.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> Result<String> {
        let digest = sha256_digest(bytes);
        let what = format!("starting upload to {repo}");
        let a = answer(
            self.agent
                .post(&self.url(&format!("/v2/{repo}/blobs/uploads/")))
                .send_bytes(&[]),
            &what,
        )?;
        expect(&a, 202, &what)?;
        let location = a
            .location
            .ok_or_else(|| anyhow!("{what}: 202 without a Location header"))?;
        let mut put_url = self.absolute(&location);
        put_url.push(if put_url.contains('?') { '&' } else { '?' });
        put_url.push_str("digest=");
        put_url.push_str(&digest);
        let what = format!("completing upload of {digest} to {repo}");
        let a = answer(
            self.agent
                .put(&put_url)
                .set("Content-Type", "application/octet-stream")
                .send_bytes(bytes),
            &what,
        )?;
        expect(&a, 201, &what)?;
        if let Some(d) = &a.digest {
            if d != &digest {
                bail!("{what}: registry answered Docker-Content-Digest {d}");
            }
        }
        Ok(digest)
    }

    /// Start a blob upload in `repo` (`POST /v2/<repo>/blobs/uploads/`, expects 202). The
    /// session carries the upload's `Location`, which every later request of the upload uses.
    pub fn start_upload(&self, repo: &str) -> Result<UploadSession> {
        let what = format!("starting upload to {repo}");
        let a = answer(
            self.agent
                .post(&self.url(&format!("/v2/{repo}/blobs/uploads/")))
                .send_bytes(&[]),
            &what,
        )?;
        expect(&a, 202, &what)?;
        let location = a
            .location
            .ok_or_else(|| anyhow!("{what}: 202 without a Location header"))?;
        Ok(UploadSession {
            repo: repo.to_string(),
            location: self.absolute(&location),
            offset: 0,
        })
    }

    /// Send one chunk of an upload (`PATCH <location>` with `Content-Range: <first>-<last>`,
    /// expects 202) and move the session to the `Location` the registry answers with (2.8.2
    /// keeps the upload's state in its query string).
    pub fn upload_chunk(&self, session: &mut UploadSession, chunk: &[u8]) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let first = session.offset;
        let last = first + chunk.len() as u64 - 1;
        let what = format!(
            "sending bytes {first}-{last} of an upload to {}",
            session.repo
        );
        let a = answer(
            self.agent
                .request("PATCH", &session.location)
                .set("Content-Type", "application/octet-stream")
                .set("Content-Range", &format!("{first}-{last}"))
                .send_bytes(chunk),
            &what,
        )?;
        expect(&a, 202, &what)?;
        let location = a
            .location
            .ok_or_else(|| anyhow!("{what}: 202 without a Location header"))?;
        session.location = self.absolute(&location);
        session.offset = last + 1;
        Ok(())
    }

    /// Complete an upload whose bytes were all sent by [`Client::upload_chunk`]
    /// (`PUT <location>&digest=`, empty body, expects 201). Returns `digest`.
    pub fn finish_upload(&self, session: UploadSession, digest: &str) -> Result<String> {
        let mut put_url = session.location;
        put_url.push(if put_url.contains('?') { '&' } else { '?' });
        put_url.push_str("digest=");
        put_url.push_str(digest);
        let what = format!(
            "completing chunked upload of {digest} ({} bytes) to {}",
            session.offset, session.repo
        );
        let a = answer(
            self.agent
                .put(&put_url)
                .set("Content-Type", "application/octet-stream")
                .send_bytes(&[]),
            &what,
        )?;
        expect(&a, 201, &what)?;
        if let Some(d) = &a.digest {
            if d != digest {
                bail!("{what}: registry answered Docker-Content-Digest {d}");
            }
        }
        Ok(digest.to_string())
    }

    /// Upload `bytes` as a blob of `repo` in chunks of `chunk_size` bytes (`POST`, one `PATCH`
    /// per chunk, then `PUT ?digest=` with no body), as docker does for large layers. Returns
    /// `sha256:<hex>`.
    pub fn push_blob_chunked(&self, repo: &str, bytes: &[u8], chunk_size: usize) -> Result<String> {
        let digest = sha256_digest(bytes);
        let mut session = self.start_upload(repo)?;
        for chunk in bytes.chunks(chunk_size.max(1)) {
            self.upload_chunk(&mut session, chunk)?;
        }
        self.finish_upload(session, &digest)
    }

    /// Start an upload of `bytes` to `repo`, send the first `sent` bytes and stop there, as an
    /// interrupted push does: the registry keeps the unfinished upload under `_uploads/` and
    /// the blob does not exist. Returns the abandoned session.
    pub fn abandon_upload(&self, repo: &str, bytes: &[u8], sent: usize) -> Result<UploadSession> {
        let mut session = self.start_upload(repo)?;
        self.upload_chunk(&mut session, &bytes[..sent.min(bytes.len())])?;
        Ok(session)
    }

    /// Mount blob `digest` from `from_repo` into `repo` (`POST ...?mount=&from=`, expects 201:
    /// a 202 means the registry started an upload instead, which is an error here).
    pub fn mount_blob(&self, repo: &str, from_repo: &str, digest: &str) -> Result<()> {
        let what = format!("mounting {digest} from {from_repo} into {repo}");
        let a = answer(
            self.agent
                .post(&self.url(&format!("/v2/{repo}/blobs/uploads/")))
                .query("mount", digest)
                .query("from", from_repo)
                .send_bytes(&[]),
            &what,
        )?;
        expect(&a, 201, &what)
    }

    /// `PUT /v2/<repo>/manifests/<reference>` (a tag or a digest) with `Content-Type:
    /// media_type`; expects 201 and returns `Docker-Content-Digest`, checked to equal the
    /// sha256 of `bytes`.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String> {
        let digest = sha256_digest(bytes);
        let what = format!("putting manifest {digest} as {repo}:{reference}");
        let a = answer(
            self.agent
                .put(&self.url(&format!("/v2/{repo}/manifests/{reference}")))
                .set("Content-Type", media_type)
                .send_bytes(bytes),
            &what,
        )?;
        expect(&a, 201, &what)?;
        let served = a
            .digest
            .ok_or_else(|| anyhow!("{what}: 201 without Docker-Content-Digest"))?;
        if served != digest {
            bail!("{what}: registry answered Docker-Content-Digest {served}");
        }
        Ok(digest)
    }

    /// `GET /v2/<repo>/manifests/<reference>` with `Accept: accept` (e.g.
    /// [`ACCEPT_ALL_MANIFESTS`]). `None` on 404; error on any other non-200 status.
    pub fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
        accept: &str,
    ) -> Result<Option<FetchedManifest>> {
        let what = format!("getting manifest {repo}:{reference}");
        let a = answer(
            self.agent
                .get(&self.url(&format!("/v2/{repo}/manifests/{reference}")))
                .set("Accept", accept)
                .call(),
            &what,
        )?;
        if a.status == 404 {
            return Ok(None);
        }
        expect(&a, 200, &what)?;
        Ok(Some(FetchedManifest {
            status: a.status,
            content_type: a.content_type.unwrap_or_default(),
            digest: a.digest.unwrap_or_default(),
            bytes: a.body,
        }))
    }

    /// `HEAD /v2/<repo>/manifests/<reference>` with every manifest type accepted: true on 200,
    /// false on 404.
    pub fn manifest_exists(&self, repo: &str, reference: &str) -> Result<bool> {
        let what = format!("heading manifest {repo}:{reference}");
        let a = answer(
            self.agent
                .head(&self.url(&format!("/v2/{repo}/manifests/{reference}")))
                .set("Accept", ACCEPT_ALL_MANIFESTS)
                .call(),
            &what,
        )?;
        match a.status {
            200 => Ok(true),
            404 => Ok(false),
            s => bail!("{what}: unexpected HTTP {s}"),
        }
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`: true on 200, false on 404 (unlinked or missing).
    pub fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        let what = format!("heading blob {repo}@{digest}");
        let a = answer(
            self.agent
                .head(&self.url(&format!("/v2/{repo}/blobs/{digest}")))
                .call(),
            &what,
        )?;
        match a.status {
            200 => Ok(true),
            404 => Ok(false),
            s => bail!("{what}: unexpected HTTP {s}"),
        }
    }

    /// `GET /v2/<repo>/blobs/<digest>`: the bytes, or `None` on 404.
    pub fn get_blob(&self, repo: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        let what = format!("getting blob {repo}@{digest}");
        let a = answer(
            self.agent
                .get(&self.url(&format!("/v2/{repo}/blobs/{digest}")))
                .call(),
            &what,
        )?;
        if a.status == 404 {
            return Ok(None);
        }
        expect(&a, 200, &what)?;
        Ok(Some(a.body))
    }

    /// `DELETE /v2/<repo>/manifests/<digest>` (deletes the revision link and every tag pointing
    /// at it); expects 202.
    pub fn delete_manifest(&self, repo: &str, digest: &str) -> Result<()> {
        let what = format!("deleting manifest {repo}@{digest}");
        let a = answer(
            self.agent
                .delete(&self.url(&format!("/v2/{repo}/manifests/{digest}")))
                .call(),
            &what,
        )?;
        expect(&a, 202, &what)
    }

    /// `GET /v2/<repo>/tags/list`: the tags (sorted), empty when the repository is unknown.
    pub fn tags(&self, repo: &str) -> Result<Vec<String>> {
        let what = format!("listing tags of {repo}");
        let a = answer(
            self.agent
                .get(&self.url(&format!("/v2/{repo}/tags/list")))
                .call(),
            &what,
        )?;
        if a.status == 404 {
            return Ok(Vec::new());
        }
        expect(&a, 200, &what)?;
        let v: serde_json::Value =
            serde_json::from_slice(&a.body).with_context(|| format!("{what}: parsing JSON"))?;
        let mut tags: Vec<String> = v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        Ok(tags)
    }

    /// Upload `blob` to `repo`, or, when `mount_from` names a repository that already has it
    /// (HEAD 200), mount it from there. Returns true when mounted.
    pub fn push_or_mount(&self, repo: &str, blob: &Blob, mount_from: Option<&str>) -> Result<bool> {
        if let Some(from) = mount_from {
            if self.blob_exists(from, &blob.digest)? {
                self.mount_blob(repo, from, &blob.digest)?;
                return Ok(true);
            }
        }
        self.push_blob(repo, &blob.bytes)?;
        Ok(false)
    }

    /// Push a manifest document under `reference` (a tag, or its own digest when `tag` is
    /// None).
    pub fn put_manifest(
        &self,
        repo: &str,
        manifest: &Manifest,
        tag: Option<&str>,
    ) -> Result<String> {
        let reference = tag.unwrap_or(&manifest.digest);
        self.push_manifest(repo, reference, &manifest.media_type, &manifest.bytes)
    }

    /// Push a whole single-arch image: config, then layers (each mounted from `mount_from`
    /// when that repository has it, else uploaded), then the manifest by `tag` or, when None,
    /// by digest.
    pub fn push_image(
        &self,
        repo: &str,
        image: &Image,
        tag: Option<&str>,
        mount_from: Option<&str>,
    ) -> Result<PushedImage> {
        let mut mounted = Vec::new();
        for blob in image.blobs() {
            if self.push_or_mount(repo, blob, mount_from)? {
                mounted.push(blob.digest.clone());
            }
        }
        let manifest = self.put_manifest(repo, &image.manifest, tag)?;
        Ok(PushedImage {
            manifest,
            config: image.config.digest.clone(),
            layers: image.layers.iter().map(|l| l.digest.clone()).collect(),
            mounted,
            tag: tag.map(str::to_string),
        })
    }

    /// Push a whole multi-arch image: every child with [`Client::push_image`] by digest (2.8.2
    /// requires an index's children to be manifests of the same repository already), then the
    /// index by `tag` or, when None, by digest.
    pub fn push_multi_arch(
        &self,
        repo: &str,
        multi: &MultiArch,
        tag: Option<&str>,
        mount_from: Option<&str>,
    ) -> Result<PushedIndex> {
        let mut children = Vec::new();
        for entry in &multi.entries {
            children.push(self.push_image(repo, &entry.image, None, mount_from)?);
        }
        let index = self.put_manifest(repo, &multi.index, tag)?;
        Ok(PushedIndex {
            index,
            children,
            tag: tag.map(str::to_string),
        })
    }
}
