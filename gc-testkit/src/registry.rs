//! The registry process: locating `docker-registry` (distribution 2.8.2), writing its config.yml
//! (filesystem storage, deletes enabled, upload purging off, listening on 127.0.0.1 only),
//! starting `docker-registry serve`, waiting until `/v2/` answers, and killing it on drop.
//!
//! [`RegistryConfig`] writes a config without starting a server, for running
//! `garbage-collect` (see [`crate::gc`]) on a root while no registry serves it.
//!
//! The `s3` driver works too ([`S3Backend`], [`RegistryConfig::write_s3`],
//! [`Registry::start_s3`]), e.g. against `s3_mem_server::S3MemServer`: the bucket must exist
//! before the first push, and the process is started without `AWS_CA_BUNDLE` in its
//! environment (2.8.2's s3 driver panics at start-up when it is set).

use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use tempfile::TempDir;

use crate::push::Client;

/// Name of the registry binary looked up on PATH.
pub const REGISTRY_BINARY: &str = "docker-registry";

/// Error message when the binary is missing.
pub const INSTALL_MESSAGE: &str = "docker-registry (distribution 2.8.2) not found on PATH: install it with `apt-get install -y docker-registry`";

/// How long [`Registry::start`] waits for `/v2/` to answer 200.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Absolute path of `docker-registry` on PATH, or the install message as the error.
pub fn registry_binary() -> Result<PathBuf> {
    find_in_path(std::env::var_os("PATH").as_deref())
}

fn find_in_path(path: Option<&std::ffi::OsStr>) -> Result<PathBuf> {
    let path = path.ok_or_else(|| anyhow!(INSTALL_MESSAGE))?;
    for dir in std::env::split_paths(path) {
        let candidate = dir.join(REGISTRY_BINARY);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(INSTALL_MESSAGE)
}

/// A `docker-registry` command with `REGISTRY_*` environment overrides (and `AWS_CA_BUNDLE`,
/// which makes 2.8.2 panic with the s3 driver) removed, so only the config file counts.
pub(crate) fn registry_command(binary: &Path) -> Command {
    let mut cmd = Command::new(binary);
    for (key, _) in std::env::vars_os() {
        if let Some(k) = key.to_str() {
            if k.starts_with("REGISTRY_") || k == "AWS_CA_BUNDLE" {
                cmd.env_remove(k);
            }
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A registry config.yml in a temporary directory (removed on drop).
#[derive(Debug)]
pub struct RegistryConfig {
    dir: TempDir,
    path: PathBuf,
    root: PathBuf,
    s3: Option<S3Backend>,
}

/// Where a registry with the `s3` storage driver keeps its data: the `storage: s3:` section
/// of config.yml (distribution 2.8.2 parameter names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Backend {
    /// `regionendpoint`: `http://127.0.0.1:PORT` (a custom endpoint implies path-style
    /// requests in 2.8.2).
    pub endpoint: String,
    /// `bucket` (must exist before the first push).
    pub bucket: String,
    /// `rootdirectory`, e.g. `/registry`; keys are `registry/docker/registry/v2/...`. Empty:
    /// the bucket root (the parameter is left out).
    pub rootdirectory: String,
    /// `region` (default `us-east-1`).
    pub region: String,
    /// `accesskey` (default: s3-mem-server's [`s3_mem_server::ACCESS_KEY`]).
    pub accesskey: String,
    /// `secretkey` (default: s3-mem-server's [`s3_mem_server::SECRET_KEY`]).
    pub secretkey: String,
    /// `forcepathstyle`, written only when set (2.8.2 does not know the parameter and ignores
    /// it; 3.x does).
    pub forcepathstyle: Option<bool>,
}

impl S3Backend {
    /// A bucket on an s3-mem-server (its credentials and region), under `rootdirectory`
    /// (a leading `/` is added when missing).
    pub fn new(endpoint: &str, bucket: &str, rootdirectory: &str) -> S3Backend {
        let root = rootdirectory.trim_matches('/');
        S3Backend {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            rootdirectory: if root.is_empty() {
                String::new()
            } else {
                format!("/{root}")
            },
            region: s3_mem_server::REGION.to_string(),
            accesskey: s3_mem_server::ACCESS_KEY.to_string(),
            secretkey: s3_mem_server::SECRET_KEY.to_string(),
            forcepathstyle: None,
        }
    }

    /// The `storage:` driver section (indented for config.yml).
    fn yaml(&self) -> String {
        let mut y = format!(
            "  s3:\n    region: {}\n    regionendpoint: {}\n    bucket: {}\n",
            yaml_quote(&self.region),
            yaml_quote(&self.endpoint),
            yaml_quote(&self.bucket)
        );
        if !self.rootdirectory.is_empty() {
            y += &format!("    rootdirectory: {}\n", yaml_quote(&self.rootdirectory));
        }
        y += &format!(
            "    accesskey: {}\n    secretkey: {}\n    secure: false\n    v4auth: true\n",
            yaml_quote(&self.accesskey),
            yaml_quote(&self.secretkey)
        );
        if let Some(f) = self.forcepathstyle {
            y += &format!("    forcepathstyle: {f}\n");
        }
        y
    }
}

impl RegistryConfig {
    /// Write a config for filesystem storage at `root_dir` (created if missing, made absolute),
    /// listening on `127.0.0.1:<port>` (port 0 when only running garbage-collect).
    ///
    /// Log level is `info` so that a real `garbage-collect` run logs its deletions to stderr.
    pub fn write(root_dir: &Path, port: u16) -> Result<RegistryConfig> {
        fs::create_dir_all(root_dir)
            .with_context(|| format!("creating registry root {}", root_dir.display()))?;
        let root = fs::canonicalize(root_dir)
            .with_context(|| format!("resolving registry root {}", root_dir.display()))?;
        let root_str = root
            .to_str()
            .ok_or_else(|| anyhow!("registry root {} is not UTF-8", root.display()))?;
        let driver = format!(
            "  filesystem:\n    rootdirectory: {}\n",
            yaml_quote(root_str)
        );
        RegistryConfig::write_yaml(&driver, port, root, None)
    }

    /// Write a config for the `s3` driver: bucket `bucket` on the S3 server at `endpoint`
    /// (`http://127.0.0.1:PORT`), under `rootdirectory` (`/registry`), with s3-mem-server's
    /// credentials, region `us-east-1`, `secure: false`, `v4auth: true`, deletes enabled,
    /// redirects disabled (blob GETs stay inside the registry), listening on
    /// `127.0.0.1:<port>` (0 when only running garbage-collect).
    pub fn write_s3(
        endpoint: &str,
        bucket: &str,
        rootdirectory: &str,
        port: u16,
    ) -> Result<RegistryConfig> {
        RegistryConfig::write_s3_backend(&S3Backend::new(endpoint, bucket, rootdirectory), port)
    }

    /// [`RegistryConfig::write_s3`] with every `s3` parameter given.
    pub fn write_s3_backend(backend: &S3Backend, port: u16) -> Result<RegistryConfig> {
        // Redirects off: blob GETs stay inside the registry (the filesystem driver has none).
        let driver = format!("{}  redirect:\n    disable: true\n", backend.yaml());
        RegistryConfig::write_yaml(
            &driver,
            port,
            PathBuf::from(&backend.rootdirectory),
            Some(backend.clone()),
        )
    }

    /// Write config.yml into a new temporary directory: `driver` is the `storage:` section's
    /// driver part (indented), to which deletes on and upload purging off are added.
    fn write_yaml(
        driver: &str,
        port: u16,
        root: PathBuf,
        s3: Option<S3Backend>,
    ) -> Result<RegistryConfig> {
        let dir = tempfile::Builder::new()
            .prefix("gc-testkit-registry-")
            .tempdir()
            .context("creating a temporary directory for the registry config")?;
        let path = dir.path().join("config.yml");
        let yaml = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: true\n\
             storage:\n{driver}  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n"
        );
        fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
        Ok(RegistryConfig {
            dir,
            path,
            root,
            s3,
        })
    }

    /// The `s3` storage of a config written by [`RegistryConfig::write_s3`].
    pub fn s3(&self) -> Option<&S3Backend> {
        self.s3.as_ref()
    }

    /// Path of config.yml.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The storage root directory (absolute; holds `docker/registry/v2`). For an `s3`
    /// config, the driver's `rootdirectory` (`/registry`, or empty) inside the bucket.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The temporary directory holding config.yml (and the server log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A running `docker-registry serve` on 127.0.0.1 with filesystem storage. Dropping it kills
/// the process and waits for it.
#[derive(Debug)]
pub struct Registry {
    child: Option<Child>,
    config: RegistryConfig,
    port: u16,
    log_path: PathBuf,
}

fn free_loopback_port() -> Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 to pick a free port")?;
    let port = listener
        .local_addr()
        .context("reading the picked port")?
        .port();
    Ok(port)
}

/// The last `max` bytes of the file at `path` (lossy UTF-8), or a note why it is unreadable.
pub(crate) fn file_tail(path: &Path, max: u64) -> String {
    let read = || -> std::io::Result<String> {
        let mut f = fs::File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    read().unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

impl Registry {
    /// Start `docker-registry serve` on a free 127.0.0.1 port with storage at `root_dir` and
    /// wait (up to [`START_TIMEOUT`]) until `GET /v2/` answers 200.
    pub fn start(root_dir: &Path) -> Result<Registry> {
        Registry::start_with(&|port| RegistryConfig::write(root_dir, port))
    }

    /// Start `docker-registry serve` with the `s3` driver (see [`RegistryConfig::write_s3`])
    /// on a free 127.0.0.1 port, without `AWS_CA_BUNDLE` in its environment, and wait until
    /// `GET /v2/` answers 200. The bucket must exist.
    pub fn start_s3(backend: &S3Backend) -> Result<Registry> {
        Registry::start_with(&|port| RegistryConfig::write_s3_backend(backend, port))
    }

    fn start_with(write: &dyn Fn(u16) -> Result<RegistryConfig>) -> Result<Registry> {
        let binary = registry_binary()?;
        // The picked port may be taken by someone else before the registry binds it: if the
        // process exits early, try again on another port.
        let mut attempt = 1;
        loop {
            match Registry::start_once(&binary, write)? {
                Ok(registry) => return Ok(registry),
                Err(exited) if attempt < 3 => {
                    eprintln!("gc-testkit: {exited}; retrying on another port");
                    attempt += 1;
                }
                Err(exited) => bail!("{exited}"),
            }
        }
    }

    /// Outer error: could not start or not ready in time. Inner error: the process exited early.
    fn start_once(
        binary: &Path,
        write: &dyn Fn(u16) -> Result<RegistryConfig>,
    ) -> Result<std::result::Result<Registry, String>> {
        let port = free_loopback_port()?;
        let config = write(port)?;
        let log_path = config.dir().join("registry.log");
        let log = fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("duplicating handle of {}", log_path.display()))?;
        let child = registry_command(binary)
            .arg("serve")
            .arg(config.path())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .with_context(|| format!("spawning {} serve", binary.display()))?;
        let mut registry = Registry {
            child: Some(child),
            config,
            port,
            log_path,
        };
        Ok(match registry.wait_ready()? {
            None => Ok(registry),
            Some(exited) => Err(exited),
        })
    }

    /// `Ok(None)` when `/v2/` answered 200, `Ok(Some(reason))` when the process exited first.
    fn wait_ready(&mut self) -> Result<Option<String>> {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .redirects(0)
            .build();
        let url = format!("{}/v2/", self.base_url());
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().context("polling the registry process")? {
                    self.child = None;
                    return Ok(Some(format!(
                        "docker-registry serve exited with {status} before answering; log tail:\n{}",
                        self.log_tail()
                    )));
                }
            }
            let last = match agent.get(&url).call() {
                Ok(resp) if resp.status() == 200 => return Ok(None),
                Ok(resp) => format!("status {}", resp.status()),
                Err(ureq::Error::Status(code, _)) => format!("status {code}"),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                bail!(
                    "docker-registry at {url} not ready after {:?} (last: {last}); log tail:\n{}",
                    START_TIMEOUT,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Path of the config.yml it runs with (usable for `garbage-collect`).
    pub fn config_path(&self) -> &Path {
        self.config.path()
    }

    /// The storage root directory (absolute; holds `docker/registry/v2`). With the `s3`
    /// driver, the `rootdirectory` inside the bucket.
    pub fn root(&self) -> &Path {
        self.config.root()
    }

    /// The `s3` storage, when started with [`Registry::start_s3`].
    pub fn s3(&self) -> Option<&S3Backend> {
        self.config.s3()
    }

    /// Path of the server's combined stdout/stderr log.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last 4 KiB of the server log.
    pub fn log_tail(&self) -> String {
        file_tail(&self.log_path, 4096)
    }

    /// An API client for this registry.
    pub fn client(&self) -> Client {
        Client::new(&self.base_url())
    }

    /// Write a config for `root_dir` without starting a server (to run garbage-collect on it).
    pub fn config_for(root_dir: &Path) -> Result<RegistryConfig> {
        RegistryConfig::write(root_dir, 0)
    }

    /// Kill the process and wait for it (what `Drop` does, with errors reported). Returns a
    /// fresh config for the same root (the running config's directory goes with `self`), ready
    /// for [`crate::run_gc`].
    pub fn stop(mut self) -> Result<RegistryConfig> {
        self.kill()?;
        match self.config.s3() {
            Some(backend) => RegistryConfig::write_s3_backend(backend, 0),
            None => Registry::config_for(self.root()),
        }
    }

    fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            if child
                .try_wait()
                .context("polling the registry process")?
                .is_none()
            {
                child.kill().context("killing docker-registry")?;
            }
            child.wait().context("waiting for docker-registry")?;
        }
        Ok(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Err(e) = self.kill() {
            eprintln!("gc-testkit: stopping docker-registry: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_gives_install_message() {
        let empty = tempfile::tempdir().unwrap();
        let err = find_in_path(Some(empty.path().as_os_str())).unwrap_err();
        assert_eq!(err.to_string(), INSTALL_MESSAGE);
        assert_eq!(find_in_path(None).unwrap_err().to_string(), INSTALL_MESSAGE);
    }

    #[test]
    fn config_quotes_root_and_binds_loopback() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("it's here");
        let cfg = RegistryConfig::write(&dir, 5123).unwrap();
        let text = fs::read_to_string(cfg.path()).unwrap();
        assert!(text.contains("it''s here'"), "{text}");
        assert!(text.contains("addr: 127.0.0.1:5123"));
        assert!(text.contains("delete:\n    enabled: true"));
    }

    #[test]
    fn s3_config_has_the_driver_settings() {
        let cfg =
            RegistryConfig::write_s3("http://127.0.0.1:9000/", "bench", "registry", 0).unwrap();
        let text = fs::read_to_string(cfg.path()).unwrap();
        for want in [
            "storage:\n  s3:\n    region: 'us-east-1'\n",
            "    regionendpoint: 'http://127.0.0.1:9000'\n",
            "    bucket: 'bench'\n",
            "    rootdirectory: '/registry'\n",
            "    secure: false\n    v4auth: true\n",
            "  redirect:\n    disable: true\n  delete:\n    enabled: true\n",
            "addr: 127.0.0.1:0\n",
        ] {
            assert!(text.contains(want), "{want:?} not in:\n{text}");
        }
        assert!(!text.contains("forcepathstyle"));
        assert_eq!(cfg.root(), Path::new("/registry"));
        assert_eq!(cfg.s3().unwrap().bucket, "bench");
        let mut backend = S3Backend::new("http://127.0.0.1:1", "b", "");
        backend.forcepathstyle = Some(true);
        let cfg = RegistryConfig::write_s3_backend(&backend, 0).unwrap();
        let text = fs::read_to_string(cfg.path()).unwrap();
        assert!(!text.contains("rootdirectory"), "{text}");
        assert!(text.contains("    forcepathstyle: true\n"), "{text}");
    }
}
