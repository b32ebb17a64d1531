//! Running the real `docker-registry garbage-collect [--dry-run] [--delete-untagged] <config>`
//! and parsing its output into sets of eligible blobs and manifests.
//!
//! Output format of 2.8.2 (stdout): a bare `<repo>` line per repository, then
//! `manifest eligible for deletion: <digest>` (only with `--delete-untagged`),
//! `<repo>: marking manifest <digest> ` (trailing space) and `<repo>: marking blob <digest>`,
//! then an empty line, `<N> blobs marked, <M> blobs and <K> manifests eligible for deletion`,
//! and `blob eligible for deletion: <digest>` lines in random order. A real (non dry) run also
//! logs its deletions to stderr (`Deleting blob: ...`, `deleting manifest: ...`).
//!
//! Do not run it against a root a registry is serving.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{bail, Context as _, Result};

use crate::registry::{registry_binary, registry_command};

/// The `<N> blobs marked, <M> blobs and <K> manifests eligible for deletion` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcSummary {
    /// N: entries in the mark set.
    pub marked: u64,
    /// M: blobs eligible for deletion.
    pub blobs_eligible: u64,
    /// K: manifests eligible for deletion.
    pub manifests_eligible: u64,
}

/// The result of one `garbage-collect` run.
#[derive(Clone, Debug)]
pub struct GcRun {
    /// Exit status.
    pub status: ExitStatus,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
    /// The parsed stdout.
    pub output: GcOutput,
}

/// Parsed `garbage-collect` stdout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcOutput {
    /// Repositories in the order GC visited them (the bare `<repo>` lines).
    pub repositories: Vec<String>,
    /// Digests of `blob eligible for deletion: <digest>` lines.
    pub eligible_blobs: BTreeSet<String>,
    /// Digests of `manifest eligible for deletion: <digest>` lines (all repositories).
    pub eligible_manifests: BTreeSet<String>,
    /// The same, per repository (the last bare `<repo>` line before each).
    pub eligible_manifests_by_repo: BTreeMap<String, BTreeSet<String>>,
    /// Digests of `<repo>: marking manifest <digest> ` lines.
    pub marked_manifests: BTreeSet<String>,
    /// Digests of `<repo>: marking blob <digest>` lines.
    pub marked_blobs: BTreeSet<String>,
    /// The summary line, if printed.
    pub summary: Option<GcSummary>,
}

impl GcOutput {
    /// Parse `garbage-collect` stdout. Lines it does not know are ignored.
    pub fn parse(stdout: &str) -> GcOutput {
        let mut out = GcOutput::default();
        let mut current: Option<String> = None;
        for raw in stdout.lines() {
            let line = raw.trim_end();
            if line.is_empty() {
                continue;
            }
            if let Some(d) = line.strip_prefix("blob eligible for deletion: ") {
                out.eligible_blobs.insert(d.trim().to_string());
            } else if let Some(d) = line.strip_prefix("manifest eligible for deletion: ") {
                let d = d.trim().to_string();
                out.eligible_manifests.insert(d.clone());
                if let Some(repo) = &current {
                    out.eligible_manifests_by_repo
                        .entry(repo.clone())
                        .or_default()
                        .insert(d);
                }
            } else if let Some(summary) = parse_summary(line) {
                out.summary = Some(summary);
            } else if let Some((_, rest)) = line.split_once(": marking manifest ") {
                out.marked_manifests.insert(rest.trim().to_string());
            } else if let Some((_, rest)) = line.split_once(": marking blob ") {
                out.marked_blobs.insert(rest.trim().to_string());
            } else if !line.contains(' ') && !line.contains(':') {
                // Repository names contain neither spaces nor colons.
                out.repositories.push(line.to_string());
                current = Some(line.to_string());
            }
        }
        out
    }
}

fn parse_summary(line: &str) -> Option<GcSummary> {
    // "<N> blobs marked, <M> blobs and <K> manifests eligible for deletion"
    let rest = line.strip_suffix(" manifests eligible for deletion")?;
    let (n, rest) = rest.split_once(" blobs marked, ")?;
    let (m, k) = rest.split_once(" blobs and ")?;
    Some(GcSummary {
        marked: n.trim().parse().ok()?,
        blobs_eligible: m.trim().parse().ok()?,
        manifests_eligible: k.trim().parse().ok()?,
    })
}

impl GcRun {
    /// True when the process exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Error (with stdout/stderr tails) unless the process exited 0.
    pub fn ensure_success(&self) -> Result<&Self> {
        if !self.success() {
            bail!(
                "garbage-collect failed ({}); stderr:\n{}\nstdout tail:\n{}",
                self.status,
                tail(&self.stderr, 4000),
                tail(&self.stdout, 4000)
            );
        }
        Ok(self)
    }

    /// stdout with the trailing block of `blob eligible for deletion:` lines (which 2.8.2
    /// prints in random map order) sorted, so the text is stable run to run.
    pub fn stable_stdout(&self) -> String {
        stable_gc_stdout(&self.stdout)
    }

    /// Deletion lines logged to stderr by a real run (`Deleting blob: ...`,
    /// `deleting manifest: ...`, `deleting manifest tag reference: ...`), as the
    /// `msg="..."` text of each logrus line, in order.
    pub fn deletion_log(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|l| {
                let start = l.find("msg=\"")? + 5;
                let rest = &l[start..];
                let end = rest.find('"')?;
                let msg = &rest[..end];
                let lower = msg.to_ascii_lowercase();
                lower.starts_with("deleting").then(|| msg.to_string())
            })
            .collect()
    }
}

/// See [`GcRun::stable_stdout`].
pub fn stable_gc_stdout(stdout: &str) -> String {
    let mut lines: Vec<&str> = stdout.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("blob eligible for deletion: "))
        .unwrap_or(lines.len());
    lines[start..].sort_unstable();
    let mut text = lines.join("\n");
    if stdout.ends_with('\n') {
        text.push('\n');
    }
    text
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Run `docker-registry garbage-collect [--dry-run] [--delete-untagged] <config_path>` and
/// capture its output. A non-zero exit is not an error here (see [`GcRun::ensure_success`]):
/// tests may want to assert on an aborting GC.
pub fn run_gc(config_path: &Path, dry_run: bool, delete_untagged: bool) -> Result<GcRun> {
    let binary = registry_binary()?;
    let mut cmd = gc_command(config_path, dry_run, delete_untagged)?;
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {} garbage-collect", binary.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let output = GcOutput::parse(&stdout);
    Ok(GcRun {
        status: out.status,
        stdout,
        stderr,
        output,
    })
}

/// The `docker-registry garbage-collect [--dry-run] [--delete-untagged] <config_path>`
/// command [`run_gc`] runs, not started: stdin null, `REGISTRY_*` and `AWS_CA_BUNDLE` removed
/// from its environment; stdout and stderr are the caller's to set. For callers that need the
/// process itself (timeouts, resource usage); parse its stdout with [`GcOutput::parse`].
pub fn gc_command(config_path: &Path, dry_run: bool, delete_untagged: bool) -> Result<Command> {
    let binary = registry_binary()?;
    let mut cmd = registry_command(&binary);
    cmd.arg("garbage-collect");
    if dry_run {
        cmd.arg("--dry-run");
    }
    if delete_untagged {
        cmd.arg("--delete-untagged");
    }
    cmd.arg(config_path);
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "library/hello\n\
library/hello: marking manifest sha256:aa \n\
library/hello: marking blob sha256:bb\n\
team/web\n\
manifest eligible for deletion: sha256:cc\n\
team/web: marking manifest sha256:dd \n\
team/web: marking blob sha256:cc\n\
\n\
3 blobs marked, 2 blobs and 1 manifests eligible for deletion\n\
blob eligible for deletion: sha256:ff\n\
blob eligible for deletion: sha256:ee\n";

    #[test]
    fn parses_dry_run_output() {
        let o = GcOutput::parse(SAMPLE);
        assert_eq!(o.repositories, vec!["library/hello", "team/web"]);
        assert_eq!(
            o.eligible_blobs,
            BTreeSet::from(["sha256:ee".to_string(), "sha256:ff".to_string()])
        );
        assert_eq!(
            o.eligible_manifests,
            BTreeSet::from(["sha256:cc".to_string()])
        );
        assert_eq!(
            o.eligible_manifests_by_repo["team/web"],
            BTreeSet::from(["sha256:cc".to_string()])
        );
        assert_eq!(
            o.marked_manifests,
            BTreeSet::from(["sha256:aa".to_string(), "sha256:dd".to_string()])
        );
        assert_eq!(
            o.summary,
            Some(GcSummary {
                marked: 3,
                blobs_eligible: 2,
                manifests_eligible: 1
            })
        );
    }

    #[test]
    fn stable_stdout_sorts_blob_lines_only() {
        let s = stable_gc_stdout(SAMPLE);
        assert!(s.ends_with(
            "blob eligible for deletion: sha256:ee\nblob eligible for deletion: sha256:ff\n"
        ));
        assert!(s.starts_with("library/hello\n"));
    }
}
