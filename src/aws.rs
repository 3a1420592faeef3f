//! AWS clients and AWS's errors in people's words.
//!
//! Clients use aws-config's standard chain (env, profiles, SSO, IMDS), the region from the
//! step, the spec's context or the environment, and every endpoint override the SDK honours
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`). Throttling and transient errors are
//! retried by the SDK's standard retry policy.
//!
//! A failed call becomes an [`Error`] that reads `Operation target: CODE: message` when AWS
//! answered with an error document, `Operation target: HTTP 500 from ENDPOINT: <the first 200
//! bytes of the body>` when the answer cannot be read as one, or says that nothing answered.
//! Never the SDK's `Debug` dump.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::domain::spec::Context;

/// How many bytes of an unreadable answer an error quotes.
pub const BODY_QUOTE: usize = 200;

/// Where AWS credentials come from, for a person who has none set up.
pub const CREDENTIALS_HELP: &str = "give them as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment, \
as a profile (AWS_PROFILE, with ~/.aws/credentials or `aws sso login --profile NAME`), or run where a role provides them \
(an EC2 instance profile, an ECS task role, EKS pod identity); with no AWS account, `scripts/demo` runs the whole runbook against a local stand-in";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("no AWS region: set `region` in the step's params or the spec's context, or AWS_REGION")]
    NoRegion,
    /// No credentials anywhere the standard chain looks.
    #[error("no AWS credentials: {why}; {CREDENTIALS_HELP}")]
    NoCredentials { why: String },
    /// AWS answered with an error code.
    #[error("{call}: {code}{}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Service { call: String, code: String, message: Option<String> },
    /// An answer that is not an AWS error document.
    #[error("{call}: HTTP {status} from {endpoint}: {body}")]
    Unreadable { call: String, status: u16, endpoint: String, body: String },
    /// No answer at all (connection refused, timeout).
    #[error("{call}: no answer from {endpoint}: {why}")]
    Unreachable { call: String, endpoint: String, why: String },
    /// The request could not even be made (bad input for the SDK).
    #[error("{call}: {why}")]
    Request { call: String, why: String },
}

/// One AWS service, for naming its endpoint in messages.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// The suffix of its `AWS_ENDPOINT_URL_<SERVICE>` variable.
    pub env: &'static str,
    /// Its endpoint host prefix: `https://<prefix>.<region>.amazonaws.com`.
    pub host: &'static str,
}

pub const SERVICE_QUOTAS: Service = Service { env: "SERVICE_QUOTAS", host: "servicequotas" };
pub const CLOUDFORMATION: Service = Service { env: "CLOUDFORMATION", host: "cloudformation" };
pub const FIS: Service = Service { env: "FIS", host: "fis" };
pub const BACKUP: Service = Service { env: "BACKUP", host: "backup" };
pub const ARC_ZONAL_SHIFT: Service = Service { env: "ARC_ZONAL_SHIFT", host: "arc-zonal-shift" };
pub const EC2: Service = Service { env: "EC2", host: "ec2" };
pub const ELBV2: Service = Service { env: "ELASTIC_LOAD_BALANCING_V2", host: "elasticloadbalancing" };
pub const AUTOSCALING: Service = Service { env: "AUTO_SCALING", host: "autoscaling" };
pub const RDS: Service = Service { env: "RDS", host: "rds" };
pub const CLOUDWATCH: Service = Service { env: "CLOUDWATCH", host: "monitoring" };
pub const SNS: Service = Service { env: "SNS", host: "sns" };
pub const SQS: Service = Service { env: "SQS", host: "sqs" };
pub const ECS: Service = Service { env: "ECS", host: "ecs" };
pub const S3: Service = Service { env: "S3", host: "s3" };
pub const BEDROCK_RUNTIME: Service = Service { env: "BEDROCK_RUNTIME", host: "bedrock-runtime" };

/// The shared SDK config and the region it resolved.
#[derive(Clone)]
pub struct Aws {
    pub conf: SdkConfig,
    pub region: String,
}

/// Load the shared config; fails when no region is known at all.
pub async fn config(region: Option<&str>, context: &Context) -> Result<Aws, Error> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = region.map(str::to_string).or_else(|| context.get("region").cloned()) {
        loader = loader.region(Region::new(r));
    }
    let conf = loader.load().await;
    let region = conf.region().map(|r| r.to_string()).ok_or(Error::NoRegion)?;
    // Found before any call: without credentials the SDK would report a failed connection.
    use aws_credential_types::provider::ProvideCredentials;
    let provider = conf
        .credentials_provider()
        .ok_or_else(|| Error::NoCredentials { why: "no credentials provider is configured".into() })?;
    if let Err(e) = provider.provide_credentials().await {
        let why: Vec<String> = chain(&e).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
        return Err(Error::NoCredentials { why: why.join(" ") });
    }
    Ok(Aws { conf, region })
}

impl Aws {
    /// Where calls to `service` go, as the SDK picks it: the service's own override, the
    /// general one, else AWS's public endpoint.
    pub fn endpoint(&self, service: Service) -> String {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        var(&format!("AWS_ENDPOINT_URL_{}", service.env))
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .or_else(|| self.conf.endpoint_url().map(str::to_string))
            .unwrap_or_else(|| format!("https://{}.{}.amazonaws.com", service.host, self.region))
    }

    /// A failed call, in AWS's words where it gave any.
    pub fn error<E>(&self, service: Service, call: impl Into<String>, e: &SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        describe(call.into(), || self.endpoint(service), e)
    }
}

/// `s3://bucket/prefix` -> (bucket, prefix without slashes at its ends).
pub fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// An error and its sources, each in its own words, joined by ": " (a source that only repeats
/// what its parent said is left out). Never a `Debug` dump.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        // The SDK's kind tags (`other`, `io error`, `user error`) say nothing to a person.
        let tag = matches!(text.as_str(), "other" | "io error" | "user error" | "dispatch failure");
        if !text.is_empty() && !tag && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// The first [`BODY_QUOTE`] bytes of an answer, on one line.
fn quote(body: &[u8]) -> String {
    let cut = &body[..body.len().min(BODY_QUOTE)];
    let text = String::from_utf8_lossy(cut);
    let one_line: Vec<&str> = text.split_whitespace().collect();
    if one_line.is_empty() {
        "(empty body)".into()
    } else {
        one_line.join(" ")
    }
}

fn describe<E>(call: String, endpoint: impl Fn() -> String, e: &SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::ServiceError(_) if e.code().is_some() => Error::Service {
            call,
            code: e.code().unwrap_or_default().to_string(),
            message: e.message().map(str::to_string),
        },
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let raw = e.raw_response();
            Error::Unreadable {
                call,
                status: raw.map(|r| r.status().as_u16()).unwrap_or(0),
                endpoint: endpoint(),
                body: raw.and_then(|r| r.body().bytes()).map(quote).unwrap_or_else(|| "(body not kept)".into()),
            }
        }
        SdkError::TimeoutError(_) => Error::Unreachable { call, endpoint: endpoint(), why: "timed out".into() },
        SdkError::DispatchFailure(_) => {
            let why = std::error::Error::source(e).map(chain).unwrap_or_else(|| "the connection failed".into());
            Error::Unreachable { call, endpoint: endpoint(), why }
        }
        _ => Error::Request { call, why: std::error::Error::source(e).map(chain).unwrap_or_else(|| e.to_string()) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(parse_s3_url("s3://team-state/flow/prod/"), Some(("team-state".into(), "flow/prod".into())));
        assert_eq!(parse_s3_url("s3://team-state"), Some(("team-state".into(), String::new())));
        assert_eq!(parse_s3_url("s3:///x"), None);
        assert_eq!(parse_s3_url("state"), None);
    }

    #[test]
    fn answers_are_quoted_short_and_on_one_line() {
        let body = format!("<html>\n  <body>Internal   Server Error</body>\n{}</html>", "x".repeat(400));
        let q = quote(body.as_bytes());
        assert!(q.starts_with("<html> <body>Internal Server Error</body>"), "{q}");
        assert!(q.len() <= BODY_QUOTE, "{}", q.len());
        assert_eq!(quote(b"  \n"), "(empty body)");
    }

    #[test]
    fn errors_read_as_sentences() {
        let e = Error::Service {
            call: "GetServiceQuota ec2/L-1".into(),
            code: "AccessDeniedException".into(),
            message: Some("no".into()),
        };
        assert_eq!(e.to_string(), "GetServiceQuota ec2/L-1: AccessDeniedException: no");
        let e = Error::Unreadable {
            call: "GetServiceQuota ec2/L-1".into(),
            status: 500,
            endpoint: "http://127.0.0.1:9".into(),
            body: "oops".into(),
        };
        assert_eq!(e.to_string(), "GetServiceQuota ec2/L-1: HTTP 500 from http://127.0.0.1:9: oops");
    }
}
