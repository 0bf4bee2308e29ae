//! The AWS backends (feature `aws`, on by default), through the official `aws-sdk-*` crates.
//!
//! Every backend is built from an [`AwsConfig`] (the standard `aws-config` chain: environment,
//! profiles, SSO, instance roles; plus region, profile, endpoint override, timeouts and retries), or
//! from an SDK client directly (`from_client`), which is how tests hand them `aws-smithy-mocks`
//! clients. Every SDK error becomes a crate [`Error`](crate::Error) in one place ([`error`]): throttling
//! and transient failures are retryable, validation and access errors are not, and the message keeps
//! the AWS error code and request id.
//!
//! The standard `AWS_ENDPOINT_URL` variable is honoured, which is how the tests reach a local emulator.

mod cloudformation;
mod cloudwatch;
mod codebuild;
mod ecs;
mod ecs_managed;
pub mod error;
pub mod provision;
mod route53;

use std::time::Duration;

pub use cloudformation::CloudFormationStack;
pub use cloudwatch::{CloudWatchAlarms, CloudWatchMetrics, CloudWatchMetricsBuilder, MetricQuery};
pub use codebuild::{CodeBuildBuilder, idempotency_token};
pub use ecs::EcsDeployer;
pub use ecs_managed::EcsManagedDeployer;
pub use route53::{RecordType, Route53Dns, Route53DnsBuilder};

use crate::error::{Error, Result};

/// The AWS settings every backend is built from.
#[derive(Clone)]
pub struct AwsConfig {
    sdk: aws_config::SdkConfig,
}

/// Shows the region and endpoint, never the credentials (the SDK's own `Debug` prints the access key
/// id).
impl std::fmt::Debug for AwsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsConfig")
            .field("region", &self.sdk.region().map(ToString::to_string))
            .field("endpoint", &self.sdk.endpoint_url())
            .field("credentials", &self.sdk.credentials_provider().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl AwsConfig {
    /// Starts a configuration; nothing is read until [`AwsConfigBuilder::load`].
    pub fn builder() -> AwsConfigBuilder {
        AwsConfigBuilder {
            region: None,
            profile: None,
            endpoint: None,
            connect_timeout: Duration::from_millis(3100),
            attempt_timeout: Duration::from_secs(30),
            max_attempts: 3,
        }
    }

    /// Uses an SDK configuration as it is.
    pub fn from_sdk_config(sdk: aws_config::SdkConfig) -> Self {
        AwsConfig { sdk }
    }

    /// The SDK configuration.
    pub fn sdk_config(&self) -> &aws_config::SdkConfig {
        &self.sdk
    }
}

/// Builds an [`AwsConfig`]. Every setting left out comes from the standard chain (environment
/// variables such as `AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`, then the shared config files, SSO,
/// instance roles).
#[derive(Clone, Debug)]
#[must_use]
pub struct AwsConfigBuilder {
    region: Option<String>,
    profile: Option<String>,
    endpoint: Option<String>,
    connect_timeout: Duration,
    attempt_timeout: Duration,
    max_attempts: u32,
}

impl AwsConfigBuilder {
    /// The region, such as `eu-west-1`. Default: from the chain.
    pub fn region(mut self, region: &str) -> Self {
        self.region = Some(region.to_owned());
        self
    }

    /// The profile of the shared config files. Default: from the chain (`AWS_PROFILE`, else `default`).
    pub fn profile(mut self, profile: &str) -> Self {
        self.profile = Some(profile.to_owned());
        self
    }

    /// Sends every request to `url` (an emulator, a VPC endpoint). Default: from the chain
    /// (`AWS_ENDPOINT_URL`), else AWS.
    pub fn endpoint(mut self, url: &str) -> Self {
        self.endpoint = Some(url.to_owned());
        self
    }

    /// How long to wait for a connection. Default 3.1 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one HTTP attempt may take. Default 30 s.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Attempts per request by the SDK's own (standard-mode) retries, the first included; the
    /// pipeline's retries come on top. Default 3.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Validates the settings, then loads the configuration (reading the environment and files; no
    /// request is sent).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a malformed region or endpoint, zero attempts or timeouts, or when no
    /// region is set anywhere.
    pub async fn load(self) -> Result<AwsConfig> {
        let bad = |m: String| Err(Error::InvalidConfig(m));
        if let Some(r) = &self.region {
            let ok = !r.is_empty() && r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return bad(format!("region {:?}: expected something like eu-west-1", crate::error::truncate(r)));
            }
        }
        if let Some(e) = &self.endpoint {
            match url::Url::parse(e) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => return bad(format!("endpoint {:?}: expected an http(s) URL", crate::error::truncate(e))),
            }
        }
        if self.max_attempts == 0 || self.connect_timeout.is_zero() || self.attempt_timeout.is_zero() {
            return bad("max_attempts and timeouts must be positive".into());
        }
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(self.connect_timeout)
                    .operation_attempt_timeout(self.attempt_timeout)
                    .build(),
            )
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(self.max_attempts));
        if let Some(r) = self.region {
            loader = loader.region(aws_config::Region::new(r));
        }
        if let Some(p) = self.profile {
            loader = loader.profile_name(p);
        }
        if let Some(e) = self.endpoint {
            loader = loader.endpoint_url(e);
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return bad("no region: set AWS_REGION, a profile's region, or AwsConfig::builder().region(..)".into());
        }
        Ok(AwsConfig { sdk })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_settings_are_refused_before_any_request() {
        for builder in [
            AwsConfig::builder().region("EU West"),
            AwsConfig::builder().region("eu-west-1").endpoint("not a url"),
            AwsConfig::builder().region("eu-west-1").endpoint("ftp://x"),
            AwsConfig::builder().region("eu-west-1").max_attempts(0),
            AwsConfig::builder().region("eu-west-1").attempt_timeout(Duration::ZERO),
        ] {
            assert!(matches!(builder.load().await, Err(Error::InvalidConfig(_))));
        }
    }

    #[tokio::test]
    async fn explicit_settings_win() {
        let config = AwsConfig::builder().region("eu-west-3").endpoint("http://127.0.0.1:1").load().await.unwrap();
        assert_eq!(config.sdk_config().region().map(|r| r.as_ref()), Some("eu-west-3"));
        assert_eq!(config.sdk_config().endpoint_url(), Some("http://127.0.0.1:1"));
    }
}
