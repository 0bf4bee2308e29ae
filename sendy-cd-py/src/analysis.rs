//! The canary analysis: `Metric`, `Analysis`, and metric sources (`MetricSource`, or any object with
//! a `fetch(request)` method).

use pyo3::prelude::*;
use sendy_cd::analysis::{Direction, Measure, Method};

use crate::errors::{InvalidInputError, py};
use crate::model::{Int, Secs, seconds};

fn measure(name: &str) -> Measure {
    match name {
        "requests" => Measure::Requests,
        "error_rate" => Measure::ErrorRate,
        "latency_p50" => Measure::LatencyP50,
        "latency_p99" => Measure::LatencyP99,
        other => Measure::Named(other.to_owned()),
    }
}

fn measure_name(m: &Measure) -> String {
    match m {
        Measure::Requests => "requests".into(),
        Measure::ErrorRate => "error_rate".into(),
        Measure::LatencyP50 => "latency_p50".into(),
        Measure::LatencyP99 => "latency_p99".into(),
        Measure::Named(n) => n.clone(),
        _ => m.to_string(),
    }
}

fn direction(bad: &str) -> PyResult<Direction> {
    match bad {
        "increase" => Ok(Direction::Increase),
        "decrease" => Ok(Direction::Decrease),
        "either" => Ok(Direction::Either),
        other => Err(InvalidInputError::new_err(format!(
            "unknown direction {other:?}: expected increase, decrease or either"
        ))),
    }
}

/// One metric a canary is judged on: `measure` (`error_rate`, `latency_p99`, `latency_p50`,
/// `requests`, or a name your metric source knows), the change that is `bad` (`increase`,
/// `decrease`, `either`), the `tolerance` relative to the baseline's median, an absolute
/// `min_change` always allowed, `critical`, `weight`, and the static `threshold` of the
/// `threshold` method.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
#[derive(Clone)]
pub(crate) struct Metric {
    pub(crate) inner: sendy_cd::analysis::Metric,
}

#[pymethods]
impl Metric {
    #[new]
    #[pyo3(signature = (measure, bad = "increase", *, tolerance = 0.2, min_change = 0.0, critical = false, weight = 1.0, threshold = None))]
    #[pyo3(
        text_signature = "(measure, bad='increase', *, tolerance=0.2, min_change=0.0, critical=False, weight=1.0, threshold=None)"
    )]
    fn new(
        measure: &str,
        bad: &str,
        tolerance: f64,
        min_change: f64,
        critical: bool,
        weight: f64,
        threshold: Option<f64>,
    ) -> PyResult<Self> {
        let inner = sendy_cd::analysis::Metric::new(self::measure(measure), direction(bad)?)
            .tolerance(tolerance)
            .min_change(min_change)
            .critical(critical)
            .weight(weight)
            .threshold(threshold);
        // Checked alone, as `Analysis` would check it.
        py(sendy_cd::analysis::Analysis::default().metrics(vec![inner.clone()]).validate())?;
        Ok(Metric { inner })
    }
    /// The 5xx rate: critical, 50 % more than the baseline allowed, or 0.2 percentage points.
    #[staticmethod]
    fn error_rate() -> Self {
        Metric { inner: sendy_cd::analysis::Metric::error_rate() }
    }
    /// The p99 latency: 20 % more than the baseline allowed.
    #[staticmethod]
    fn latency_p99() -> Self {
        Metric { inner: sendy_cd::analysis::Metric::latency_p99() }
    }
    /// This metric with a static threshold (for the `threshold` method).
    fn with_threshold(&self, threshold: f64) -> Self {
        Metric { inner: self.inner.clone().threshold(threshold) }
    }
    #[getter]
    fn measure(&self) -> String {
        measure_name(&self.inner.measure)
    }
    #[getter]
    fn tolerance(&self) -> f64 {
        self.inner.tolerance
    }
    #[getter]
    fn critical(&self) -> bool {
        self.inner.critical
    }
    fn __repr__(&self) -> String {
        format!("Metric({:?}, tolerance={}, critical={})", self.measure(), self.inner.tolerance, self.inner.critical)
    }
}

/// A canary analysis (see `docs/analysis.md`): the `metrics` (default error rate and p99 latency),
/// the `method` (`sequential`, the default, with `alpha`; `fixed_window`, Kayenta's, with
/// `confidence`; `threshold`, an alarm gate, with `datapoints`), one `interval` in seconds, at least
/// `min_intervals` and at most `max_intervals` of them, and the `pass_score` / `marginal_score`.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
#[derive(Clone)]
pub(crate) struct Analysis {
    pub(crate) inner: sendy_cd::analysis::Analysis,
}

#[pymethods]
impl Analysis {
    #[new]
    #[pyo3(signature = (metrics = None, method = "sequential", *, alpha = 0.01, confidence = 0.98, datapoints = Int(3), interval = Secs(60.0), min_intervals = Int(3), max_intervals = Int(10), pass_score = 95.0, marginal_score = 75.0))]
    #[pyo3(
        text_signature = "(metrics=None, method='sequential', *, alpha=0.01, confidence=0.98, datapoints=3, interval=60.0, min_intervals=3, max_intervals=10, pass_score=95.0, marginal_score=75.0)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        metrics: Option<Vec<PyRef<'_, Metric>>>,
        method: &str,
        alpha: f64,
        confidence: f64,
        datapoints: Int<u32>,
        interval: Secs,
        min_intervals: Int<u32>,
        max_intervals: Int<u32>,
        pass_score: f64,
        marginal_score: f64,
    ) -> PyResult<Self> {
        let method = match method {
            "sequential" => Method::Sequential { alpha },
            "fixed_window" => Method::FixedWindow { confidence },
            "threshold" => Method::Threshold { datapoints: datapoints.0 },
            other => {
                return Err(InvalidInputError::new_err(format!(
                    "unknown method {other:?}: expected sequential, fixed_window or threshold"
                )));
            }
        };
        let mut inner = sendy_cd::analysis::Analysis::default()
            .method(method)
            .interval(seconds("interval", interval)?)
            .min_intervals(min_intervals.0)
            .max_intervals(max_intervals.0)
            .pass_score(pass_score)
            .marginal_score(marginal_score);
        if let Some(metrics) = metrics {
            inner = inner.metrics(metrics.iter().map(|m| m.inner.clone()).collect::<Vec<_>>());
        }
        py(inner.validate())?;
        Ok(Analysis { inner })
    }
    #[getter]
    fn metrics(&self) -> Vec<Metric> {
        self.inner.metrics.iter().cloned().map(|inner| Metric { inner }).collect()
    }
    #[getter]
    fn max_intervals(&self) -> u32 {
        self.inner.max_intervals
    }
    fn __repr__(&self) -> String {
        format!("Analysis({} metrics, {:?})", self.inner.metrics.len(), self.inner.method)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Metric>()?;
    m.add_class::<Analysis>()?;
    Ok(())
}
