//! `recover.sh`: a recovery plan as shell commands for the operator to read and run.
//!
//! `set -euo pipefail`; every step checks first whether its key already holds what it must, so
//! running the script twice is harmless (a delete marker removed once is not removed again, a
//! copy made is not made again); every step prints what it does. S3 steps use `aws s3api` /
//! `aws s3 cp` with the endpoint and region the plan was made against; filesystem steps use
//! `mkdir -p` and `cp -p`. Keys are restored in key order: blob data before the links that
//! point at them, as a push writes them.

use crate::config::Location;
use anyhow::Result;
use gc_core::recover::{Action, RecoveryPlan};
use gc_s3::S3Config;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Where the plan's keys live: the audited storage and the `--from` copy.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    dest: Place,
    from: Option<Place>,
}

#[derive(Debug, Clone)]
enum Place {
    Fs(PathBuf),
    S3(Box<S3Config>),
}

impl Place {
    fn of(location: &Location) -> Result<Place> {
        Ok(match location {
            Location::Fs(p) => Place::Fs(std::path::absolute(p)?),
            Location::S3(cfg) => Place::S3(cfg.clone()),
        })
    }

    /// The object key (S3: with the root directory) or the path under the root.
    fn key(&self, key: &str) -> String {
        match self {
            Place::S3(cfg) if !cfg.root.is_empty() => format!("{}/{key}", cfg.root),
            _ => key.to_string(),
        }
    }

    fn location(&self) -> String {
        match self {
            Place::Fs(p) => p.display().to_string(),
            Place::S3(cfg) if cfg.root.is_empty() => format!("s3://{}", cfg.bucket),
            Place::S3(cfg) => format!("s3://{}/{}", cfg.bucket, cfg.root),
        }
    }
}

impl Target {
    pub(crate) fn of(location: &Location, from: Option<&Location>) -> Result<Target> {
        Ok(Target {
            dest: Place::of(location)?,
            from: from.map(Place::of).transpose()?,
        })
    }

    /// The audited bucket, for S3.
    pub(crate) fn bucket(&self) -> Option<&str> {
        match &self.dest {
            Place::S3(cfg) => Some(&cfg.bucket),
            Place::Fs(_) => None,
        }
    }

    /// `--from` as shown.
    pub(crate) fn backup_location(&self) -> String {
        self.from.as_ref().map(Place::location).unwrap_or_default()
    }

    fn s3_configs(&self) -> impl Iterator<Item = &S3Config> {
        [Some(&self.dest), self.from.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|p| match p {
                Place::S3(c) => Some(&**c),
                Place::Fs(_) => None,
            })
    }
}

/// The full key of a driver-relative key in the audited storage.
pub(crate) fn full_key(target: &Target, key: &str) -> String {
    target.dest.key(key)
}

/// Percent-encode everything but unreserved characters (and `/` unless `slash`).
pub(crate) fn url_encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !slash => out.push('/'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// A word for the shell, single-quoted.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

const S3_FUNCTIONS: &str = r#"
s3api() { aws s3api "$@" "${AWS_ARGS[@]}"; }

# The key's current ETag (no quotes), or nothing when it has no current version.
current_etag() {
  local etag
  etag=$(s3api head-object --bucket "$1" --key "$2" --query ETag --output text 2>/dev/null) || return 0
  printf '%s' "${etag//\"/}"
}

# Remove the delete marker $3 over s3://$1/$2, unless the key is back already.
remove_marker() {
  if [ -n "$(current_etag "$1" "$2")" ]; then
    echo "present, skipped: s3://$1/$2"
    return
  fi
  echo "removing delete marker $3: s3://$1/$2"
  s3api delete-object --bucket "$1" --key "$2" --version-id "$3" >/dev/null
}

# Copy version $3 (ETag $4) of s3://$1/$2 over it, unless it holds that version's ETag.
copy_version() {
  if [ -n "$4" ] && [ "$(current_etag "$1" "$2")" = "$4" ]; then
    echo "present, skipped: s3://$1/$2"
    return
  fi
  echo "copying version $3 over s3://$1/$2"
  s3api copy-object --bucket "$1" --key "$2" --copy-source "$1/$5?versionId=$3" >/dev/null
}
"#;

const FS_TO_FS: &str = r#"
# Copy $1 to $2 (mkdir -p its directory), unless $2 holds the same bytes.
copy_file() {
  if [ -f "$2" ] && cmp -s "$1" "$2"; then
    echo "present, skipped: $2"
    return
  fi
  echo "copying $1 -> $2"
  mkdir -p "$(dirname "$2")"
  cp -p "$1" "$2"
}
"#;

const S3_COPY: &str = r#"
# Copy $1 to $2 with aws s3 cp (either may be s3://), unless $2 is an object or file of size $3.
copy_s3() {
  local size=""
  case "$2" in
    s3://*) local rest=${2#s3://}
            size=$(s3api head-object --bucket "${rest%%/*}" --key "${rest#*/}" --query ContentLength --output text 2>/dev/null || true) ;;
    *) [ -f "$2" ] && size=$(stat -c %s "$2") ;;
  esac
  if [ "$size" = "$3" ]; then
    echo "present, skipped: $2"
    return
  fi
  echo "copying $1 -> $2"
  case "$2" in s3://*) ;; *) mkdir -p "$(dirname "$2")" ;; esac
  aws s3 cp "$1" "$2" "${AWS_ARGS[@]}" --only-show-errors
}
"#;

/// The script.
pub(crate) fn render(plan: &RecoveryPlan, target: &Target) -> String {
    let mut o = String::new();
    let planned = plan.planned().count();
    let _ = writeln!(o, "#!/usr/bin/env bash");
    let _ = writeln!(o, "# gc-audit recover plan for {}", target.dest.location());
    if let Some(from) = &target.from {
        let _ = writeln!(o, "# restoring from {}", from.location());
    }
    let _ = writeln!(
        o,
        "# {planned} keys to restore, {} unrecoverable (see recover.csv). Each step checks first:\n# running this twice is harmless. Read it before you run it.",
        plan.rows.len() - planned
    );
    let _ = writeln!(o, "set -euo pipefail");
    let s3 = target.s3_configs().next();
    let mut aws_args = Vec::new();
    if let Some(cfg) = s3 {
        if let Some(e) = &cfg.endpoint_url {
            aws_args.push(format!("--endpoint-url {}", q(e)));
        }
        if let Some(r) = &cfg.region {
            aws_args.push(format!("--region {}", q(r)));
        }
        if let Some(p) = &cfg.profile {
            aws_args.push(format!("--profile {}", q(p)));
        }
        let _ = writeln!(o, "AWS_ARGS=({})", aws_args.join(" "));
        o.push_str(S3_FUNCTIONS);
    }
    let needs = |a: Action| plan.rows.iter().any(|r| r.action == a);
    let fs_to_fs = matches!(
        (&target.dest, &target.from),
        (Place::Fs(_), Some(Place::Fs(_)))
    );
    if needs(Action::CopyFrom) {
        o.push_str(if fs_to_fs { FS_TO_FS } else { S3_COPY });
    }
    let _ = writeln!(o);
    let dest_path = |key: &str| match &target.dest {
        Place::Fs(root) => root.join(key).display().to_string(),
        Place::S3(cfg) => format!("s3://{}/{}", cfg.bucket, target.dest.key(key)),
    };
    for r in &plan.rows {
        let key = target.dest.key(&r.key);
        match r.action {
            Action::RemoveDeleteMarker => {
                if let Some(bucket) = target.bucket() {
                    let _ = writeln!(
                        o,
                        "remove_marker {} {} {}",
                        q(bucket),
                        q(&key),
                        q(&r.version_id)
                    );
                }
            }
            Action::CopyVersion => {
                if let Some(bucket) = target.bucket() {
                    let etag = r.source_e_tag.as_deref().unwrap_or("").trim_matches('"');
                    let _ = writeln!(
                        o,
                        "copy_version {} {} {} {} {}",
                        q(bucket),
                        q(&key),
                        q(&r.version_id),
                        q(etag),
                        q(&url_encode(&key, false))
                    );
                }
            }
            Action::CopyFrom => {
                let Some(from) = &target.from else { continue };
                let src = match from {
                    Place::Fs(root) => root.join(&r.key).display().to_string(),
                    Place::S3(cfg) => format!("s3://{}/{}", cfg.bucket, from.key(&r.key)),
                };
                let dst = dest_path(&r.key);
                if fs_to_fs {
                    let _ = writeln!(o, "copy_file {} {}", q(&src), q(&dst));
                } else {
                    let size = r.size.map(|s| s.to_string()).unwrap_or_default();
                    let _ = writeln!(o, "copy_s3 {} {} {}", q(&src), q(&dst), q(&size));
                }
            }
            Action::Unrecoverable => {
                let why = r.source.replace('\n', " ");
                let _ = writeln!(
                    o,
                    "# unrecoverable: {} (needed by {}): {why}",
                    key, r.needed_by
                );
            }
        }
    }
    let _ = writeln!(o, "echo \"recover.sh: {planned} keys checked or restored\"");
    o
}
