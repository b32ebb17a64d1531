//! Test support for gc-audit: drives the REAL registry (CNCF distribution 2.8.2, the Debian
//! `docker-registry` package) so that tests can compare gc-audit's predictions with what
//! `docker-registry garbage-collect` actually does, and builds the sample registry tree in
//! `examples/registry` (binary `make-sample`).
//!
//! Modules:
//! - [`registry`]: the `docker-registry serve` process and its config.yml;
//! - [`push`]: blocking registry HTTP API v2 client (upload, mount, manifests, HEAD checks);
//! - [`image`]: deterministic blobs, configs, manifests, indexes and attestations from seeds;
//! - [`live`]: the live-registry harness: pushers through the API while `gc-audit scan` runs
//!   back to back, and the checks every such scan must pass (`live-soak`, `tests/live_registry.rs`);
//! - [`gc`]: running `docker-registry garbage-collect` and parsing its output;
//! - [`mutate`]: seeded mutations of a registry tree on disk, for the fuzzer over real trees;
//! - [`sample`]: the sample tree `make-sample` writes;
//! - [`synth`]: synthetic registry trees at scale, written straight into storage (`gen-registry`):
//!   a filesystem root ([`synth::FsSink`]) or an s3-mem-server bucket ([`synth::S3Sink`]).
//!
//! Everything listens on and talks to 127.0.0.1 only. When `docker-registry` is not on PATH,
//! [`Registry::start`] and [`run_gc`] fail with [`registry::INSTALL_MESSAGE`].
//!
//! ```no_run
//! use gc_testkit::{image::{Format, Image, Platform}, run_gc, Registry};
//! # fn main() -> anyhow::Result<()> {
//! let root = tempfile::tempdir()?;
//! let reg = Registry::start(root.path())?;
//! let img = Image::builder(Format::Docker, "demo", Platform::linux_amd64())
//!     .unique_layers(2)
//!     .build()?;
//! reg.client().push_image("demo/app", &img, Some("latest"), None)?;
//! let config = reg.stop()?; // never collect a root that is being served
//! let gc = run_gc(config.path(), true, true)?;
//! assert!(gc.output.eligible_blobs.is_empty());
//! # Ok(()) }
//! ```

pub mod gc;
pub mod image;
pub mod live;
pub mod mutate;
pub mod push;
pub mod registry;
pub mod sample;
pub mod synth;

pub use gc::{gc_command, run_gc, GcOutput, GcRun, GcSummary};
pub use push::{
    Client, FetchedManifest, PushedImage, PushedIndex, UploadSession, ACCEPT_ALL_MANIFESTS,
};
pub use registry::{Registry, RegistryConfig, S3Backend, INSTALL_MESSAGE};
