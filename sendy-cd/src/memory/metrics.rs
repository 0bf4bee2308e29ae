//! Simulated metrics: each environment's requests, error rate and latency per period, drawn from how
//! the revision it serves behaves ([`Traffic`]) and the share of the traffic it receives, with noise.
//!
//! The noise has the shape real metrics have. Each period draws
//! - a load factor and an error factor **shared by every environment** (a traffic spike, a slow
//!   dependency): what a comparison over the same window cancels and a before/after one does not;
//! - per environment, the sampling noise of its own requests: Poisson request counts, a binomial
//!   count of errors, and the sampling error of a percentile of log-normal response times, which
//!   shrinks as the environment serves more requests (a 10 % canary is noisier than its baseline).
//!
//! A period's values depend only on the seed, the environment and the period's start, so asking for
//! the same period twice gives the same values, as CloudWatch does for a complete period.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use crate::analysis::{Measure, MetricRequest, MetricSource, Series};
use crate::error::{Error, Result};
use crate::model::EnvironmentName;

/// How a revision serves its traffic. The default is a healthy service: 1 % errors, p50 40 ms,
/// p99 200 ms.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Traffic {
    /// The share of requests that fail with a 5xx, 0 to 1.
    pub error_rate: f64,
    /// The median response time, ms.
    pub latency_p50_ms: f64,
    /// The 99th percentile response time, ms (at least the median).
    pub latency_p99_ms: f64,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic { error_rate: 0.01, latency_p50_ms: 40.0, latency_p99_ms: 200.0 }
    }
}

impl Traffic {
    /// Checks the figures: an error rate in `0..=1`, latencies finite and above 0, the p99 at least
    /// the median.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the figure.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(Error::InvalidConfig(format!("error rate {} is not in 0..=1", self.error_rate)));
        }
        let (p50, p99) = (self.latency_p50_ms, self.latency_p99_ms);
        if !(p50.is_finite() && p99.is_finite() && p50 > 0.0 && p99 >= p50) {
            return Err(Error::InvalidConfig(format!(
                "latencies p50 {p50} ms and p99 {p99} ms are not 0 < p50 <= p99"
            )));
        }
        Ok(())
    }

    /// This traffic with `factor` times the errors (capped at 1).
    pub fn errors_times(mut self, factor: f64) -> Self {
        self.error_rate = (self.error_rate * factor).min(1.0);
        self
    }

    /// This traffic with the p99 latency `factor` times higher (the median unchanged).
    pub fn p99_times(mut self, factor: f64) -> Self {
        self.latency_p99_ms *= factor;
        self
    }
}

setters!(Traffic { error_rate: f64, latency_p50_ms: f64, latency_p99_ms: f64 });

/// Simulated metrics of a set of environments. Cloning gives another handle onto the same set.
///
/// ```
/// use std::time::Duration;
/// use sendy_cd::analysis::{Measure, MetricRequest, MetricSource};
/// use sendy_cd::memory::{SimulatedMetrics, Traffic};
/// use sendy_cd::EnvironmentName;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> sendy_cd::Result<()> {
/// let blue = EnvironmentName::parse("blue")?;
/// let green = EnvironmentName::parse("green")?;
/// let metrics = SimulatedMetrics::new(7, 200.0)?;
/// metrics.serve(&blue, Traffic::default(), 90)?;
/// metrics.serve(&green, Traffic::default().errors_times(3.0), 10)?;
/// let series = metrics.fetch(&MetricRequest::new(
///     vec![blue, green], vec![Measure::ErrorRate], jiff::Timestamp::UNIX_EPOCH, Duration::from_secs(60), 5,
/// )).await?;
/// assert_eq!(series.len(), 2);
/// assert_eq!(series[1].values.len(), 5);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SimulatedMetrics {
    seed: u64,
    requests_per_second: f64,
    environments: Arc<Mutex<BTreeMap<EnvironmentName, (Traffic, u8)>>>,
    fetches: Arc<Mutex<u32>>,
}

impl SimulatedMetrics {
    /// Metrics seeded with `seed`, of a service receiving `requests_per_second` in all.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the rate is not a finite number above 0.
    pub fn new(seed: u64, requests_per_second: f64) -> Result<Self> {
        if !(requests_per_second.is_finite() && requests_per_second > 0.0) {
            return Err(Error::InvalidConfig(format!(
                "requests_per_second {requests_per_second} is not a finite number above 0"
            )));
        }
        Ok(SimulatedMetrics { seed, requests_per_second, environments: Arc::default(), fetches: Arc::default() })
    }

    /// `env` serves `weight` % of the traffic, behaving as `traffic`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a weight above 100, an error rate outside `0..=1`, or latencies
    /// that are not finite, above 0, with the p99 at least the median.
    pub fn serve(&self, env: &EnvironmentName, traffic: Traffic, weight: u8) -> Result<()> {
        if weight > 100 {
            return Err(Error::InvalidConfig(format!("weight {weight} is above 100")));
        }
        traffic.validate()?;
        self.environments.lock().unwrap_or_else(PoisonError::into_inner).insert(env.clone(), (traffic, weight));
        Ok(())
    }

    /// How many fetches were answered.
    pub fn fetches(&self) -> u32 {
        *self.fetches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `measure` for `env` in the period starting `start_s` seconds after the epoch.
    fn value(
        &self,
        env: &EnvironmentName,
        traffic: Traffic,
        weight: u8,
        measure: &Measure,
        start_s: i64,
        period: Duration,
    ) -> f64 {
        // The shared draws of the period, then the environment's own.
        let mut shared = fastrand::Rng::with_seed(mix(self.seed, start_s as u64, 0));
        let load = (0.1 * gaussian(&mut shared)).exp();
        let error_factor = (0.2 * gaussian(&mut shared)).exp();
        let slowness = (0.05 * gaussian(&mut shared)).exp();
        let mut own = fastrand::Rng::with_seed(mix(self.seed, start_s as u64, name_hash(env)));
        let expected = self.requests_per_second * period.as_secs_f64() * f64::from(weight) / 100.0 * load;
        let requests = (expected + expected.sqrt() * gaussian(&mut own)).round().max(0.0);
        let p = (traffic.error_rate * error_factor).min(1.0);
        let errors =
            (requests * p + (requests * p * (1.0 - p)).sqrt() * gaussian(&mut own)).round().clamp(0.0, requests);
        // Log-normal response times: sigma from the ratio of p99 to p50 (z of 0.99 = 2.326).
        let sigma = (traffic.latency_p99_ms / traffic.latency_p50_ms).ln() / 2.326;
        // The sampling error of a percentile q of n draws: sqrt(q (1 - q) / n) / density, in logs.
        let percentile = |median: f64, q: f64, density: f64, rng: &mut fastrand::Rng| {
            let sd = sigma * (q * (1.0 - q) / requests.max(1.0)).sqrt() / density;
            median * slowness * (sd * gaussian(rng)).exp()
        };
        let p99_draw = percentile(traffic.latency_p99_ms, 0.99, 0.026_652, &mut own);
        let p50_draw = percentile(traffic.latency_p50_ms, 0.5, 0.398_942, &mut own);
        match measure {
            _ if requests == 0.0 => f64::NAN,
            Measure::Requests => requests,
            Measure::ErrorRate => errors / requests,
            Measure::LatencyP50 => p50_draw,
            Measure::LatencyP99 => p99_draw,
            Measure::Named(_) => f64::NAN,
        }
    }
}

#[async_trait]
impl MetricSource for SimulatedMetrics {
    async fn fetch(&self, request: &MetricRequest) -> Result<Vec<Series>> {
        request.validate()?;
        *self.fetches.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        let envs = self.environments.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let period_s = i64::try_from(request.period.as_secs()).unwrap_or(i64::MAX).max(1);
        let mut out = Vec::new();
        for env in &request.environments {
            let (traffic, weight) = envs.get(env).copied().unwrap_or((Traffic::default(), 0));
            for measure in &request.measures {
                let values = (0..i64::from(request.periods))
                    .map(|k| {
                        let start_s = request.start.as_second().saturating_add(k.saturating_mul(period_s));
                        self.value(env, traffic, weight, measure, start_s, request.period)
                    })
                    .collect();
                out.push(Series::new(env.clone(), measure.clone(), values));
            }
        }
        Ok(out)
    }
}

/// The simulated account's metrics ([`Account::metrics`](super::Account::metrics)): before each fetch,
/// every environment asked for is set to the behaviour of the revision it serves now
/// ([`Behavior::traffic`](super::Behavior::traffic)) and its DNS weight. The account keeps no history
/// of either, so a window is answered as if the current split had held all along: true within a
/// canary step, whose weights do not move.
///
/// The window answered is the request's `periods` periods that **end now on the account's clock**
/// (tokio's): the request's start is read as "that long ago", so a run on a paused clock gets the
/// same values every time, whatever the wall clock says.
#[derive(Clone, Debug)]
pub struct AccountMetrics {
    account: super::Account,
    metrics: SimulatedMetrics,
}

impl AccountMetrics {
    pub(crate) fn new(account: super::Account, metrics: SimulatedMetrics) -> Self {
        AccountMetrics { account, metrics }
    }
}

#[async_trait]
impl MetricSource for AccountMetrics {
    async fn fetch(&self, request: &MetricRequest) -> Result<Vec<Series>> {
        self.account.enter(super::Op::MetricsFetch).await?;
        let (serving, request) = {
            let mut s = self.account.lock();
            let elapsed = tokio::time::Instant::now().saturating_duration_since(s.epoch.1);
            let window = request.period.saturating_mul(request.periods);
            let first = elapsed.saturating_sub(window).as_secs();
            let mut request = request.clone();
            request.start = jiff::Timestamp::from_second(SIM_EPOCH + i64::try_from(first).unwrap_or(0))
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            let serving = request
                .environments
                .iter()
                .map(|env| {
                    if let Some((image, weight)) = super::managed::slot_serving(&mut s, env) {
                        let traffic = image.map(|i| s.behavior_of(&i).traffic).unwrap_or_default();
                        return (env.clone(), traffic, weight);
                    }
                    let traffic = super::deployer::serving(&mut s, env)
                        .map(|image| s.behavior_of(&image).traffic)
                        .unwrap_or_default();
                    let weight = s.record.weights.get(&crate::model::SetIdentifier::from(env)).copied().unwrap_or(0);
                    (env.clone(), traffic, weight)
                })
                .collect::<Vec<_>>();
            (serving, request)
        };
        for (env, traffic, weight) in &serving {
            self.metrics.serve(env, *traffic, *weight)?;
        }
        self.metrics.fetch(&request).await
    }
}

/// The simulated account's alarms ([`Account::alarms`](super::Account::alarms)).
#[derive(Clone, Debug)]
pub struct MemoryAlarms {
    account: super::Account,
}

impl MemoryAlarms {
    pub(crate) fn new(account: super::Account) -> Self {
        MemoryAlarms { account }
    }
}

#[async_trait]
impl crate::analysis::AlarmSource for MemoryAlarms {
    async fn firing(&self, names: &[String]) -> Result<Vec<String>> {
        self.account.enter(super::Op::AlarmsDescribe).await?;
        let s = self.account.lock();
        Ok(names.iter().filter(|n| s.firing.contains(*n)).cloned().collect())
    }
}

/// Where the account's clock starts, in seconds since 1970 (2027-01-15): any fixed instant would do.
const SIM_EPOCH: i64 = 1_800_000_000;

/// A standard normal draw (Box-Muller).
fn gaussian(rng: &mut fastrand::Rng) -> f64 {
    let u1 = rng.f64().max(f64::MIN_POSITIVE);
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A 64-bit mix of three values (SplitMix64 finaliser over their combination).
fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut z = a ^ b.rotate_left(21) ^ c.rotate_left(42) ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn name_hash(env: &EnvironmentName) -> u64 {
    env.as_str().bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(envs: &[&EnvironmentName], measures: &[Measure], periods: u32) -> MetricRequest {
        MetricRequest::new(
            envs.iter().map(|e| (*e).clone()).collect(),
            measures.to_vec(),
            jiff::Timestamp::from_second(1_800_000_000).unwrap(),
            Duration::from_secs(60),
            periods,
        )
    }

    #[tokio::test]
    async fn values_follow_the_behaviour_the_weight_and_are_repeatable() {
        let (blue, green) = (EnvironmentName::parse("blue").unwrap(), EnvironmentName::parse("green").unwrap());
        let metrics = SimulatedMetrics::new(5, 100.0).unwrap();
        metrics.serve(&blue, Traffic::default(), 90).unwrap();
        metrics.serve(&green, Traffic::default().errors_times(4.0).p99_times(2.0), 10).unwrap();
        let all = [Measure::Requests, Measure::ErrorRate, Measure::LatencyP99];
        let req = request(&[&blue, &green], &all, 60);
        let first = metrics.fetch(&req).await.unwrap();
        assert_eq!(first, metrics.fetch(&req).await.unwrap(), "a period asked twice is the same");
        assert_eq!(metrics.fetches(), 2);
        let mean = |env: &EnvironmentName, m: Measure| {
            let s = first.iter().find(|s| &s.environment == env && s.measure == m).unwrap();
            s.values.iter().sum::<f64>() / s.values.len() as f64
        };
        // 100 requests/s: 5,400 a minute on blue, 600 on green, give or take the load.
        assert!((mean(&blue, Measure::Requests) / 5400.0 - 1.0).abs() < 0.05);
        assert!((mean(&green, Measure::Requests) / 600.0 - 1.0).abs() < 0.05);
        assert!((mean(&blue, Measure::ErrorRate) / 0.01 - 1.0).abs() < 0.15);
        assert!((mean(&green, Measure::ErrorRate) / 0.04 - 1.0).abs() < 0.15);
        assert!((mean(&blue, Measure::LatencyP99) / 200.0 - 1.0).abs() < 0.05);
        // The canary serves a ninth of the requests: its percentile is noisier (sd about 15 %).
        assert!((mean(&green, Measure::LatencyP99) / 400.0 - 1.0).abs() < 0.1, "{}", mean(&green, Measure::LatencyP99));
        // A later window that overlaps gives the same values for the shared periods.
        let mut later = req.clone();
        later.start = req.start + jiff::SignedDuration::from_secs(60 * 10);
        later.periods = 5;
        let shifted = metrics.fetch(&later).await.unwrap();
        assert_eq!(shifted[0].values, first[0].values[10..15]);
    }

    #[tokio::test]
    async fn an_environment_without_traffic_has_no_data() {
        let idle = EnvironmentName::parse("idle").unwrap();
        let metrics = SimulatedMetrics::new(1, 50.0).unwrap();
        let series = metrics.fetch(&request(&[&idle], &[Measure::ErrorRate], 3)).await.unwrap();
        assert!(series[0].values.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn bad_settings_are_refused() {
        let env = EnvironmentName::parse("blue").unwrap();
        assert!(SimulatedMetrics::new(1, 0.0).is_err());
        assert!(SimulatedMetrics::new(1, f64::NAN).is_err());
        let m = SimulatedMetrics::new(1, 10.0).unwrap();
        assert!(m.serve(&env, Traffic::default(), 101).is_err());
        assert!(m.serve(&env, Traffic { error_rate: 1.5, ..Traffic::default() }, 10).is_err());
        assert!(m.serve(&env, Traffic { latency_p99_ms: 10.0, ..Traffic::default() }, 10).is_err());
    }
}
