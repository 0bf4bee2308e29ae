//! Metric analysis: a canary judged by its metrics against the baseline, over the same window.
//!
//! During a canary step both environments serve at once, so the canary's error rate and latency are
//! compared with the baseline's *in the same intervals*: a load spike or a slow dependency hits both
//! and cancels out, where a before/after comparison would blame the new revision for it.
//!
//! - A [`MetricSource`] answers, in one batched request per interval, every [`Measure`] of every
//!   environment over a window ([`memory::SimulatedMetrics`](crate::memory::SimulatedMetrics) on the
//!   simulated account; a mock; CloudWatch to come).
//! - An [`Analysis`] says which [`Metric`]s matter (the change that is bad, a tolerance, a weight,
//!   critical or not) and how to judge them ([`Method`]):
//!   - [`Method::Sequential`] (the default): after every interval, an anytime-valid confidence
//!     sequence on the paired differences (canary minus baseline, interval by interval) stops the
//!     step as soon as the evidence is in, for good or bad;
//!   - [`Method::FixedWindow`]: Netflix Kayenta's way, a Mann-Whitney U test and Hodges-Lehmann shift
//!     over the whole window, once at its end;
//!   - [`Method::Threshold`]: a static threshold on the canary alone, as a CloudWatch alarm (what
//!     ECS's deployment alarms do).
//! - [`Analysis::judge`] gives a [`Judgement`]: per metric, both summaries, the statistic and a
//!   [`Verdict`]; overall, Kayenta's weighted score (a failing critical metric scores 0) and a verdict
//!   once it is known. [`Analysis::run`] fetches and judges interval by interval.
//!
//! An [`AlarmGate`] adds named alarms (CloudWatch's, or the simulated account's) checked during
//! every bake and analysis: one firing fails the step.
//!
//! A step passes only on [`Verdict::Pass`]: a marginal score at the end of the window fails it.
//! The statistics are in [`stats`]; `docs/benchmarks.md` measures the judges on 1,000 canaries each.

pub mod alarms;
pub mod stats;

pub use alarms::{AlarmGate, AlarmSource};

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::EnvironmentName;

/// What to measure, per interval and environment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Measure {
    /// Requests served (an ALB target group's `RequestCount`).
    Requests,
    /// The share of requests answered with a 5xx status, 0 to 1 (`HTTPCode_Target_5XX_Count` over
    /// `RequestCount`).
    ErrorRate,
    /// The median response time, in milliseconds (`TargetResponseTime`, p50).
    LatencyP50,
    /// The 99th percentile response time, in milliseconds (`TargetResponseTime`, p99).
    LatencyP99,
    /// A metric the source knows by this name.
    Named(String),
}

impl std::fmt::Display for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Measure::Requests => f.write_str("requests"),
            Measure::ErrorRate => f.write_str("error rate"),
            Measure::LatencyP50 => f.write_str("latency p50"),
            Measure::LatencyP99 => f.write_str("latency p99"),
            Measure::Named(name) => f.write_str(name),
        }
    }
}

/// Which change of a metric is bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher is worse (errors, latency).
    Increase,
    /// Lower is worse (throughput, conversions).
    Decrease,
    /// Any change beyond the tolerance is bad.
    Either,
}

/// One metric a canary is judged on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metric {
    /// What is measured.
    pub measure: Measure,
    /// Which change is bad.
    pub bad: Direction,
    /// The change allowed, relative to the baseline's median: 0.2 allows the canary 20 % more (or
    /// less) than the baseline before the change counts. Default 0.2.
    pub tolerance: f64,
    /// An absolute change always allowed, so a baseline near zero (no errors) does not make every
    /// single error a failure. Default 0.
    pub min_change: f64,
    /// A failing critical metric fails the whole analysis (score 0). Default false.
    pub critical: bool,
    /// Its weight in the score. Default 1.
    pub weight: f64,
    /// The static threshold of [`Method::Threshold`] (an alarm's), on the canary's value.
    pub threshold: Option<f64>,
}

impl Metric {
    /// A metric with the default tolerance (20 %), weight 1, not critical.
    pub fn new(measure: Measure, bad: Direction) -> Self {
        Metric { measure, bad, tolerance: 0.2, min_change: 0.0, critical: false, weight: 1.0, threshold: None }
    }

    /// The 5xx rate: critical, 50 % more than the baseline allowed, or 0.2 percentage points.
    pub fn error_rate() -> Self {
        Metric::new(Measure::ErrorRate, Direction::Increase).tolerance(0.5).min_change(0.002).critical(true)
    }

    /// The p99 latency: 20 % more than the baseline allowed.
    pub fn latency_p99() -> Self {
        Metric::new(Measure::LatencyP99, Direction::Increase)
    }

    /// The absolute change allowed from a baseline whose median is `center`.
    pub fn allowed_change(&self, center: f64) -> f64 {
        (self.tolerance * center.abs()).max(self.min_change)
    }

    /// Whether `change` (canary minus baseline) is beyond what is allowed, in the bad direction.
    fn beyond(&self, change: f64, allowed: f64) -> bool {
        match self.bad {
            Direction::Increase => change > allowed,
            Direction::Decrease => change < -allowed,
            Direction::Either => change.abs() > allowed,
        }
    }

    /// Whether the whole interval `(lo, hi)` of the change is beyond what is allowed.
    fn all_beyond(&self, (lo, hi): (f64, f64), allowed: f64) -> bool {
        match self.bad {
            Direction::Increase => lo > allowed,
            Direction::Decrease => hi < -allowed,
            Direction::Either => lo > allowed || hi < -allowed,
        }
    }

    /// Whether the whole interval `(lo, hi)` of the change is within what is allowed.
    fn all_within(&self, (lo, hi): (f64, f64), allowed: f64) -> bool {
        match self.bad {
            Direction::Increase => hi <= allowed,
            Direction::Decrease => lo >= -allowed,
            Direction::Either => lo >= -allowed && hi <= allowed,
        }
    }
}

/// How the metrics are judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Method {
    /// After every interval (from [`Analysis::min_intervals`] on), an anytime-valid confidence
    /// sequence at level `1 - alpha` per metric on the paired differences: a metric fails as soon as
    /// the whole sequence is beyond its tolerance, passes as soon as it is all within; still open at
    /// the last interval, it passes if its mean change is within the tolerance.
    Sequential {
        /// The error allowed per metric, over all looks at once. Default 0.01.
        alpha: f64,
    },
    /// Kayenta's: at the end of the window, a Mann-Whitney U test and the Hodges-Lehmann shift with
    /// its confidence interval; a metric fails when the whole interval is beyond its tolerance, is
    /// marginal when only the shift is.
    FixedWindow {
        /// The level of the interval. Default 0.98.
        confidence: f64,
    },
    /// A static threshold on the canary alone, as a CloudWatch alarm: a metric fails when its last
    /// `datapoints` values are all beyond its [`threshold`](Metric::threshold); passes at the end.
    Threshold {
        /// Intervals in a row beyond the threshold that fail it. Default 3.
        datapoints: u32,
    },
}

/// A canary analysis: the metrics, how they are judged, and over how long. Defaults per field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Analysis {
    /// The metrics. Default [`Metric::error_rate`] and [`Metric::latency_p99`].
    pub metrics: Vec<Metric>,
    /// How they are judged. Default [`Method::Sequential`] with `alpha` 0.01.
    pub method: Method,
    /// One interval: the period of the metrics. Default 60 s (the period of ALB metrics).
    pub interval: Duration,
    /// Intervals before any verdict. Default 3.
    pub min_intervals: u32,
    /// Intervals at most: the window. Default 10.
    pub max_intervals: u32,
    /// The score (0 to 100) at or above which the canary passes. Default 95.
    pub pass_score: f64,
    /// The score at or above which it is marginal (it fails below). Default 75.
    pub marginal_score: f64,
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis {
            metrics: vec![Metric::error_rate(), Metric::latency_p99()],
            method: Method::Sequential { alpha: 0.01 },
            interval: Duration::from_secs(60),
            min_intervals: 3,
            max_intervals: 10,
            pass_score: 95.0,
            marginal_score: 75.0,
        }
    }
}

/// A verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No harm found.
    Pass,
    /// Leaning bad without proof; a step does not pass on it.
    Marginal,
    /// Harm found.
    Fail,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Marginal => "marginal",
            Verdict::Fail => "fail",
        })
    }
}

/// A summary of one side's values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How many values.
    pub n: u32,
    /// Their median.
    pub median: f64,
    /// Their mean.
    pub mean: f64,
}

impl Summary {
    /// The summary of `values` (NaN, no data, skipped).
    pub fn of(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Summary::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Summary { n: n as u32, median, mean: v.iter().sum::<f64>() / n as f64 }
    }
}

/// How one metric fared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MetricResult {
    /// The metric.
    pub measure: Measure,
    /// The baseline's values.
    pub baseline: Summary,
    /// The canary's values.
    pub canary: Summary,
    /// The estimated change, canary minus baseline (Hodges-Lehmann shift, mean paired difference,
    /// or the canary's last value for a threshold).
    pub change: f64,
    /// The interval of the change, where the method gives one.
    pub interval: Option<(f64, f64)>,
    /// The change allowed (absolute).
    pub allowed: f64,
    /// The statistic behind the verdict, in words.
    pub statistic: String,
    /// The verdict, once known.
    pub verdict: Option<Verdict>,
}

/// An analysis after some intervals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Judgement {
    /// The intervals judged.
    pub intervals: u32,
    /// The weighted score, 0 to 100, undecided metrics counted as passing.
    pub score: f64,
    /// The verdict, once known (`None`: wait for the next interval).
    pub verdict: Option<Verdict>,
    /// Per metric.
    pub metrics: Vec<MetricResult>,
}

impl Analysis {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first field out of range: no metrics, a negative or
    /// non-finite tolerance, change or weight, a threshold method with a metric without threshold,
    /// an interval under a second, `min_intervals` of 0 or above `max_intervals`, `alpha` or
    /// `confidence` outside `0..1`, scores outside `0..=100` or a marginal score above the pass score.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidConfig(format!("analysis: {what}")));
        if self.metrics.is_empty() {
            return bad("no metrics".into());
        }
        for m in &self.metrics {
            if !(m.tolerance.is_finite() && m.tolerance >= 0.0) {
                return bad(format!("{}: tolerance {} is not a finite value >= 0", m.measure, m.tolerance));
            }
            if !(m.min_change.is_finite() && m.min_change >= 0.0) {
                return bad(format!("{}: min_change {} is not a finite value >= 0", m.measure, m.min_change));
            }
            if !(m.weight.is_finite() && m.weight > 0.0) {
                return bad(format!("{}: weight {} is not a finite value > 0", m.measure, m.weight));
            }
            if matches!(self.method, Method::Threshold { .. }) && !m.threshold.is_some_and(f64::is_finite) {
                return bad(format!("{}: the threshold method needs a finite threshold", m.measure));
            }
        }
        if self.interval < Duration::from_secs(1) {
            return bad(format!("interval {:?} is under a second", self.interval));
        }
        if self.min_intervals == 0 || self.min_intervals > self.max_intervals || self.max_intervals > MAX_INTERVALS {
            return bad(format!(
                "min_intervals {} must be at least 1 and at most max_intervals {}, itself at most {MAX_INTERVALS}",
                self.min_intervals, self.max_intervals
            ));
        }
        match self.method {
            Method::Sequential { alpha } if !(alpha > 0.0 && alpha < 1.0) => {
                return bad(format!("alpha {alpha} is not in 0..1"));
            }
            Method::FixedWindow { confidence } if !(confidence > 0.0 && confidence < 1.0) => {
                return bad(format!("confidence {confidence} is not in 0..1"));
            }
            Method::Threshold { datapoints: 0 } => return bad("datapoints is 0".into()),
            _ => {}
        }
        let score = |s: f64| s.is_finite() && (0.0..=100.0).contains(&s);
        if !score(self.pass_score) || !score(self.marginal_score) || self.marginal_score > self.pass_score {
            return bad(format!(
                "scores: pass {} and marginal {} must be in 0..=100, marginal at most pass",
                self.pass_score, self.marginal_score
            ));
        }
        Ok(())
    }

    /// Judges the intervals seen so far. `data[i]` holds the baseline's and the canary's values of
    /// metric `i` ([`Analysis::metrics`]), one per interval, aligned (the same intervals); NaN is an
    /// interval without data. The intervals judged are the fewest any metric has.
    pub fn judge(&self, data: &[(Vec<f64>, Vec<f64>)]) -> Judgement {
        let empty = (Vec::new(), Vec::new());
        let sides = |i: usize| data.get(i).unwrap_or(&empty);
        let n = (0..self.metrics.len()).map(|i| sides(i).0.len().min(sides(i).1.len())).min().unwrap_or(0);
        let last = n >= self.max_intervals as usize;
        let metrics: Vec<MetricResult> = self
            .metrics
            .iter()
            .enumerate()
            .map(|(i, metric)| {
                let (baseline, canary) = sides(i);
                self.judge_metric(metric, &baseline[..n], &canary[..n], n as u32, last)
            })
            .collect();
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let total: f64 = self.metrics.iter().map(|m| m.weight).sum();
        let weighted = |pred: &dyn Fn(Option<Verdict>) -> f64| -> f64 {
            self.metrics.iter().zip(&metrics).map(|(m, r)| m.weight * pred(r.verdict)).sum::<f64>() / total * 100.0
        };
        let critical_failed =
            self.metrics.iter().zip(&metrics).any(|(m, r)| m.critical && r.verdict == Some(Verdict::Fail));
        // The best score still possible (undecided metrics pass) and the worst (they fail).
        let credit = |v: Option<Verdict>, open: f64| match v {
            Some(Verdict::Pass) => 1.0,
            Some(Verdict::Marginal) => 0.5,
            Some(Verdict::Fail) => 0.0,
            None => open,
        };
        let (best, worst) =
            if critical_failed { (0.0, 0.0) } else { (weighted(&|v| credit(v, 1.0)), weighted(&|v| credit(v, 0.0))) };
        let verdict = if best < self.marginal_score {
            Some(Verdict::Fail)
        } else if worst >= self.pass_score {
            Some(Verdict::Pass)
        } else if last || metrics.iter().all(|r| r.verdict.is_some()) {
            Some(if best >= self.pass_score {
                Verdict::Pass
            } else if best >= self.marginal_score {
                Verdict::Marginal
            } else {
                Verdict::Fail
            })
        } else {
            None
        };
        Judgement { intervals: n, score: best, verdict, metrics }
    }

    fn judge_metric(&self, metric: &Metric, baseline: &[f64], canary: &[f64], n: u32, last: bool) -> MetricResult {
        let (b, c) = (Summary::of(baseline), Summary::of(canary));
        let allowed = metric.allowed_change(b.median);
        let mut result = MetricResult {
            measure: metric.measure.clone(),
            baseline: b,
            canary: c,
            change: c.median - b.median,
            interval: None,
            allowed,
            statistic: String::new(),
            verdict: None,
        };
        match self.method {
            Method::Threshold { datapoints } => {
                let threshold = metric.threshold.unwrap_or(f64::INFINITY);
                let recent: Vec<f64> = canary.iter().rev().take(datapoints as usize).copied().collect();
                let breaching =
                    recent.len() == datapoints as usize && recent.iter().all(|v| metric.beyond(v - threshold, 0.0));
                result.change = canary.last().copied().unwrap_or(f64::NAN) - b.median;
                result.statistic = format!("last {} of {datapoints} values beyond {threshold}", recent.len());
                result.verdict = if breaching { Some(Verdict::Fail) } else { last.then_some(Verdict::Pass) };
            }
            Method::FixedWindow { confidence } => {
                if !last {
                    result.statistic = format!("waiting for the window ({n} of {} intervals)", self.max_intervals);
                    return result;
                }
                let (bv, cv) = (finite(baseline), finite(canary));
                match (stats::mann_whitney(&cv, &bv), stats::hodges_lehmann(&cv, &bv, confidence)) {
                    (Some(mw), Some((shift, lo, hi))) => {
                        result.change = shift;
                        result.interval = Some((lo, hi));
                        result.statistic = format!(
                            "Mann-Whitney U = {}, p = {:.4}; Hodges-Lehmann shift {shift:+.4} ({:.0} % interval {lo:+.4} to {hi:+.4}), allowed {allowed:.4}",
                            mw.u,
                            mw.p_value,
                            confidence * 100.0
                        );
                        result.verdict = Some(if metric.all_beyond((lo, hi), allowed) {
                            Verdict::Fail
                        } else if metric.beyond(shift, allowed) {
                            Verdict::Marginal
                        } else {
                            Verdict::Pass
                        });
                    }
                    _ => {
                        result.statistic = "no data".into();
                        result.verdict = Some(Verdict::Marginal);
                    }
                }
            }
            Method::Sequential { alpha } => {
                let mut cs = stats::ConfidenceSequence::default();
                for (b, c) in baseline.iter().zip(canary) {
                    if b.is_finite() && c.is_finite() {
                        cs.push(c - b);
                    }
                }
                result.change = cs.mean();
                let scale = allowed.max(f64::MIN_POSITIVE);
                let interval = cs.interval(alpha, scale, 0.0);
                result.interval = interval;
                result.statistic = match interval {
                    Some((lo, hi)) => format!(
                        "mean paired change {:+.4} over {} intervals, {:.0} % confidence sequence {lo:+.4} to {hi:+.4}, allowed {allowed:.4}",
                        cs.mean(),
                        cs.len(),
                        (1.0 - alpha) * 100.0
                    ),
                    None => format!("{} paired intervals: too few", cs.len()),
                };
                let decided = match interval {
                    Some(i) if n >= self.min_intervals && metric.all_beyond(i, allowed) => Some(Verdict::Fail),
                    Some(i) if n >= self.min_intervals && metric.all_within(i, allowed) => Some(Verdict::Pass),
                    _ => None,
                };
                result.verdict = decided.or_else(|| {
                    last.then(|| {
                        // No pairs at all, or a mean change beyond the tolerance: not a pass.
                        if cs.is_empty() || metric.beyond(cs.mean(), allowed) {
                            Verdict::Marginal
                        } else {
                            Verdict::Pass
                        }
                    })
                });
            }
        }
        result
    }

    /// Fetches and judges interval by interval from `start` (the time the canary step's traffic
    /// arrived), one batched [`MetricSource::fetch`] per interval, until a verdict: sleeps one
    /// interval (tokio's clock) before each fetch. `on_interval` sees every judgement.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`Analysis::validate`]; the source's errors.
    pub async fn run(
        &self,
        source: &dyn MetricSource,
        baseline: &EnvironmentName,
        canary: &EnvironmentName,
        start: jiff::Timestamp,
        mut on_interval: impl FnMut(&Judgement) + Send,
    ) -> Result<Judgement> {
        self.validate()?;
        let measures: Vec<Measure> = self.metrics.iter().map(|m| m.measure.clone()).collect();
        for periods in 1..=self.max_intervals {
            tokio::time::sleep(self.interval).await;
            let request = MetricRequest::new(
                vec![baseline.clone(), canary.clone()],
                measures.clone(),
                start,
                self.interval,
                periods,
            );
            let series = source.fetch(&request).await?;
            let values = |env: &EnvironmentName, measure: &Measure| {
                series
                    .iter()
                    .find(|s| &s.environment == env && &s.measure == measure)
                    .map(|s| s.values.clone())
                    .unwrap_or_default()
            };
            let data: Vec<(Vec<f64>, Vec<f64>)> =
                measures.iter().map(|m| (values(baseline, m), values(canary, m))).collect();
            let judgement = self.judge(&data);
            on_interval(&judgement);
            if judgement.verdict.is_some() {
                return Ok(judgement);
            }
        }
        Err(Error::Backend(crate::error::Detail::new(format!(
            "the metric source answered fewer than {} intervals",
            self.max_intervals
        ))))
    }
}

setters!(Metric { tolerance: f64, min_change: f64, critical: bool, weight: f64, #[into] threshold: Option<f64> });
setters!(Analysis {
    #[into] metrics: Vec<Metric>,
    method: Method,
    interval: Duration,
    min_intervals: u32,
    max_intervals: u32,
    pass_score: f64,
    marginal_score: f64,
});

fn finite(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| v.is_finite()).collect()
}

/// A request for every measure of every environment over `periods` periods from `start`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MetricRequest {
    /// The environments.
    pub environments: Vec<EnvironmentName>,
    /// The measures.
    pub measures: Vec<Measure>,
    /// The start of the first period.
    pub start: jiff::Timestamp,
    /// One period.
    pub period: Duration,
    /// How many periods.
    pub periods: u32,
}

impl MetricRequest {
    /// A request.
    pub fn new(
        environments: Vec<EnvironmentName>,
        measures: Vec<Measure>,
        start: jiff::Timestamp,
        period: Duration,
        periods: u32,
    ) -> Self {
        MetricRequest { environments, measures, start, period, periods }
    }

    /// Checks the request: a period of whole seconds, at least one; 1 to [`MAX_PERIODS`] periods.
    /// Every source calls it before its backend.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming what is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.period < Duration::from_secs(1) || self.period.subsec_nanos() != 0 {
            return Err(Error::InvalidConfig(format!("metric period {:?}: whole seconds, at least 1", self.period)));
        }
        if self.periods == 0 || self.periods > MAX_PERIODS {
            return Err(Error::InvalidConfig(format!("{} metric periods: 1 to {MAX_PERIODS}", self.periods)));
        }
        Ok(())
    }
}

/// The most periods one [`MetricRequest`] asks for: CloudWatch's limit of data points per metric
/// in one `GetMetricData` answer.
pub const MAX_PERIODS: u32 = 100_800;

/// The most intervals an [`Analysis`] window has: a day of one-minute intervals (the fixed-window
/// judge compares every pair of values, so the window bounds its work).
pub const MAX_INTERVALS: u32 = 1440;

/// The values of one measure of one environment, one per period (NaN: no data in that period).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Series {
    /// The environment.
    pub environment: EnvironmentName,
    /// The measure.
    pub measure: Measure,
    /// One value per period, oldest first. In JSON a period without data is `null`.
    #[serde(deserialize_with = "nulls_are_nan")]
    pub values: Vec<f64>,
}

fn nulls_are_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<f64>, D::Error> {
    let values: Vec<Option<f64>> = Deserialize::deserialize(d)?;
    Ok(values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

impl Series {
    /// A series.
    pub fn new(environment: EnvironmentName, measure: Measure, values: Vec<f64>) -> Self {
        Series { environment, measure, values }
    }
}

/// Answers metric requests.
///
/// # Contract
/// [`fetch`](MetricSource::fetch) answers one [`Series`] per environment and measure of the
/// request, each with at most `periods` values (fewer when the newest periods have no data yet), in
/// **one** request to the backend. The same period asked twice gives the same value once it is
/// complete.
///
/// # Errors
/// The backend's errors ([`Error::Throttled`], [`Error::Transient`], [`Error::AccessDenied`], ...).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait MetricSource: Send + Sync {
    /// Every measure of every environment of `request`.
    async fn fetch(&self, request: &MetricRequest) -> Result<Vec<Series>>;
}

#[cfg(test)]
mod tests;
