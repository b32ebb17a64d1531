//! Reading the `storage:` section of a distribution registry's `config.yml`, with the
//! `REGISTRY_STORAGE_*` environment overrides applied as the registry applies them.
//!
//! Operators already have the file that says where the registry's storage is; reading it
//! avoids retyping bucket, region, endpoint and root directory (and getting one wrong). Only
//! the `filesystem` and `s3` drivers are understood; any other driver is an error naming it.
//! Storage options that are not drivers (`delete`, `cache`, `redirect`, `maintenance`, `tag`)
//! and everything outside `storage:` are ignored. Values are read leniently, as the registry's
//! own loader does: `secure: false`, `secure: "false"` and `bucket: 1234` all work.
//!
//! # Environment overrides
//!
//! Deployments (Helm charts above all) put the bucket and the keys in the environment rather
//! than the file, so reading the file alone audits the wrong place or with the wrong keys.
//! [`RegistryConfig::parse`] applies the overrides the way distribution v2.8.3 does in
//! `configuration/parser.go` (`Parser.Parse`, `overwriteStruct`, `overwriteMap`;
//! <https://github.com/distribution/distribution/blob/v2.8.3/configuration/parser.go>):
//!
//! - a variable applies when its name starts with `REGISTRY_` (case-sensitive); the rest of
//!   the name, split at `_`, is the path (`REGISTRY_STORAGE_S3_BUCKET` → `storage`, `s3`,
//!   `bucket`); only paths under `STORAGE` matter here;
//! - variables are applied in the lexical order of their names, so `REGISTRY_STORAGE` comes
//!   before `REGISTRY_STORAGE_S3_BUCKET`;
//! - a path component matches an existing key when the key upper-cased equals it; a key that
//!   does not exist (or holds nothing) is created lower-cased, and the last component's value
//!   replaces what was there;
//! - the value is parsed as YAML (`false` is a boolean, `1234` a number, `a: b` a mapping);
//! - `REGISTRY_STORAGE=s3` replaces the whole `storage` section by `{s3: {}}`, dropping what
//!   the file had there (the registry unmarshals the value into the `Storage` field);
//! - a variable that adds a second driver (`REGISTRY_STORAGE_S3_BUCKET` beside a file's
//!   `filesystem:`) is an error, as the registry refuses to start with two drivers.
//!
//! Parameter names are then read exactly as the drivers read them: `parameters["bucket"]`,
//! lower case. A key under `storage.<driver>` that the driver does not read (`rootdir`,
//! `Bucket`) is ignored by the registry, so it is reported as a [`ConfigWarning::UnknownKey`]
//! naming the file (or the variable) and the nearest known key. A setting left out for which
//! gc-audit uses a default (no `region`, no `rootdirectory`) is a [`ConfigWarning::Default`].
//! Warnings and errors never include a parameter's value, so secrets are never printed.
//!
//! # Mapping to [`S3Config`]
//!
//! [`RegistryStorage::to_s3_config`]: `regionendpoint` without a scheme gets `https://`, or
//! `http://` when `secure` is false; path-style addressing is used when `forcepathstyle` says
//! so, and otherwise whenever `regionendpoint` is set, because distribution 2.8's driver sets
//! `S3ForcePathStyle` exactly when `regionendpoint` is set and S3-compatible servers (MinIO,
//! Ceph RGW, …) mostly need it.

use crate::config::{S3Config, StaticCredentials};
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Storage options that sit beside the driver in `storage:` but are not drivers.
const NOT_DRIVERS: &[&str] = &["delete", "cache", "redirect", "maintenance", "tag"];

/// Names of the S3 driver across distribution versions.
const S3_DRIVERS: &[&str] = &["s3", "s3aws", "s3-aws"];

/// The parameters the s3 driver reads, each as `parameters["…"]` or
/// `getParameterAsInt64(parameters, "…")` in `FromParameters` of
/// `registry/storage/driver/s3-aws/s3.go`: at v2.8.3, followed by those distribution 3
/// (v3.1.1) added, so that a v3 config raises no warning.
pub const S3_PARAMETERS: &[&str] = &[
    // v2.8.3
    "accesskey",
    "secretkey",
    "regionendpoint",
    "region",
    "bucket",
    "encrypt",
    "secure",
    "skipverify",
    "v4auth",
    "keyid",
    "chunksize",
    "multipartcopychunksize",
    "multipartcopymaxconcurrency",
    "multipartcopythresholdsize",
    "rootdirectory",
    "storageclass",
    "useragent",
    "objectacl",
    // v3.1.1
    "forcepathstyle",
    "accelerate",
    "usedualstack",
    "usefipsendpoint",
    "loglevel",
];

/// The parameters the filesystem driver reads (`registry/storage/driver/filesystem/driver.go`,
/// v2.8.3 and v3.1.1 alike).
pub const FILESYSTEM_PARAMETERS: &[&str] = &["rootdirectory", "maxthreads"];

/// The default `rootdirectory` of the filesystem driver.
pub const DEFAULT_FILESYSTEM_ROOT: &str = "/var/lib/registry";

/// The prefix of the variables the registry reads its configuration from.
const ENV_PREFIX: &str = "REGISTRY_";

/// The storage a registry config names. `Debug` shows the secret key as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
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

impl fmt::Debug for RegistryStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryStorage::Filesystem { rootdirectory } => f
                .debug_struct("Filesystem")
                .field("rootdirectory", rootdirectory)
                .finish(),
            RegistryStorage::S3 {
                bucket,
                region,
                regionendpoint,
                rootdirectory,
                accesskey,
                secretkey,
                secure,
                forcepathstyle,
            } => f
                .debug_struct("S3")
                .field("bucket", bucket)
                .field("region", region)
                .field("regionendpoint", regionendpoint)
                .field("rootdirectory", rootdirectory)
                .field("accesskey", accesskey)
                .field("secretkey", &secretkey.as_ref().map(|_| "<redacted>"))
                .field("secure", secure)
                .field("forcepathstyle", forcepathstyle)
                .finish(),
        }
    }
}

/// Something in a registry config that the registry reads differently from what its author
/// probably meant, or a setting gc-audit had to fill in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigWarning {
    /// A key under `storage.<driver>` that the driver does not read (the registry ignores it).
    UnknownKey {
        /// Where the key comes from: the config file's path, or `environment variable NAME`.
        source: String,
        /// The driver, as written.
        driver: String,
        /// The key, as written.
        key: String,
        /// The known parameter it most resembles, if any is close.
        nearest: Option<&'static str>,
    },
    /// A setting the config leaves out, and what is used instead.
    Default {
        /// The setting, e.g. `storage.s3.region`.
        setting: String,
        /// The parameter's name alone, e.g. `region` (so that a caller overriding it by other
        /// means can drop the warning).
        parameter: &'static str,
        /// What is used instead.
        used: String,
    },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigWarning::UnknownKey {
                source,
                driver,
                key,
                nearest,
            } => {
                write!(
                    f,
                    "{source}: unknown key storage.{driver}.{key}, which the registry ignores"
                )?;
                match nearest {
                    Some(n) => write!(f, " (did you mean {n}?)"),
                    None => Ok(()),
                }
            }
            ConfigWarning::Default { setting, used, .. } => {
                write!(f, "{setting} is not set: {used}")
            }
        }
    }
}

/// A registry config read with its environment overrides: the storage and the warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// The storage the registry would use.
    pub storage: RegistryStorage,
    /// Unknown keys and filled-in defaults, in the order found.
    pub warnings: Vec<ConfigWarning>,
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
    /// An environment override whose value is not YAML (the value is not shown: it may be a
    /// secret).
    #[error(
        "environment variable {name}: the value is not valid YAML, so the registry would refuse it"
    )]
    EnvYaml {
        /// The variable.
        name: String,
    },
    /// No `storage:` section, or no driver in it.
    #[error("registry config has no storage driver (expected storage.filesystem or storage.s3)")]
    NoDriver,
    /// More than one driver (in the file, or once the environment is applied).
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

impl RegistryConfig {
    /// Read a registry config file and apply this process's `REGISTRY_*` environment, as the
    /// registry started with this environment would.
    pub fn from_file(path: &Path) -> Result<Self, RegistryConfigError> {
        Self::from_file_with_env(
            path,
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Read a registry config file and apply the `REGISTRY_*` variables of `env`.
    pub fn from_file_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, RegistryConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), env)
    }

    /// Parse the text of a registry config (`source` names it in warnings) and apply the
    /// `REGISTRY_*` variables of `env`.
    pub fn parse(
        text: &str,
        source: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, RegistryConfigError> {
        let doc: Value = serde_norway::from_str(text)?;
        let mut storage = match get(&doc, "storage") {
            Some(Value::Mapping(m)) => m.clone(),
            // `storage: s3` is a driver without parameters, as the registry reads it.
            Some(v) => match scalar(v) {
                Some(name) => single_driver(name),
                None => Mapping::new(),
            },
            None => Mapping::new(),
        };
        let origins = apply_env(&mut storage, env)?;
        let drivers: Vec<(String, &Value)> = storage
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
        let empty = Value::Mapping(Mapping::new());
        let params = if params.is_null() { &empty } else { params };
        let lower = name.to_ascii_lowercase();
        let known = if lower == "filesystem" {
            FILESYSTEM_PARAMETERS
        } else if S3_DRIVERS.contains(&lower.as_str()) {
            S3_PARAMETERS
        } else {
            return Err(RegistryConfigError::UnsupportedDriver(name.clone()));
        };
        let mut warnings = unknown_keys(name, params, known, source, &origins);
        let storage = read_driver(name, &lower, params, &mut warnings)?;
        Ok(RegistryConfig { storage, warnings })
    }
}

/// `{name: {}}`: a driver without parameters.
fn single_driver(name: String) -> Mapping {
    let mut m = Mapping::new();
    m.insert(Value::String(name), Value::Mapping(Mapping::new()));
    m
}

/// Apply the `REGISTRY_STORAGE*` variables of `env` to the `storage` section, as
/// distribution's `Parser.Parse` does (see the module documentation). Returns, per
/// `(driver, key)` an override set, the variable that set it.
fn apply_env(
    storage: &mut Mapping,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<(String, String), String>, RegistryConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    let mut origins = BTreeMap::new();
    for (name, value) in vars {
        let path: Vec<&str> = name.split('_').skip(1).collect();
        if path.first() != Some(&"STORAGE") {
            continue;
        }
        let payload = || -> Result<Value, RegistryConfigError> {
            serde_norway::from_str(&value)
                .map_err(|_| RegistryConfigError::EnvYaml { name: name.clone() })
        };
        if path.len() == 1 {
            *storage = match payload()? {
                Value::Mapping(m) => m,
                Value::Null => Mapping::new(),
                v => match scalar(&v) {
                    Some(driver) => single_driver(driver),
                    None => return Err(RegistryConfigError::EnvYaml { name }),
                },
            };
            continue;
        }
        if path.len() == 3 {
            origins.insert(
                (path[1].to_ascii_lowercase(), path[2].to_ascii_lowercase()),
                name.clone(),
            );
        }
        overwrite_map(storage, &path[1..], payload()?);
    }
    Ok(origins)
}

/// distribution's `overwriteMap`: follow `path` through existing keys (matched upper-cased),
/// creating lower-cased keys where none matches, and set the last one to `value`. A path that
/// runs into a scalar is ignored, as the registry ignores it.
fn overwrite_map(map: &mut Mapping, path: &[&str], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if !rest.is_empty() {
        let existing = map.iter_mut().find(|(k, v)| {
            !v.is_null() && scalar(k).is_some_and(|k| k.to_ascii_uppercase() == *first)
        });
        if let Some((_, v)) = existing {
            if let Value::Mapping(inner) = v {
                overwrite_map(inner, rest, value);
            }
            return;
        }
    }
    let new = if rest.is_empty() {
        value
    } else {
        let mut inner = Mapping::new();
        overwrite_map(&mut inner, rest, value);
        Value::Mapping(inner)
    };
    map.insert(Value::String(first.to_ascii_lowercase()), new);
}

/// The keys of `params` that the driver does not read, each with the nearest known key.
fn unknown_keys(
    driver: &str,
    params: &Value,
    known: &'static [&'static str],
    source: &str,
    origins: &BTreeMap<(String, String), String>,
) -> Vec<ConfigWarning> {
    let Value::Mapping(map) = params else {
        return Vec::new();
    };
    map.keys()
        .filter_map(scalar)
        .filter(|k| !known.contains(&k.as_str()))
        .map(|key| {
            let origin = origins
                .get(&(driver.to_ascii_lowercase(), key.clone()))
                .map(|var| format!("environment variable {var}"))
                .unwrap_or_else(|| source.to_string());
            ConfigWarning::UnknownKey {
                source: origin,
                driver: driver.to_string(),
                nearest: nearest(&key, known),
                key,
            }
        })
        .collect()
}

/// The known key `key` most resembles: the same key in another case, else the closest by
/// Jaro-Winkler similarity (which weighs a common start), where a known key that starts with
/// `key` (an abbreviation: `rootdir`) counts as 0.95; none below 0.8.
fn nearest(key: &str, known: &'static [&'static str]) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    if let Some(k) = known.iter().find(|k| **k == key) {
        return Some(k);
    }
    known
        .iter()
        .map(|k| {
            let similarity = strsim::jaro_winkler(&key, k);
            let score = if key.len() >= 3 && k.starts_with(key.as_str()) {
                similarity.max(0.95)
            } else {
                similarity
            };
            (score, *k)
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// Read the driver's parameters, exactly as the driver looks them up.
fn read_driver(
    name: &str,
    lower: &str,
    params: &Value,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<RegistryStorage, RegistryConfigError> {
    let param = |p: &str| exact(params, p).and_then(scalar).filter(|s| !s.is_empty());
    let mut default = |parameter: &'static str, used: String| {
        warnings.push(ConfigWarning::Default {
            setting: format!("storage.{name}.{parameter}"),
            parameter,
            used,
        })
    };
    if lower == "filesystem" {
        let rootdirectory = param("rootdirectory").unwrap_or_else(|| {
            default(
                "rootdirectory",
                format!("using the driver's default {DEFAULT_FILESYSTEM_ROOT}"),
            );
            DEFAULT_FILESYSTEM_ROOT.to_string()
        });
        return Ok(RegistryStorage::Filesystem { rootdirectory });
    }
    let bool_param = |p: &str| -> Result<Option<bool>, RegistryConfigError> {
        match param(p) {
            None => Ok(None),
            Some(v) => parse_bool(&v)
                .map(Some)
                .ok_or_else(|| RegistryConfigError::Parameter {
                    driver: name.to_string(),
                    param: p.to_string(),
                    reason: format!("{v:?} is not a boolean"),
                }),
        }
    };
    let bucket = param("bucket").ok_or_else(|| RegistryConfigError::Parameter {
        driver: name.to_string(),
        param: "bucket".to_string(),
        reason: "required".to_string(),
    })?;
    let regionendpoint = param("regionendpoint");
    let region = param("region");
    if region.is_none() {
        let used = if regionendpoint.is_some() {
            "using the region of the AWS environment or profile, else us-east-1 (the \
            registry itself refuses to start without one)"
        } else {
            "using the region of the AWS environment or profile (the registry itself refuses \
            to start without one)"
        };
        default("region", used.to_string());
    }
    let rootdirectory = param("rootdirectory").unwrap_or_else(|| {
        default(
            "rootdirectory",
            format!("auditing from the top of bucket {bucket}"),
        );
        String::new()
    });
    let secure = bool_param("secure")?;
    if secure.is_none() && regionendpoint.as_ref().is_some_and(|e| !e.contains("://")) {
        default(
            "secure",
            "using https for the regionendpoint, as the driver does".to_string(),
        );
    }
    Ok(RegistryStorage::S3 {
        bucket,
        region,
        regionendpoint,
        rootdirectory,
        accesskey: param("accesskey"),
        secretkey: param("secretkey"),
        secure: secure.unwrap_or(true),
        forcepathstyle: bool_param("forcepathstyle")?,
    })
}

impl RegistryStorage {
    /// Parse the text of a registry config, without environment overrides, and drop the
    /// warnings ([`RegistryConfig::parse`] keeps them and applies the environment).
    pub fn from_yaml(text: &str) -> Result<Self, RegistryConfigError> {
        RegistryConfig::parse(text, "registry config", std::iter::empty()).map(|c| c.storage)
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

/// The value of `key` in a mapping, the key matched case-insensitively (how the sections above
/// the driver are read).
fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Mapping(m) => m
            .iter()
            .find(|(k, _)| scalar(k).is_some_and(|k| k.eq_ignore_ascii_case(key)))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// The value of `key` in a mapping, matched exactly (how a driver reads its parameters).
fn exact<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Mapping(m) => m.get(key),
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

    /// `NAME=value` pairs as an environment.
    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(yaml: &str, vars: &[(&str, &str)]) -> Result<RegistryConfig, RegistryConfigError> {
        RegistryConfig::parse(yaml, "/etc/docker/registry/config.yml", env(vars))
    }

    fn texts(warnings: &[ConfigWarning]) -> Vec<String> {
        warnings.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn environment_overrides_every_s3_setting_as_the_registry_does() {
        let config = parse(
            MINIO,
            &[
                ("REGISTRY_STORAGE_S3_BUCKET", "from-env"),
                ("REGISTRY_STORAGE_S3_REGION", "eu-central-1"),
                ("REGISTRY_STORAGE_S3_REGIONENDPOINT", "s3.internal:9000"),
                ("REGISTRY_STORAGE_S3_ROOTDIRECTORY", "/env/root"),
                ("REGISTRY_STORAGE_S3_ACCESSKEY", "AK-ENV"),
                ("REGISTRY_STORAGE_S3_SECRETKEY", "SK-ENV"),
                ("REGISTRY_STORAGE_S3_SECURE", "true"),
                ("REGISTRY_STORAGE_S3_FORCEPATHSTYLE", "false"),
                ("REGISTRY_STORAGE_DELETE_ENABLED", "false"),
                ("REGISTRY_HTTP_ADDR", ":6000"),
                // The registry's prefix check is case-sensitive: these do nothing.
                ("registry_storage_s3_bucket", "lower-case"),
                ("XREGISTRY_STORAGE_S3_BUCKET", "other-prefix"),
            ],
        )
        .expect("parse");
        assert_eq!(
            config.storage,
            RegistryStorage::S3 {
                bucket: "from-env".into(),
                region: Some("eu-central-1".into()),
                regionendpoint: Some("s3.internal:9000".into()),
                rootdirectory: "/env/root".into(),
                accesskey: Some("AK-ENV".into()),
                secretkey: Some("SK-ENV".into()),
                secure: true,
                forcepathstyle: Some(false),
            }
        );
        assert_eq!(config.warnings, [], "every key is known, nothing defaulted");
        let cfg = config.storage.to_s3_config().expect("s3");
        assert_eq!(
            cfg.endpoint_url.as_deref(),
            Some("https://s3.internal:9000")
        );
        assert_eq!(cfg.location(), "s3://from-env/env/root");
    }

    #[test]
    fn environment_values_are_yaml() {
        let yaml = "storage:\n  s3:\n    bucket: b\n    region: r\n    rootdirectory: /x\n    regionendpoint: h:1\n";
        let config = parse(
            yaml,
            &[
                ("REGISTRY_STORAGE_S3_SECURE", "false"),
                ("REGISTRY_STORAGE_S3_BUCKET", "1234"),
            ],
        )
        .expect("parse");
        let cfg = config.storage.to_s3_config().expect("s3");
        assert_eq!(cfg.bucket, "1234");
        assert_eq!(cfg.endpoint_url.as_deref(), Some("http://h:1"));
        // An empty value is YAML null: the parameter is unset, as for the registry.
        let err = parse(yaml, &[("REGISTRY_STORAGE_S3_BUCKET", "")]).unwrap_err();
        assert_eq!(err.to_string(), "storage.s3.bucket: required");
        // A value that is not YAML is an error naming the variable, never the value.
        let err = parse(yaml, &[("REGISTRY_STORAGE_S3_SECRETKEY", "[s3cr3t")]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("REGISTRY_STORAGE_S3_SECRETKEY"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn the_environment_can_choose_or_add_the_driver() {
        let fs = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /srv/a\n  delete:\n    enabled: true\n";
        // REGISTRY_STORAGE replaces the section (it sorts before the parameters).
        let config = parse(
            fs,
            &[
                ("REGISTRY_STORAGE_S3_BUCKET", "b"),
                ("REGISTRY_STORAGE", "s3"),
                ("REGISTRY_STORAGE_S3_REGION", "r"),
                ("REGISTRY_STORAGE_S3_ROOTDIRECTORY", "/p"),
            ],
        )
        .expect("parse");
        assert_eq!(
            config.storage.to_s3_config().expect("s3").location(),
            "s3://b/p"
        );
        // Without it, an s3 parameter adds a second driver: the registry refuses to start.
        assert!(matches!(
            parse(fs, &[("REGISTRY_STORAGE_S3_BUCKET", "b")]),
            Err(RegistryConfigError::SeveralDrivers(_))
        ));
        // The filesystem root.
        let config = parse(
            fs,
            &[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/srv/b")],
        )
        .expect("parse");
        assert_eq!(
            config.storage,
            RegistryStorage::Filesystem {
                rootdirectory: "/srv/b".into()
            }
        );
        // No storage section in the file at all.
        let config = parse(
            "version: 0.1\n",
            &[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/srv/c")],
        )
        .expect("parse");
        assert_eq!(
            config.storage,
            RegistryStorage::Filesystem {
                rootdirectory: "/srv/c".into()
            }
        );
    }

    #[test]
    fn unknown_keys_are_named_with_the_nearest_known_one() {
        let yaml = "storage:\n  s3:\n    bucket: b\n    region: r\n    rootdir: /x\n    Secretkey: hidden-value\n    regionendpiont: h\n    colour: blue\n";
        let config = parse(yaml, &[("REGISTRY_STORAGE_S3_ACCESKEY", "AK")]).expect("parse");
        assert_eq!(
            texts(&config.warnings),
            [
                "/etc/docker/registry/config.yml: unknown key storage.s3.rootdir, which the registry ignores (did you mean rootdirectory?)",
                "/etc/docker/registry/config.yml: unknown key storage.s3.Secretkey, which the registry ignores (did you mean secretkey?)",
                "/etc/docker/registry/config.yml: unknown key storage.s3.regionendpiont, which the registry ignores (did you mean regionendpoint?)",
                "/etc/docker/registry/config.yml: unknown key storage.s3.colour, which the registry ignores",
                "environment variable REGISTRY_STORAGE_S3_ACCESKEY: unknown key storage.s3.acceskey, which the registry ignores (did you mean accesskey?)",
                "storage.s3.rootdirectory is not set: auditing from the top of bucket b",
            ]
        );
        for w in texts(&config.warnings) {
            assert!(!w.contains("hidden-value") && !w.contains("AK"), "{w}");
        }
        // The driver reads parameters by their exact name: `Secretkey` is not the secret key.
        let RegistryStorage::S3 { secretkey, .. } = config.storage else {
            panic!("s3 expected");
        };
        assert_eq!(secretkey, None);
        let fs = parse("storage:\n  filesystem:\n    root: /srv\n", &[]).expect("parse");
        assert_eq!(
            texts(&fs.warnings),
            [
                "/etc/docker/registry/config.yml: unknown key storage.filesystem.root, which the registry ignores (did you mean rootdirectory?)",
                "storage.filesystem.rootdirectory is not set: using the driver's default /var/lib/registry",
            ]
        );
    }

    #[test]
    fn defaults_that_replace_missing_settings_are_named() {
        let config = parse(
            "storage:\n  s3:\n    bucket: b\n    regionendpoint: minio:9000\n",
            &[],
        )
        .expect("parse");
        let defaulted: Vec<&str> = config
            .warnings
            .iter()
            .map(|w| match w {
                ConfigWarning::Default { parameter, .. } => *parameter,
                other => panic!("unexpected {other}"),
            })
            .collect();
        assert_eq!(defaulted, ["region", "rootdirectory", "secure"]);
        assert_eq!(
            texts(&config.warnings)[0],
            "storage.s3.region is not set: using the region of the AWS environment or profile, \
             else us-east-1 (the registry itself refuses to start without one)"
        );
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let storage = RegistryStorage::from_yaml(MINIO).expect("parse");
        let debug = format!("{storage:?}");
        assert!(
            !debug.contains("secretkey: Some(\"minioadmin\")"),
            "{debug}"
        );
        assert!(debug.contains("<redacted>"), "{debug}");
    }
}
