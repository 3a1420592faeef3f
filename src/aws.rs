//! AWS clients: aws-config's standard chain (env, profiles, SSO, IMDS), the region from the
//! step, the spec's context or the environment, and every endpoint override the SDK honours
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_CLOUDFORMATION`, `AWS_ENDPOINT_URL_SERVICE_QUOTAS`).
//! Throttling and transient errors are retried by the SDK's standard retry policy.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::domain::spec::Context;

/// Load the shared config; fails when no region is known at all.
pub async fn config(region: Option<&str>, context: &Context) -> Result<SdkConfig, String> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = region.map(str::to_string).or_else(|| context.get("region").cloned()) {
        loader = loader.region(Region::new(r));
    }
    let conf = loader.load().await;
    if conf.region().is_none() {
        return Err("no AWS region: set `region` in the step's params or the spec's context, or AWS_REGION".into());
    }
    Ok(conf)
}

/// AWS's own words for a failed call: `Code: message`, or the whole error chain.
pub fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => DisplayErrorContext(e).to_string(),
    }
}
