//! [`Verifier`]: tests an environment through its service URL.
//!
//! A verifier makes one request ([`Verifier::probe`]); [`HealthCheck::run`] turns probes into a verdict
//! (N consecutive successes, or too many failures) and a [`VerificationReport`] whose latency and error
//! figures let one deployment be compared with another.

#[cfg(feature = "http")]
pub mod http;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{ServiceUrl, Stage};
use crate::wait::{Check, PollPolicy, Wait};

/// One request to make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRequest {
    /// The path to GET, such as `/health`.
    pub path: String,
    /// How long to wait for an answer.
    pub timeout: Duration,
}

/// The answer to one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResponse {
    /// The HTTP status.
    pub status: u16,
    /// How long the answer took.
    pub latency: Duration,
}

/// Makes one request to a service.
///
/// # Contract
/// [`probe`](Verifier::probe) sends one GET of `request.path` to `url` and reports the status and
/// latency of the answer, whatever the status. It gives up after `request.timeout`.
///
/// # Errors
/// [`Error::Transient`](crate::Error::Transient) when no answer came (connection refused, reset, timed
/// out): the check counts it as a failed probe.
///
/// # Cancellation
/// Dropping the future abandons the request.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use sendy_cd::{HealthCheck, ServiceUrl, memory::Account};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> sendy_cd::Result<()> {
/// let account = Account::new();
/// account.create_environment("blue")?;
/// let url = ServiceUrl::parse("http://blue.app.sim/")?;
/// let report = HealthCheck::default().run(&account.verifier(), &url, Duration::from_secs(300)).await?;
/// assert_eq!(report.successes, 3);
/// # Ok(()) }
/// ```
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Verifier: Send + Sync {
    /// Sends one request.
    async fn probe(&self, url: &ServiceUrl, request: &ProbeRequest) -> Result<ProbeResponse>;
}

/// How to decide that an environment is healthy. Defaults are documented per field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HealthCheck {
    /// The path to GET. Default `/health`.
    pub path: String,
    /// The status a healthy service answers. Default 200.
    pub expected_status: u16,
    /// How many healthy answers in a row make the environment healthy. Default 3.
    pub consecutive_successes: u32,
    /// How many failed probes (in all) make it unhealthy. Default 3.
    pub failure_threshold: u32,
    /// How long one request may take. Default 5 s.
    pub request_timeout: Duration,
    /// The pause between two probes. Default 2 s.
    pub interval: Duration,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: "/health".into(),
            expected_status: 200,
            consecutive_successes: 3,
            failure_threshold: 3,
            request_timeout: Duration::from_secs(5),
            interval: Duration::from_secs(2),
        }
    }
}

/// What a health check saw: the figures a deployment is compared with its baseline on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VerificationReport {
    /// Probes sent.
    pub probes: u32,
    /// Probes answered with the expected status.
    pub successes: u32,
    /// Probes that failed (wrong status, no answer).
    pub failures: u32,
    /// Median latency of the answered probes, in milliseconds.
    pub latency_p50_ms: f64,
    /// Highest latency of the answered probes, in milliseconds.
    pub latency_max_ms: f64,
    /// The last failure, if any.
    pub last_failure: Option<String>,
}

impl VerificationReport {
    /// One line saying how the check of `url` failed.
    pub fn failure_summary(&self, url: &ServiceUrl) -> String {
        format!(
            "{} of {} probes of {url} failed; last: {}",
            self.failures,
            self.probes,
            self.last_failure.as_deref().unwrap_or("-")
        )
    }

    /// The share of probes that failed, 0 to 1.
    pub fn error_rate(&self) -> f64 {
        if self.probes == 0 { 0.0 } else { f64::from(self.failures) / f64::from(self.probes) }
    }
}

impl HealthCheck {
    /// Checks that the check can ever pass.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero successes, a zero failure threshold or timeout, or a path that
    /// does not start with `/`.
    pub fn validate(&self) -> Result<()> {
        if self.consecutive_successes == 0 || self.failure_threshold == 0 {
            return Err(Error::InvalidConfig(
                "health check: successes and failure threshold must be at least 1".into(),
            ));
        }
        if self.request_timeout.is_zero() || self.interval.is_zero() {
            return Err(Error::InvalidConfig("health check: timeout and interval must be positive".into()));
        }
        let day = Duration::from_secs(24 * 3600);
        if self.request_timeout > day || self.interval > day {
            return Err(Error::InvalidConfig("health check: timeout and interval must be at most a day".into()));
        }
        if !self.path.starts_with('/') {
            return Err(Error::InvalidConfig(format!(
                "health check: path {:?} must start with '/'",
                crate::error::truncate(&self.path)
            )));
        }
        Ok(())
    }

    /// Probes `url` through `verifier` until [`consecutive_successes`](Self::consecutive_successes)
    /// healthy answers in a row, or [`failure_threshold`](Self::failure_threshold) failures.
    ///
    /// # Errors
    /// - [`Error::StageFailed`] (stage [`Stage::Verify`]) with the report's figures when the failure
    ///   threshold is reached;
    /// - [`Error::Timeout`] when `deadline` passes first;
    /// - a non-retryable error of the verifier, at once.
    ///
    /// # Cancellation
    /// Dropping the future stops probing.
    pub async fn run(
        &self,
        verifier: &dyn Verifier,
        url: &ServiceUrl,
        deadline: Duration,
    ) -> Result<VerificationReport> {
        let (passed, report) = self.measure(verifier, url, deadline).await?;
        if passed {
            Ok(report)
        } else {
            Err(Error::StageFailed { stage: Stage::Verify, reason: report.failure_summary(url) })
        }
    }

    /// Like [`run`](Self::run), but a failed check is `Ok((false, report))`, so its figures are kept.
    ///
    /// # Errors
    /// [`Error::Timeout`] when `deadline` passes first; a non-retryable error of the verifier.
    pub async fn measure(
        &self,
        verifier: &dyn Verifier,
        url: &ServiceUrl,
        deadline: Duration,
    ) -> Result<(bool, VerificationReport)> {
        self.validate()?;
        let policy = PollPolicy {
            first: self.interval,
            max: self.interval,
            growth: 1.0,
            jitter: 0.0,
            call_timeout: self.request_timeout.saturating_add(Duration::from_secs(1)),
            max_consecutive_errors: u32::MAX,
            ..PollPolicy::default()
        };
        let request = ProbeRequest { path: self.path.clone(), timeout: self.request_timeout };
        let tally = std::sync::Mutex::new(Tally::default());
        let wait = Wait::new(&policy, format!("verification of {url}"), deadline);
        let outcome = wait
            .until(|| {
                let probe = tokio::time::timeout(self.request_timeout, verifier.probe(url, &request));
                let tally = &tally;
                async move {
                    let failure = match probe.await {
                        Ok(Ok(answer)) => {
                            tally.lock().expect("tally lock").latencies.push(answer.latency);
                            (answer.status != self.expected_status).then(|| {
                                format!("{} answered {} (expected {})", self.path, answer.status, self.expected_status)
                            })
                        }
                        Ok(Err(e)) if e.is_retryable() => Some(format!("{}: {e}", self.path)),
                        Ok(Err(e)) => return Err(e),
                        Err(_) => Some(format!("{}: no answer within {:?}", self.path, self.request_timeout)),
                    };
                    let mut t = tally.lock().expect("tally lock");
                    t.report.probes += 1;
                    match failure {
                        None => {
                            t.report.successes += 1;
                            t.in_a_row += 1;
                            if t.in_a_row >= self.consecutive_successes {
                                return Ok(Check::Ready(true));
                            }
                        }
                        Some(reason) => {
                            t.report.failures += 1;
                            t.in_a_row = 0;
                            t.report.last_failure = Some(reason);
                            if t.report.failures >= self.failure_threshold {
                                return Ok(Check::Ready(false));
                            }
                        }
                    }
                    Ok(Check::Pending)
                }
            })
            .await;
        let Tally { mut report, mut latencies, .. } = tally.into_inner().expect("tally lock");
        latencies.sort();
        if let Some(max) = latencies.last() {
            report.latency_max_ms = max.as_secs_f64() * 1000.0;
            report.latency_p50_ms = latencies[latencies.len() / 2].as_secs_f64() * 1000.0;
        }
        outcome.map(|(passed, _)| (passed, report))
    }
}

#[derive(Default)]
struct Tally {
    report: VerificationReport,
    latencies: Vec<Duration>,
    in_a_row: u32,
}

setters!(HealthCheck {
    #[into]
    path: String,
    expected_status: u16,
    consecutive_successes: u32,
    failure_threshold: u32,
    request_timeout: Duration,
    interval: Duration,
});
