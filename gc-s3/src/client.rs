//! Building the aws-sdk-s3 client: AWS default chain, overrides, retries, timeouts, counting.
//!
//! Region, credentials and profile come from `aws-config`'s default chain unless the
//! [`S3Config`] overrides them. A named profile must exist in the shared config or credentials
//! file (`AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/…`): like the aws CLI,
//! a profile that is not there is an error before any request, rather than the SDK quietly
//! falling back to other credentials and region. Every attempt the SDK transmits (retries included) passes the
//! [`CountAndGuard`] interceptor, which counts it by kind and refuses any method other than
//! GET and HEAD, so this crate cannot write to the bucket it audits even by mistake.
//!
//! Failures that no retry mends (no credentials, a refused connection, a host that does not
//! resolve, TLS against a plain-HTTP server, an untrusted certificate) are not retried
//! ([`NoHopelessRetries`]), and [`crate::retry::RetryWatch`] tells the log and the progress
//! display which requests are being retried and why. A CA bundle (`ca_bundle`, else the
//! `AWS_CA_BUNDLE` environment variable, which the Rust SDK does not read by itself) is added
//! to the platform's trusted roots, for MinIO or Ceph behind a private CA.

use crate::config::S3Config;
use crate::error::S3Error;
use crate::retry::{RetryTracker, RetryWatch};
use crate::sdk_error::{self, Target};
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::interceptors::InterceptorContext;
use aws_sdk_s3::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_s3::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, RuntimeComponents,
};
use aws_sdk_s3::error::BoxError;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpConnector,
};
use aws_types::os_shim_internal::{Env, Fs};
use gc_core::storage::RequestCounter;
use std::sync::Arc;

/// Region used with an S3-compatible endpoint when none is configured; such servers accept
/// any region (distribution's own driver requires one, and `us-east-1` is the usual choice).
const ENDPOINT_DEFAULT_REGION: &str = "us-east-1";

/// Counts transmitted attempts and refuses anything but reads.
#[derive(Debug)]
pub(crate) struct CountAndGuard {
    pub(crate) counter: Arc<RequestCounter>,
}

impl Intercept for CountAndGuard {
    fn name(&self) -> &'static str {
        "gc-s3-count-and-guard"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        match request.method() {
            "HEAD" => self.counter.head(),
            "GET" if is_listing(request.uri()) => self.counter.list(),
            "GET" => self.counter.get(),
            other => {
                return Err(
                    format!("gc-s3 is read-only and refuses to send a {other} request").into(),
                )
            }
        }
        Ok(())
    }
}

/// Whether a GET URI is a listing: ListObjectsV2 (`?list-type=2`) or ListObjectVersions
/// (`?versions`; not GetBucketVersioning's `?versioning`).
fn is_listing(uri: &str) -> bool {
    uri.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|p| p.starts_with("list-type=") || p == "versions" || p.starts_with("versions="))
    })
}

/// Fail unless the shared AWS config or credentials file (as `fs` and `env` locate them) has
/// a profile `name`; the message is the aws CLI's.
async fn check_profile(name: &str, fs: &Fs, env: &Env) -> Result<(), S3Error> {
    let profiles = aws_config::profile::load(fs, env, &Default::default(), None)
        .await
        .map_err(|e| S3Error::InvalidConfig(format!("reading the shared AWS config files: {e}")))?;
    if profiles.get_profile(name).is_some() {
        return Ok(());
    }
    let mut known: Vec<&str> = profiles.profiles().collect();
    known.sort_unstable();
    let known = if known.is_empty() {
        "no profiles are defined".to_string()
    } else {
        format!("defined: {}", known.join(", "))
    };
    Err(S3Error::InvalidConfig(format!(
        "The config profile ({name}) could not be found in the shared config and credentials \
         files (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/config and \
         ~/.aws/credentials; {known})"
    )))
}

/// Forbids retrying failures that another attempt cannot mend (see the module documentation).
#[derive(Debug)]
struct NoHopelessRetries;

impl ClassifyRetry for NoHopelessRetries {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        use crate::error::FailureKind as K;
        let Some(Err(err)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        let Some(connector) = err.as_connector_error() else {
            return RetryAction::NoActionIndicated;
        };
        match sdk_error::transport_kind(connector) {
            Some(
                K::NoCredentials
                | K::Credentials
                | K::ConnectionRefused
                | K::Dns
                | K::TlsToPlainHttp
                | K::Certificate,
            ) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "gc-s3-no-hopeless-retries"
    }
}

/// The CA bundle to trust besides the platform's roots: `cfg.ca_bundle`, else `AWS_CA_BUNDLE`.
fn ca_bundle(cfg: &S3Config) -> Option<std::path::PathBuf> {
    cfg.ca_bundle.clone().or_else(|| {
        std::env::var_os("AWS_CA_BUNDLE")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    })
}

/// An HTTPS client trusting the platform's roots and the certificates of the PEM file `path`.
/// The file is read and checked now; the client itself is built at its first request (it
/// loads and parses the platform's whole trust store), so a run that never makes an HTTPS
/// request (a plain-HTTP endpoint, credentials from the environment) never pays for it.
fn http_client_with_ca(
    path: &std::path::Path,
) -> Result<aws_sdk_s3::config::SharedHttpClient, S3Error> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| S3Error::InvalidConfig(format!("CA bundle {shown}: {e}")))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(S3Error::InvalidConfig(format!(
            "CA bundle {shown}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
        )));
    }
    let trust = tls::TrustStore::default().with_pem_certificate(pem);
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| S3Error::InvalidConfig(format!("CA bundle {shown}: {e}")))?;
    Ok(aws_sdk_s3::config::SharedHttpClient::new(HttpsOnFirstUse {
        context,
        client: std::sync::OnceLock::new(),
    }))
}

/// An HTTPS client with a trust store of its own, built when first asked for a connector.
#[derive(Debug)]
struct HttpsOnFirstUse {
    context: tls::TlsContext,
    client: std::sync::OnceLock<aws_sdk_s3::config::SharedHttpClient>,
}

impl HttpClient for HttpsOnFirstUse {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.client
            .get_or_init(|| {
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::AwsLc,
                    ))
                    .tls_context(self.context.clone())
                    .build_https()
            })
            .http_connector(settings, components)
    }
}

/// Whether `url` is a plain-HTTP endpoint (`http://…`, any case).
fn is_plain_http(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

/// What [`build`] makes.
pub(crate) struct Built {
    pub(crate) client: aws_sdk_s3::Client,
    pub(crate) target: Target,
}

/// Build the client for `cfg`, counting into `counter` and reporting retries to `retries`.
pub(crate) async fn build(
    cfg: &S3Config,
    counter: Arc<RequestCounter>,
    retries: Arc<RetryTracker>,
) -> Result<Built, S3Error> {
    if cfg.bucket.is_empty() {
        return Err(S3Error::InvalidConfig("empty bucket name".to_string()));
    }
    if cfg.concurrency == 0 {
        return Err(S3Error::InvalidConfig(
            "concurrency must be at least 1".to_string(),
        ));
    }
    if cfg.retries.max_attempts == 0 {
        return Err(S3Error::InvalidConfig(
            "max_attempts must be at least 1".to_string(),
        ));
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &cfg.profile {
        check_profile(profile, &Fs::real(), &Env::real()).await?;
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &cfg.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &cfg.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    // The loader's client is also the credential providers' (STS, SSO, IMDS, ECS), which may
    // need HTTPS whatever the endpoint is.
    if let Some(bundle) = ca_bundle(cfg) {
        loader = loader.http_client(http_client_with_ca(&bundle)?);
    }
    if let Some(creds) = &cfg.static_credentials {
        loader = loader.credentials_provider(Credentials::new(
            creds.access_key.clone(),
            creds.secret_key.clone(),
            None,
            None,
            "gc-audit-static",
        ));
    }
    let sdk = loader.load().await;
    let region = match (sdk.region(), &cfg.endpoint_url) {
        (Some(r), _) => r.clone(),
        (None, Some(_)) => Region::new(ENDPOINT_DEFAULT_REGION),
        (None, None) => {
            return Err(S3Error::MissingRegion {
                bucket: cfg.bucket.clone(),
            })
        }
    };
    let t = &cfg.timeouts;
    let r = &cfg.retries;
    let mut conf = aws_sdk_s3::config::Builder::from(&sdk);
    if cfg.endpoint_url.as_deref().is_some_and(is_plain_http) {
        // A plain-HTTP endpoint needs no TLS: an HTTPS client loads and parses the platform's
        // whole trust store before the first request, and its connector makes every request
        // dearer (1M keys on the bench proxy: cold 41 -> 31 s, warm 9.2 -> 7.3 s).
        conf.set_http_client(Some(aws_smithy_http_client::Builder::new().build_http()));
    }
    let conf = conf
        .region(region.clone())
        .force_path_style(cfg.force_path_style)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(r.max_attempts)
                .with_initial_backoff(r.initial_backoff)
                .with_max_backoff(r.max_backoff),
        )
        .retry_partition(
            RetryPartition::custom("gc-audit")
                .token_bucket(TokenBucket::unlimited())
                .build(),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(t.connect)
                .read_timeout(t.read)
                .operation_attempt_timeout(t.attempt)
                .operation_timeout(t.operation)
                .build(),
        )
        .interceptor(CountAndGuard { counter })
        .interceptor(RetryWatch::new(retries))
        .retry_classifier(NoHopelessRetries)
        // No request here has a body to checksum, and gc-core checks every manifest it reads
        // against its sha256 digest: the SDK's flexible-checksum work per request (and, on S3,
        // `x-amz-checksum-mode: ENABLED` on every GetObject and a CRC of its body) buys
        // nothing. Measured under callgrind on a 10k-key cold scan (966 requests): 16k fewer
        // instructions per request, 1.1 % of the scan. Stalled-stream protection stays: the
        // read timeout covers a response's headers only, so it is what notices a GetObject
        // body that stops arriving.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    let target = Target::new(
        &cfg.bucket,
        cfg.endpoint_url.as_deref(),
        region.as_ref(),
        cfg.force_path_style,
    );
    Ok(Built {
        client: aws_sdk_s3::Client::from_conf(conf),
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_requests_are_recognised() {
        assert!(is_listing("http://h/b?list-type=2&prefix=a%2F"));
        assert!(is_listing("/b?prefix=x&list-type=2"));
        assert!(!is_listing("http://h/b/key?x-id=GetObject"));
        assert!(!is_listing("http://h/b/list-type=2"));
        assert!(is_listing("http://h/b?versions&prefix=a%2F&max-keys=1000"));
        assert!(is_listing("http://h/b?prefix=a%2F&versions="));
        assert!(!is_listing("http://h/b?versioning"));
        assert!(!is_listing("http://h/b/key?versionId=v1&x-id=GetObject"));
    }

    #[test]
    fn plain_http_endpoints_are_recognised() {
        assert!(is_plain_http("http://127.0.0.1:9000"));
        assert!(is_plain_http("HTTP://minio:9000"));
        assert!(!is_plain_http("https://s3.example.com"));
        assert!(!is_plain_http("http"));
    }

    #[tokio::test]
    async fn a_profile_must_exist_in_the_config_or_credentials_file() {
        let fs = Fs::from_slice(&[
            (
                "/cfg",
                "[default]\nregion = eu-west-1\n[profile ops]\nregion = us-east-2\n",
            ),
            (
                "/home/me/.aws/credentials",
                "[ci]\naws_access_key_id = AK\n",
            ),
        ]);
        let env = Env::from_slice(&[("HOME", "/home/me"), ("AWS_CONFIG_FILE", "/cfg")]);
        for name in ["default", "ops", "ci"] {
            assert!(check_profile(name, &fs, &env).await.is_ok(), "{name}");
        }
        let err = check_profile("nope", &fs, &env)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("The config profile (nope) could not be found")
                && err.contains("defined: ci, default, ops"),
            "{err}"
        );
        let nothing = Fs::from_slice(&[]);
        let err = check_profile("ops", &nothing, &env)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no profiles are defined"), "{err}");
    }
}
