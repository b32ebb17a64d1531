//! Reading the `storage:` section of a distribution registry's `config.yml`.
//!
//! Operators already have the file that says where the registry's storage is; reading it
//! avoids retyping bucket, region, endpoint and root directory (and getting one wrong). Only
//! the `filesystem` and `s3` drivers are understood; any other driver is an error naming it.
//! Storage options that are not drivers (`delete`, `cache`, `redirect`, `maintenance`, `tag`)
//! and everything outside `storage:` are ignored. Values are read leniently, as the registry's
//! own loader does: `secure: false`, `secure: "false"` and `bucket: 1234` all work.
//!
//! Mapping to [`S3Config`] ([`RegistryStorage::to_s3_config`]): `regionendpoint` without a
//! scheme gets `https://`, or `http://` when `secure` is false; path-style addressing is used
//! when `forcepathstyle` says so, and otherwise whenever `regionendpoint` is set, because
//! distribution 2.8's driver sets `S3ForcePathStyle` exactly when `regionendpoint` is set and
//! S3-compatible servers (MinIO, Ceph RGW, …) mostly need it.

use crate::config::{S3Config, StaticCredentials};
use serde_norway::Value;
use std::path::Path;

/// Storage options that sit beside the driver in `storage:` but are not drivers.
const NOT_DRIVERS: &[&str] = &["delete", "cache", "redirect", "maintenance", "tag"];

/// Names of the S3 driver across distribution versions.
const S3_DRIVERS: &[&str] = &["s3", "s3aws", "s3-aws"];

/// The default `rootdirectory` of the filesystem driver.
pub const DEFAULT_FILESYSTEM_ROOT: &str = "/var/lib/registry";

/// The storage a registry config names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryStorage {
    /// The `filesystem` driver.
    Filesystem {
        /// Its root directory (default `/var/lib/registry`).
        rootdirectory: String,
    },
    /// The `s3` driver.
    S3 {
        /// Bucket.
        bucket: String,
        /// Region, if given.
        region: Option<String>,
        /// S3-compatible endpoint, if given.
        regionendpoint: Option<String>,
        /// Root directory in the bucket (as written, e.g. `/registry`; empty when absent).
        rootdirectory: String,
        /// Access key, if given (otherwise the AWS default chain).
        accesskey: Option<String>,
        /// Secret key, if given.
        secretkey: Option<String>,
        /// Whether to use HTTPS (default true).
        secure: bool,
        /// Explicit path-style setting, if given.
        forcepathstyle: Option<bool>,
    },
}

/// A registry config that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("registry config is not valid YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    /// No `storage:` section, or no driver in it.
    #[error("registry config has no storage driver (expected storage.filesystem or storage.s3)")]
    NoDriver,
    /// More than one driver.
    #[error("registry config names several storage drivers: {0}")]
    SeveralDrivers(String),
    /// A driver gc-audit cannot read.
    #[error("storage driver {0:?} is not supported: gc-audit reads the filesystem and s3 drivers")]
    UnsupportedDriver(String),
    /// A required or malformed parameter.
    #[error("storage.{driver}.{param}: {reason}")]
    Parameter {
        /// Driver.
        driver: String,
        /// Parameter.
        param: String,
        /// What is wrong.
        reason: String,
    },
}

impl RegistryStorage {
    /// Read and parse a registry config file.
    pub fn from_file(path: &Path) -> Result<Self, RegistryConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// Parse the text of a registry config.
    pub fn from_yaml(text: &str) -> Result<Self, RegistryConfigError> {
        let doc: Value = serde_norway::from_str(text)?;
        let storage = get(&doc, "storage").ok_or(RegistryConfigError::NoDriver)?;
        let Value::Mapping(map) = storage else {
            return Err(RegistryConfigError::NoDriver);
        };
        let drivers: Vec<(String, &Value)> = map
            .iter()
            .filter_map(|(k, v)| scalar(k).map(|k| (k, v)))
            .filter(|(k, _)| !NOT_DRIVERS.contains(&k.to_ascii_lowercase().as_str()))
            .collect();
        let (name, params) = match drivers.as_slice() {
            [] => return Err(RegistryConfigError::NoDriver),
            [one] => one,
            many => {
                let names: Vec<&str> = many.iter().map(|(k, _)| k.as_str()).collect();
                return Err(RegistryConfigError::SeveralDrivers(names.join(", ")));
            }
        };
        let lower = name.to_ascii_lowercase();
        let param = |p: &str| get(params, p).and_then(scalar).filter(|s| !s.is_empty());
        if lower == "filesystem" {
            return Ok(RegistryStorage::Filesystem {
                rootdirectory: param("rootdirectory")
                    .unwrap_or_else(|| DEFAULT_FILESYSTEM_ROOT.to_string()),
            });
        }
        if !S3_DRIVERS.contains(&lower.as_str()) {
            return Err(RegistryConfigError::UnsupportedDriver(name.clone()));
        }
        let bool_param = |p: &str| -> Result<Option<bool>, RegistryConfigError> {
            match param(p) {
                None => Ok(None),
                Some(v) => parse_bool(&v)
                    .map(Some)
                    .ok_or_else(|| RegistryConfigError::Parameter {
                        driver: name.clone(),
                        param: p.to_string(),
                        reason: format!("{v:?} is not a boolean"),
                    }),
            }
        };
        let bucket = param("bucket").ok_or_else(|| RegistryConfigError::Parameter {
            driver: name.clone(),
            param: "bucket".to_string(),
            reason: "required".to_string(),
        })?;
        Ok(RegistryStorage::S3 {
            bucket,
            region: param("region"),
            regionendpoint: param("regionendpoint"),
            rootdirectory: param("rootdirectory").unwrap_or_default(),
            accesskey: param("accesskey"),
            secretkey: param("secretkey"),
            secure: bool_param("secure")?.unwrap_or(true),
            forcepathstyle: bool_param("forcepathstyle")?,
        })
    }

    /// The [`S3Config`] of an `s3` storage (`None` for a filesystem).
    pub fn to_s3_config(&self) -> Option<S3Config> {
        let RegistryStorage::S3 {
            bucket,
            region,
            regionendpoint,
            rootdirectory,
            accesskey,
            secretkey,
            secure,
            forcepathstyle,
        } = self
        else {
            return None;
        };
        let mut cfg = S3Config::new(bucket.clone(), rootdirectory);
        cfg.region = region.clone();
        cfg.endpoint_url = regionendpoint.as_ref().map(|e| {
            if e.contains("://") {
                e.clone()
            } else if *secure {
                format!("https://{e}")
            } else {
                format!("http://{e}")
            }
        });
        cfg.force_path_style = forcepathstyle.unwrap_or(regionendpoint.is_some());
        if let (Some(access_key), Some(secret_key)) = (accesskey, secretkey) {
            cfg.static_credentials = Some(StaticCredentials {
                access_key: access_key.clone(),
                secret_key: secret_key.clone(),
            });
        }
        Some(cfg)
    }
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Mapping(m) => m
            .iter()
            .find(|(k, _)| scalar(k).is_some_and(|k| k.eq_ignore_ascii_case(key)))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// A scalar as text: strings, numbers and booleans alike.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Tagged(t) => scalar(&t.value),
        _ => None,
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    // The spellings Go's strconv.ParseBool accepts, which is what distribution uses.
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIO: &str = r#"
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
  s3:
    accesskey: minioadmin
    secretkey: minioadmin
    region: us-east-1
    regionendpoint: minio.internal:9000
    bucket: docker-registry
    rootdirectory: /registry/v2root
    secure: "false"
    v4auth: true
    chunksize: 5242880
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
"#;

    #[test]
    fn s3_behind_minio() {
        let storage = RegistryStorage::from_yaml(MINIO).expect("parse");
        assert_eq!(
            storage,
            RegistryStorage::S3 {
                bucket: "docker-registry".into(),
                region: Some("us-east-1".into()),
                regionendpoint: Some("minio.internal:9000".into()),
                rootdirectory: "/registry/v2root".into(),
                accesskey: Some("minioadmin".into()),
                secretkey: Some("minioadmin".into()),
                secure: false,
                forcepathstyle: None,
            }
        );
        let cfg = storage.to_s3_config().expect("s3");
        assert_eq!(cfg.root, "registry/v2root");
        assert_eq!(
            cfg.endpoint_url.as_deref(),
            Some("http://minio.internal:9000")
        );
        assert!(cfg.force_path_style);
        assert_eq!(cfg.location(), "s3://docker-registry/registry/v2root");
        assert!(cfg.static_credentials.is_some());
    }

    #[test]
    fn s3_on_aws_uses_the_default_chain() {
        let yaml = "storage:\n  s3:\n    region: eu-west-1\n    bucket: reg\n    secure: true\n";
        let cfg = RegistryStorage::from_yaml(yaml)
            .expect("parse")
            .to_s3_config()
            .expect("s3");
        assert_eq!(cfg.region.as_deref(), Some("eu-west-1"));
        assert_eq!(cfg.root, "");
        assert!(cfg.endpoint_url.is_none());
        assert!(!cfg.force_path_style);
        assert!(cfg.static_credentials.is_none());
    }

    #[test]
    fn explicit_path_style_wins_and_bools_are_lenient() {
        let yaml = "storage:\n  s3:\n    bucket: 12345\n    regionendpoint: https://s3.example.com\n    forcepathstyle: false\n    secure: False\n";
        let storage = RegistryStorage::from_yaml(yaml).expect("parse");
        let cfg = storage.to_s3_config().expect("s3");
        assert_eq!(cfg.bucket, "12345");
        assert_eq!(cfg.endpoint_url.as_deref(), Some("https://s3.example.com"));
        assert!(!cfg.force_path_style);
        let bad = "storage:\n  s3:\n    bucket: b\n    secure: perhaps\n";
        assert!(matches!(
            RegistryStorage::from_yaml(bad),
            Err(RegistryConfigError::Parameter { .. })
        ));
    }

    #[test]
    fn filesystem_with_and_without_root() {
        let yaml = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /srv/registry\n  delete:\n    enabled: true\n";
        assert_eq!(
            RegistryStorage::from_yaml(yaml).expect("parse"),
            RegistryStorage::Filesystem {
                rootdirectory: "/srv/registry".into()
            }
        );
        let bare = "storage:\n  filesystem: {}\n";
        assert_eq!(
            RegistryStorage::from_yaml(bare).expect("parse"),
            RegistryStorage::Filesystem {
                rootdirectory: DEFAULT_FILESYSTEM_ROOT.into()
            }
        );
    }

    #[test]
    fn other_drivers_are_named_in_the_error() {
        for driver in ["gcs", "azure", "inmemory", "swift", "oss"] {
            let yaml = format!(
                "storage:\n  {driver}:\n    bucket: b\n  cache:\n    blobdescriptor: redis\n"
            );
            let err = RegistryStorage::from_yaml(&yaml).expect_err(driver);
            assert!(err.to_string().contains(driver), "{err}");
        }
        assert!(matches!(
            RegistryStorage::from_yaml("version: 0.1\nhttp:\n  addr: :5000\n"),
            Err(RegistryConfigError::NoDriver)
        ));
        assert!(matches!(
            RegistryStorage::from_yaml("storage:\n  s3:\n    region: x\n"),
            Err(RegistryConfigError::Parameter { .. })
        ));
        assert!(matches!(
            RegistryStorage::from_yaml("storage:\n  s3: {bucket: a}\n  filesystem: {}\n"),
            Err(RegistryConfigError::SeveralDrivers(_))
        ));
    }
}
