//! Revisions, events and execution records as typed Python objects, each with `to_dict()` and
//! `to_json()` (the same JSON as the Rust types' serde form).

use pyo3::prelude::*;
use pyo3::types::{PyAny, PyDict};
use serde::Serialize;

use crate::errors::{InvalidInputError, py};

/// `value` as plain Python data (dicts, lists, str, int, float, bool, None), through its JSON form.
pub(crate) fn to_python<'py>(py: Python<'py>, value: &impl Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| InvalidInputError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// `value` as a Python backend method receives it: plain data, with durations as `datetime.timedelta`.
pub(crate) fn to_python_argument<'py>(py: Python<'py>, value: &impl Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| InvalidInputError::new_err(e.to_string()))?;
    py.import("sendy_cd._bridge")?.call_method1("loads_arguments", (text,))
}

/// `ms` milliseconds as a `datetime.timedelta`.
fn timedelta(py: Python<'_>, ms: u64) -> PyResult<Bound<'_, PyAny>> {
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("milliseconds", ms)?;
    py.import("datetime")?.getattr("timedelta")?.call((), Some(&kwargs))
}

fn to_json(value: &impl Serialize) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| InvalidInputError::new_err(e.to_string()))
}

/// `s` seconds as a duration; InvalidInputError names `name` for a negative or non-finite value.
pub(crate) fn seconds(name: &str, s: Secs) -> PyResult<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(s.0)
        .map_err(|_| InvalidInputError::new_err(format!("{name}: {} is not a duration in seconds", s.0)))
}

/// A duration argument: seconds as an `int` or a `float`, or a `datetime.timedelta`. A value no
/// float can hold is an `InvalidInputError` (never an `OverflowError`); a value of another type is a
/// `TypeError`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Secs(pub(crate) f64);

impl<'a, 'py> FromPyObject<'a, 'py> for Secs {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        let timedelta = py.import("datetime")?.getattr("timedelta")?;
        let value = if obj.is_instance(&timedelta)? { obj.call_method0("total_seconds")? } else { obj.to_owned() };
        match value.extract::<f64>() {
            Ok(s) => Ok(Secs(s)),
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(py) => Err(InvalidInputError::new_err(
                format!("{} seconds is out of range", sendy_cd::error::truncate(&value.to_string())),
            )),
            Err(e) => Err(e),
        }
    }
}

/// An integer argument that must fit `T`: negative or too large values are an `InvalidInputError`
/// naming the range (never an `OverflowError`); a value of another type is a `TypeError`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Int<T>(pub(crate) T);

impl<'a, 'py, T> FromPyObject<'a, 'py> for Int<T>
where
    T: TryFrom<i128> + num_range::Range,
{
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        let shown = sendy_cd::error::truncate(&obj.to_owned().to_string());
        let out_of_range = || InvalidInputError::new_err(format!("{shown} is not an integer in {}", T::RANGE));
        let wide = match obj.extract::<i128>() {
            Ok(v) => v,
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(py) => return Err(out_of_range()),
            Err(e) => return Err(e),
        };
        T::try_from(wide).map(Int).map_err(|_| out_of_range())
    }
}

/// The range of each integer type arguments take, for error messages.
pub(crate) mod num_range {
    /// An integer type's range, as text.
    pub(crate) trait Range {
        /// `0..=255` and so on.
        const RANGE: &'static str;
    }
    impl Range for u8 {
        const RANGE: &'static str = "0..=255";
    }
    impl Range for u16 {
        const RANGE: &'static str = "0..=65535";
    }
    impl Range for u32 {
        const RANGE: &'static str = "0..=4294967295";
    }
    impl Range for u64 {
        const RANGE: &'static str = "0..=18446744073709551615";
    }
}

/// A commit of a branch, as deployed.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
#[derive(Clone)]
pub(crate) struct Revision {
    pub(crate) inner: sendy_cd::Revision,
}

#[pymethods]
impl Revision {
    /// A revision; `time` is an RFC 3339 timestamp (now by default).
    #[new]
    #[pyo3(signature = (commit, branch, message, author, time = None))]
    fn new(commit: &str, branch: &str, message: &str, author: &str, time: Option<&str>) -> PyResult<Self> {
        let time = match time {
            Some(t) => t.parse().map_err(|e| InvalidInputError::new_err(format!("time {t:?}: {e}")))?,
            None => jiff::Timestamp::now(),
        };
        Ok(Revision {
            inner: sendy_cd::Revision {
                commit: py(sendy_cd::CommitId::parse(commit).map_err(Into::into))?,
                branch: py(sendy_cd::BranchName::parse(branch).map_err(Into::into))?,
                message: message.to_owned(),
                author: author.to_owned(),
                time,
            },
        })
    }
    #[getter]
    fn commit(&self) -> String {
        self.inner.commit.to_string()
    }
    #[getter]
    fn branch(&self) -> String {
        self.inner.branch.to_string()
    }
    #[getter]
    fn message(&self) -> String {
        self.inner.message.clone()
    }
    #[getter]
    fn author(&self) -> String {
        self.inner.author.clone()
    }
    #[getter]
    fn time(&self) -> String {
        self.inner.time.to_string()
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!("Revision({} on {}: {:?})", self.inner.commit.short(), self.inner.branch, self.inner.message)
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.extract::<PyRef<'_, Revision>>().is_ok_and(|o| o.inner == self.inner)
    }
}

/// Something that happened in an execution: `kind` is the event's name (`execution_started`,
/// `stage_started`, `stage_progress`, `stage_finished`, `traffic_shifted`, `execution_finished`, ...);
/// `to_dict()` has every field.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
pub(crate) struct Event {
    pub(crate) inner: sendy_cd::Event,
    value: serde_json::Value,
}

/// Every kind of event (`Event.kind`), as the JSON names them.
const EVENT_KINDS: [&str; 14] = [
    "execution_started",
    "stage_started",
    "stage_progress",
    "step_started",
    "step_finished",
    "traffic_shifted",
    "analysis_judged",
    "managed_stage",
    "hook_decided",
    "stage_finished",
    "execution_finished",
    "pipeline_stage_started",
    "pipeline_stage_progress",
    "pipeline_stage_finished",
];

impl Event {
    pub(crate) fn new(inner: sendy_cd::Event) -> Self {
        let value = serde_json::to_value(&inner).unwrap_or_default();
        Event { inner, value }
    }
    fn field(&self, key: &str) -> Option<String> {
        self.value.get(key).and_then(|v| v.as_str()).map(str::to_owned)
    }
}

#[pymethods]
impl Event {
    #[getter]
    fn kind(&self) -> String {
        self.field("event").unwrap_or_default()
    }
    #[getter]
    fn execution(&self) -> String {
        self.inner.execution.to_string()
    }
    #[getter]
    fn elapsed_ms(&self) -> u64 {
        self.inner.elapsed_ms
    }
    /// The stage, for stage events.
    #[getter]
    fn stage(&self) -> Option<String> {
        self.field("stage")
    }
    /// The environment, for events about one.
    #[getter]
    fn environment(&self) -> Option<String> {
        self.field("environment")
    }
    /// The step, for `step_started` and `step_finished`.
    #[getter]
    fn step(&self) -> Option<String> {
        self.field("step")
    }
    /// What changed, for `stage_progress`.
    #[getter]
    fn message(&self) -> Option<String> {
        self.field("message")
    }
    /// The CodePipeline stage's name, for the `pipeline_stage_*` events.
    #[getter]
    fn pipeline_stage(&self) -> Option<String> {
        self.field("name")
    }
    /// The new weights by set identifier, for `traffic_shifted`.
    #[getter]
    fn weights<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.value.get("weights").map(|w| to_python(py, w)).transpose()
    }
    /// How a stage, step or execution ended (`succeeded`, `failed`, `done`, `cancelled`, ...), for
    /// the `*_finished` events.
    #[getter]
    fn outcome(&self) -> Option<String> {
        self.value.get("outcome").and_then(|o| o.get("status")).and_then(|s| s.as_str()).map(str::to_owned)
    }
    /// Why it failed, for a `*_finished` event that failed.
    #[getter]
    fn reason(&self) -> Option<String> {
        self.value.get("outcome").and_then(|o| o.get("reason")).and_then(|s| s.as_str()).map(str::to_owned)
    }
    /// How long it took, for `stage_finished`, `pipeline_stage_finished` and `execution_finished`.
    #[getter]
    fn duration_ms(&self) -> Option<u64> {
        self.value.get("duration_ms").and_then(serde_json::Value::as_u64)
    }
    /// The revision deployed, for `execution_started` (None for a switch back).
    #[getter]
    fn revision(&self) -> Option<Revision> {
        match &self.inner.kind {
            sendy_cd::EventKind::ExecutionStarted { revision, .. } => revision.clone().map(|inner| Revision { inner }),
            _ => None,
        }
    }
    /// Every event kind, in the order an execution emits them.
    #[staticmethod]
    fn kinds() -> Vec<&'static str> {
        EVENT_KINDS.to_vec()
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.value)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.value)
    }
    fn __repr__(&self) -> String {
        let mut s = format!("Event({} at {} ms", self.kind(), self.inner.elapsed_ms);
        if let Some(stage) = self.stage() {
            s.push_str(&format!(", {stage}"));
        }
        s + ")"
    }
}

/// One stage of an execution.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
pub(crate) struct StageRecord {
    inner: sendy_cd::StageRecord,
}

#[pymethods]
impl StageRecord {
    #[getter]
    fn stage(&self) -> String {
        self.inner.stage.to_string()
    }
    #[getter]
    fn environment(&self) -> Option<String> {
        self.inner.environment.as_ref().map(ToString::to_string)
    }
    #[getter]
    fn started_ms(&self) -> u64 {
        self.inner.started_ms
    }
    #[getter]
    fn finished_ms(&self) -> Option<u64> {
        self.inner.finished_ms
    }
    #[getter]
    fn duration_ms(&self) -> Option<u64> {
        self.inner.duration_ms()
    }
    /// How long the stage took, as a `datetime.timedelta`, once it is over.
    #[getter]
    fn duration<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.duration_ms().map(|ms| timedelta(py, ms)).transpose()
    }
    /// `running`, `succeeded`, `failed`, `cancelled` or `interrupted` (settled by a later process).
    #[getter]
    fn outcome(&self) -> String {
        tag(&self.inner.outcome, "status")
    }
    /// Why it failed, if it did.
    #[getter]
    fn reason(&self) -> Option<String> {
        match &self.inner.outcome {
            sendy_cd::StageOutcome::Failed { reason } => Some(reason.clone()),
            _ => None,
        }
    }
    #[getter]
    fn detail(&self) -> Option<String> {
        self.inner.detail.clone()
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!("StageRecord({} on {}: {})", self.stage(), self.environment().unwrap_or("-".into()), self.outcome())
    }
}

fn tag(value: &impl Serialize, key: &str) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.get(key).and_then(|t| t.as_str()).map(str::to_owned).or_else(|| v.as_str().map(str::to_owned)))
        .unwrap_or_default()
}

/// What an execution did, stage by stage and step by step, and how it ended. Complete even when the
/// execution failed or was cancelled.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
#[derive(Clone)]
pub(crate) struct ExecutionRecord {
    pub(crate) inner: sendy_cd::ExecutionRecord,
}

#[pymethods]
impl ExecutionRecord {
    #[getter]
    fn id(&self) -> String {
        self.inner.id.to_string()
    }
    /// `deploy`, `switch_back` or `redeploy`.
    #[getter]
    fn kind(&self) -> String {
        tag(&self.inner.kind, "kind")
    }
    #[getter]
    fn strategy(&self) -> String {
        self.inner.strategy.clone()
    }
    #[getter]
    fn revision(&self) -> Option<Revision> {
        self.inner.revision.clone().map(|inner| Revision { inner })
    }
    #[getter]
    fn started_at(&self) -> String {
        self.inner.started_at.to_string()
    }
    #[getter]
    fn duration_ms(&self) -> Option<u64> {
        self.inner.duration_ms
    }
    /// How long the execution took, as a `datetime.timedelta`, once it is over.
    #[getter]
    fn duration<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.duration_ms.map(|ms| timedelta(py, ms)).transpose()
    }
    /// The environment the execution deployed to.
    #[getter]
    fn target(&self) -> Option<String> {
        self.inner.target.as_ref().map(ToString::to_string)
    }
    /// The environment that was live before.
    #[getter]
    fn previous(&self) -> Option<String> {
        self.inner.previous.as_ref().map(ToString::to_string)
    }
    /// The built image, `registry/repository:tag@digest`.
    #[getter]
    fn image(&self) -> Option<String> {
        self.inner.image.as_ref().map(|i| i.image.to_string())
    }
    #[getter]
    fn traffic_before<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner.traffic_before)
    }
    #[getter]
    fn traffic_after<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner.traffic_after)
    }
    #[getter]
    fn stages(&self) -> Vec<StageRecord> {
        self.inner.stages.iter().map(|s| StageRecord { inner: s.clone() }).collect()
    }
    /// `running`, `succeeded`, `failed` or `cancelled`.
    #[getter]
    fn outcome(&self) -> String {
        tag(&self.inner.outcome, "status")
    }
    #[getter]
    fn succeeded(&self) -> bool {
        self.inner.outcome == sendy_cd::Outcome::Succeeded
    }
    /// The stage that failed or was cancelled.
    #[getter]
    fn failed_stage(&self) -> Option<String> {
        match &self.inner.outcome {
            sendy_cd::Outcome::Failed { stage, .. } => Some(stage.to_string()),
            sendy_cd::Outcome::Cancelled { stage, .. } | sendy_cd::Outcome::Interrupted { stage, .. } => {
                stage.as_ref().map(ToString::to_string)
            }
            _ => None,
        }
    }
    /// Why it failed.
    #[getter]
    fn reason(&self) -> Option<String> {
        match &self.inner.outcome {
            sendy_cd::Outcome::Failed { reason, .. } => Some(reason.clone()),
            _ => None,
        }
    }
    /// What was undone after a failure or cancellation, as a dict (`{"action": "traffic_restored",
    /// "to": "blue"}`), or None.
    #[getter]
    fn recovery<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match &self.inner.outcome {
            sendy_cd::Outcome::Failed { recovery, .. }
            | sendy_cd::Outcome::Cancelled { recovery, .. }
            | sendy_cd::Outcome::Interrupted { recovery, .. } => to_python(py, recovery).map(Some),
            _ => Ok(None),
        }
    }
    /// Who settled it after the process running it stopped part-way (`Pipeline.resume`), or None.
    #[getter]
    fn resumed_by(&self) -> Option<String> {
        self.inner.resumed_by.clone()
    }
    /// Whether every stage and the execution itself have finished.
    fn is_complete(&self) -> bool {
        self.inner.is_complete()
    }
    /// This execution's figures against `baseline`'s: a list of `{"metric", "baseline", "current",
    /// "change_pct"}`.
    fn compare<'py>(&self, py: Python<'py>, baseline: &ExecutionRecord) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner.compare(&baseline.inner))
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    /// A record read back from `to_json()`.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<ExecutionRecord> {
        serde_json::from_str(text)
            .map(|inner| ExecutionRecord { inner })
            .map_err(|e| InvalidInputError::new_err(format!("not an execution record: {e}")))
    }
    fn __repr__(&self) -> String {
        format!("ExecutionRecord({} {}: {})", self.id(), self.kind(), self.outcome())
    }
}

/// A dict of `{set identifier: weight}`.
pub(crate) fn weights<'py>(py: Python<'py>, split: &sendy_cd::TrafficSplit) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (id, w) in split.iter() {
        d.set_item(id.to_string(), w)?;
    }
    Ok(d)
}
