//! The registry process: locating `docker-registry` (distribution 2.8.2), writing its config.yml
//! (filesystem storage, deletes enabled, upload purging off, listening on 127.0.0.1 only),
//! starting `docker-registry serve`, waiting until `/v2/` answers, and killing it on drop.
//!
//! [`RegistryConfig`] writes a config without starting a server, for running
//! `garbage-collect` (see [`crate::gc`]) on a root while no registry serves it.

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
        let dir = tempfile::Builder::new()
            .prefix("gc-testkit-registry-")
            .tempdir()
            .context("creating a temporary directory for the registry config")?;
        let path = dir.path().join("config.yml");
        let yaml = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{}\n",
            yaml_quote(root_str),
            port
        );
        fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
        Ok(RegistryConfig { dir, path, root })
    }

    /// Path of config.yml.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The storage root directory (absolute; holds `docker/registry/v2`).
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
        let binary = registry_binary()?;
        // The picked port may be taken by someone else before the registry binds it: if the
        // process exits early, try again on another port.
        let mut attempt = 1;
        loop {
            match Registry::start_once(&binary, root_dir)? {
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
    fn start_once(binary: &Path, root_dir: &Path) -> Result<std::result::Result<Registry, String>> {
        let port = free_loopback_port()?;
        let config = RegistryConfig::write(root_dir, port)?;
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

    /// The storage root directory (absolute; holds `docker/registry/v2`).
    pub fn root(&self) -> &Path {
        self.config.root()
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
        Registry::config_for(self.root())
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
}
