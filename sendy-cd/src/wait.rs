//! All waiting in the crate: polling a status until it is final, and retrying one call.
//!
//! Polling and retrying sleep only here; the other sleeps of the crate are deliberate pauses the
//! pipeline records as steps (the DNS TTL, a canary's bake) and the simulated account's own latencies.
//! Everything runs on tokio's clock, so a test on a paused clock waits through an hour of polling in
//! milliseconds.
//!
//! # Pacing
//! A stage whose usual duration is known (the pipeline learns it from earlier runs of the same stage, or
//! takes it from [`PipelineBuilder::expected_duration`](crate::pipeline::PipelineBuilder::expected_duration))
//! is polled sparsely (every [`PollPolicy::max`]) until it nears that duration, then densely (every
//! [`PollPolicy::first`]), the interval growing slowly again the longer the stage runs over. A stage of
//! unknown duration is polled every `first`, the interval growing by [`PollPolicy::growth`] up to `max`.
//! Every interval gets ±[`PollPolicy::jitter`] of random jitter, so that parallel pipelines spread out.
//!
//! # Errors while polling
//! Throttling backs off exponentially (with full jitter) up to [`PollPolicy::max_throttle_backoff`], and
//! only throttling does. Transient errors, and status calls that do not answer within
//! [`PollPolicy::call_timeout`], are retried at the normal pace, up to
//! [`PollPolicy::max_consecutive_errors`] in a row. Any other error ends the wait at once.
//!
//! # Cancellation
//! Dropping the future returned by [`poll`] or [`retry`] stops waiting at once; no further call is made.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// What a status check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check<T> {
    /// The awaited state was reached (successfully or not: the caller decides).
    Ready(T),
    /// Not yet: call again later.
    Pending,
}

/// How to poll. Every field has a documented default ([`PollPolicy::default`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PollPolicy {
    /// The shortest interval between two status calls, used when the stage is expected to finish soon.
    /// Default 2.5 s.
    pub first: Duration,
    /// The longest interval between two status calls (outside throttling). Default 20 s.
    pub max: Duration,
    /// How much the interval grows per call when the stage's duration is unknown. Default 1.25.
    pub growth: f64,
    /// Random jitter applied to every interval, as a fraction (0.1 is ±10 %). Default 0.1.
    pub jitter: f64,
    /// How early, as a fraction of the expected duration, dense polling starts. Default 0.15
    /// (dense from 85 % of the expected duration).
    pub lead: f64,
    /// A status call that does not answer within this is abandoned and counted as a transient error.
    /// Default 30 s.
    pub call_timeout: Duration,
    /// The longest backoff after repeated throttling. Default 60 s.
    pub max_throttle_backoff: Duration,
    /// How many retryable errors in a row end the wait with the last of them. Default 8.
    pub max_consecutive_errors: u32,
    /// Seeds the jitter of every wait, for reproducible benchmarks. Default `None`: a fresh random
    /// seed per wait.
    pub seed: Option<u64>,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            first: Duration::from_millis(2500),
            max: Duration::from_secs(20),
            growth: 1.25,
            jitter: 0.1,
            lead: 0.15,
            call_timeout: Duration::from_secs(30),
            max_throttle_backoff: Duration::from_secs(60),
            max_consecutive_errors: 8,
            seed: None,
        }
    }
}

impl PollPolicy {
    /// Checks that the policy makes sense.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if an interval is zero, `first > max`, `growth < 1`, or a fraction is
    /// outside `0..1`.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidConfig(format!("poll policy: {m}")));
        if self.first.is_zero() || self.call_timeout.is_zero() {
            return bad("first and call_timeout must be positive");
        }
        if self.first > self.max {
            return bad("first must not exceed max");
        }
        if !(self.growth >= 1.0 && self.growth.is_finite()) {
            return bad("growth must be at least 1");
        }
        if !(0.0..1.0).contains(&self.jitter) || !(0.0..1.0).contains(&self.lead) {
            return bad("jitter and lead must be in 0..1");
        }
        if self.growth > 1000.0 {
            return bad("growth must be at most 1000");
        }
        Ok(())
    }

    /// The interval before the next status call, without jitter: `elapsed` since the wait began,
    /// `previous` the interval used last (`None` before the first), `expected` the stage's usual duration.
    pub fn next_interval(&self, elapsed: Duration, previous: Option<Duration>, expected: Option<Duration>) -> Duration {
        // Total for any policy (a policy that fails `validate` still never panics here): `clamp`
        // would panic on first > max, `mul_f64` on NaN or overflow.
        let floor = self.first.min(self.max);
        let interval = match expected {
            Some(expected) => {
                let dense_from = scale(expected, 1.0 - self.lead);
                if elapsed < dense_from {
                    dense_from - elapsed
                } else {
                    // Past the expected duration the interval grows by a fifth of the overrun.
                    let overrun = elapsed.saturating_sub(expected);
                    self.first.saturating_add(overrun / 5)
                }
            }
            None => previous.map_or(self.first, |p| scale(p, self.growth)),
        };
        interval.min(self.max).max(floor)
    }
}

/// What a wait cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct PollStats {
    /// Status calls made.
    pub calls: u32,
    /// Calls answered with throttling.
    pub throttled: u32,
    /// Calls that failed with another retryable error or did not answer in time.
    pub errors: u32,
}

/// One wait: what is waited for, for how long at most, and how long it usually takes.
#[derive(Clone, Debug)]
pub struct Wait<'a> {
    policy: &'a PollPolicy,
    operation: String,
    deadline: Duration,
    expected: Option<Duration>,
    seed: Option<u64>,
}

impl<'a> Wait<'a> {
    /// A wait for `operation` (named in errors) that gives up after `deadline`.
    pub fn new(policy: &'a PollPolicy, operation: impl Into<String>, deadline: Duration) -> Self {
        Wait { policy, operation: operation.into(), deadline, expected: None, seed: None }
    }

    /// How long the awaited operation usually takes (see the module's notes on pacing).
    pub fn expected(mut self, expected: Option<Duration>) -> Self {
        self.expected = expected;
        self
    }

    /// Seeds the jitter, for reproducible benchmarks.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Calls `check` until it returns [`Check::Ready`], then returns its value and what the wait cost.
    ///
    /// The first call is made at once.
    ///
    /// # Errors
    /// - [`Error::InvalidConfig`] for a policy that fails [`PollPolicy::validate`], before any call;
    /// - [`Error::Timeout`] when the deadline passes first;
    /// - any non-retryable error `check` returns, at once;
    /// - the last retryable error, after [`PollPolicy::max_consecutive_errors`] of them in a row.
    ///
    /// # Cancellation
    /// Dropping the future stops polling at once.
    pub async fn until<T, F, Fut>(self, mut check: F) -> Result<(T, PollStats)>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Check<T>>>,
    {
        let policy = self.policy;
        // Checked here too, before the first call: a policy given straight to a backend's setter
        // (`StackDeployer::polling`, `CloudFormationStack::plan_polling`) reaches no other check.
        policy.validate()?;
        let mut rng = self.seed.or(policy.seed).map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        let start = Instant::now();
        let mut stats = PollStats::default();
        let mut previous: Option<Duration> = None;
        let mut consecutive_errors = 0u32;
        let mut consecutive_throttles = 0u32;
        let body = async {
            loop {
                stats.calls += 1;
                let outcome = match tokio::time::timeout(policy.call_timeout, check()).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Error::Transient(
                        (format!("{}: status call did not answer within {:?}", self.operation, policy.call_timeout))
                            .into(),
                    )),
                };
                let sleep = match outcome {
                    Ok(Check::Ready(value)) => return Ok(value),
                    Ok(Check::Pending) => {
                        consecutive_errors = 0;
                        consecutive_throttles = 0;
                        let interval = policy.next_interval(start.elapsed(), previous, self.expected);
                        previous = Some(interval);
                        jittered(&mut rng, interval, policy.jitter)
                    }
                    Err(e) if e.is_retryable() => {
                        consecutive_errors += 1;
                        if consecutive_errors > policy.max_consecutive_errors {
                            return Err(e);
                        }
                        if e.is_throttling() {
                            stats.throttled += 1;
                            consecutive_throttles += 1;
                            throttle_backoff(&mut rng, policy, consecutive_throttles)
                        } else {
                            stats.errors += 1;
                            let interval = policy.next_interval(start.elapsed(), previous, self.expected);
                            jittered(&mut rng, interval, policy.jitter)
                        }
                    }
                    Err(e) => return Err(e),
                };
                tracing::trace!(operation = %self.operation, ?sleep, calls = stats.calls, "waiting");
                tokio::time::sleep(sleep).await;
            }
        };
        match tokio::time::timeout(self.deadline, body).await {
            Ok(Ok(value)) => Ok((value, stats)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Timeout { operation: self.operation, after: self.deadline }),
        }
    }
}

/// `d * factor`, saturating: zero for a negative or NaN factor, [`Duration::MAX`] past its range.
pub(crate) fn scale(d: Duration, factor: f64) -> Duration {
    if factor.is_nan() || factor <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

fn jittered(rng: &mut fastrand::Rng, interval: Duration, jitter: f64) -> Duration {
    if jitter == 0.0 {
        return interval;
    }
    scale(interval, 1.0 + jitter * (2.0 * rng.f64() - 1.0))
}

/// Exponential backoff with jitter after the `n`th throttle in a row (n >= 1): uniform in `[b/2, b]`
/// where `b = max(first, 1 s) * 2^(n-1)`, at most `max_throttle_backoff`.
fn throttle_backoff(rng: &mut fastrand::Rng, policy: &PollPolicy, n: u32) -> Duration {
    let base = policy.first.max(Duration::from_secs(1));
    let backoff = base.saturating_mul(1u32 << n.saturating_sub(1).min(16)).min(policy.max_throttle_backoff);
    scale(backoff, 0.5 + 0.5 * rng.f64())
}

/// How to retry a single call that may be throttled or fail transiently.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included. Default 6.
    pub max_attempts: u32,
    /// The backoff before the second attempt; it doubles per attempt. Default 500 ms (1 s when throttled).
    pub base: Duration,
    /// The longest backoff. Default 20 s.
    pub max_backoff: Duration,
    /// An attempt that does not answer within this is abandoned and counted as transient. Default 30 s.
    pub call_timeout: Duration,
    /// Seeds the backoff jitter, for reproducible runs. Default `None`: a fresh random seed per call.
    pub seed: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
            call_timeout: Duration::from_secs(30),
            seed: None,
        }
    }
}

impl RetryPolicy {
    /// The most attempts a policy may make.
    pub const MAX_ATTEMPTS: u32 = 100;

    /// Checks that the policy makes sense.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `max_attempts` is not in `1..=`[`MAX_ATTEMPTS`](Self::MAX_ATTEMPTS)
    /// or `call_timeout` is zero.
    pub fn validate(&self) -> Result<()> {
        if !(1..=Self::MAX_ATTEMPTS).contains(&self.max_attempts) {
            return Err(Error::InvalidConfig(format!(
                "retry policy: max_attempts {} is not in 1..={}",
                self.max_attempts,
                Self::MAX_ATTEMPTS
            )));
        }
        if self.call_timeout.is_zero() {
            return Err(Error::InvalidConfig("retry policy: call_timeout must be positive".into()));
        }
        Ok(())
    }

    /// Calls `call` until it succeeds, retrying throttling and transient errors with exponential
    /// backoff and full jitter. Returns the value and the number of attempts made.
    ///
    /// # Errors
    /// The first non-retryable error, or the last retryable one after `max_attempts`.
    ///
    /// # Cancellation
    /// Dropping the future stops at once; an attempt in flight is dropped with it.
    pub async fn retry<T, F, Fut>(&self, operation: &str, call: F) -> Result<(T, u32)>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.attempts(operation, call, None::<fn() -> std::future::Ready<Result<Option<T>>>>).await
    }

    /// Like [`retry`](Self::retry), for a call that changes something: after an ambiguous failure
    /// (a [transient](Error::Transient) error or a timeout: the service may have acted on the
    /// request), the next attempt first calls `reconcile`, which looks for the call's effect; when it
    /// finds it (`Some`), that is the answer and the call is not made again. Throttling is not
    /// ambiguous (the request was refused) and is retried directly. Each `reconcile` counts as an
    /// attempt: `max_attempts` bounds calls and reconciliations together.
    ///
    /// # Errors
    /// As [`retry`](Self::retry); an error of `reconcile` that is not retryable.
    pub async fn retry_reconciled<T, F, Fut, R, RFut>(&self, operation: &str, call: F, reconcile: R) -> Result<(T, u32)>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
        R: FnMut() -> RFut,
        RFut: Future<Output = Result<Option<T>>>,
    {
        self.attempts(operation, call, Some(reconcile)).await
    }

    async fn attempts<T, F, Fut, R, RFut>(
        &self,
        operation: &str,
        mut call: F,
        mut reconcile: Option<R>,
    ) -> Result<(T, u32)>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
        R: FnMut() -> RFut,
        RFut: Future<Output = Result<Option<T>>>,
    {
        let mut rng = self.seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        let mut attempt = 0u32;
        let mut unsure = false;
        loop {
            attempt = attempt.saturating_add(1);
            if unsure && let Some(reconcile) = reconcile.as_mut() {
                let found = match tokio::time::timeout(self.call_timeout, reconcile()).await {
                    Ok(found) => found,
                    Err(_) => Err(Error::Transient(
                        format!("{operation}: looking for its effect did not answer within {:?}", self.call_timeout)
                            .into(),
                    )),
                };
                match found {
                    Ok(Some(value)) => {
                        tracing::info!(%operation, attempt, "an earlier attempt took effect: not calling again");
                        return Ok((value, attempt));
                    }
                    // Not applied: the call is made again (`unsure` is set anew by its outcome).
                    Ok(None) => attempt = attempt.saturating_add(1),
                    Err(e) if e.is_retryable() && attempt < self.max_attempts => {
                        self.backoff(operation, attempt, &e, &mut rng).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let outcome = match tokio::time::timeout(self.call_timeout, call()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Error::Transient(
                    format!("{operation}: call did not answer within {:?}", self.call_timeout).into(),
                )),
            };
            match outcome {
                Ok(value) => return Ok((value, attempt)),
                Err(e) if e.is_retryable() && attempt < self.max_attempts => {
                    unsure = !e.is_throttling();
                    self.backoff(operation, attempt, &e, &mut rng).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn backoff(&self, operation: &str, attempt: u32, error: &Error, rng: &mut fastrand::Rng) {
        let base = if error.is_throttling() { self.base.max(Duration::from_secs(1)) } else { self.base };
        let backoff = base.saturating_mul(1u32 << (attempt - 1).min(16)).min(self.max_backoff);
        let sleep = scale(backoff, 0.5 + 0.5 * rng.f64());
        tracing::debug!(%operation, attempt, %error, ?sleep, "retrying");
        tokio::time::sleep(sleep).await;
    }
}

/// Polls `check` under `policy` until ready: shorthand for [`Wait::new`]`(..).until(check)`.
///
/// # Errors
/// As [`Wait::until`].
pub async fn poll<T, F, Fut>(
    policy: &PollPolicy,
    operation: &str,
    deadline: Duration,
    check: F,
) -> Result<(T, PollStats)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Check<T>>>,
{
    Wait::new(policy, operation, deadline).until(check).await
}

setters!(PollPolicy {
    first: Duration,
    max: Duration,
    growth: f64,
    jitter: f64,
    lead: f64,
    call_timeout: Duration,
    max_throttle_backoff: Duration,
    max_consecutive_errors: u32,
    #[into] seed: Option<u64>,
});

setters!(RetryPolicy { max_attempts: u32, base: Duration, max_backoff: Duration, call_timeout: Duration, #[into] seed: Option<u64> });

#[cfg(test)]
mod tests;
