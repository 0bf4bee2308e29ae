//! Strategies, environments, the pipeline, executions and event streams.

use std::sync::Arc;

use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyAny;
use tokio_util::sync::CancellationToken;

use crate::backends::{Deployer, Stack, Verifier};
use crate::builder::{PipelineBuilder, one_runtime};
use crate::errors::{InvalidInputError, SendyError, py, to_py};
use crate::model::{Event, ExecutionRecord, Int, Revision, Secs, seconds};
use crate::runtime::Rt;

/// How traffic moves to a new revision: `Strategy.all_at_once()`, `Strategy.blue_green()` (the
/// default) or `Strategy.canary(steps, bake)`.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
#[derive(Clone)]
pub(crate) struct Strategy {
    pub(crate) inner: sendy_cd::Strategy,
}

#[pymethods]
impl Strategy {
    /// Update the live environment in place; no DNS change.
    #[staticmethod]
    fn all_at_once() -> Self {
        Strategy { inner: sendy_cd::Strategy::AllAtOnce }
    }
    /// Deploy and verify the idle environment, then move all traffic to it in one change.
    #[staticmethod]
    fn blue_green() -> Self {
        Strategy { inner: sendy_cd::Strategy::BlueGreen }
    }
    /// Like blue/green, but the new environment's share moves through `steps` (percent, strictly
    /// increasing, ending at 100), baking `bake` seconds and verifying at each. With an `analysis`,
    /// each step but the last is judged by its metrics against the environment it takes traffic
    /// from, in place of the bake (the pipeline needs `metrics(...)`).
    #[staticmethod]
    #[pyo3(signature = (steps = vec![Int(10), Int(50), Int(100)], bake = Secs(300.0), analysis = None), text_signature = "(steps=..., bake=300.0, analysis=None)")]
    fn canary(
        steps: Vec<Int<u8>>,
        bake: Secs,
        analysis: Option<PyRef<'_, crate::analysis::Analysis>>,
    ) -> PyResult<Self> {
        let canary = sendy_cd::Canary::new(steps.into_iter().map(|s| s.0).collect::<Vec<u8>>(), seconds("bake", bake)?)
            .analysis(analysis.map(|a| a.inner.clone()));
        canary.validate().map_err(|e| InvalidInputError::new_err(e.to_string()))?;
        Ok(Strategy { inner: sendy_cd::Strategy::Canary(canary) })
    }
    /// One environment whose deployer shifts the traffic itself (ECS's own BLUE_GREEN, LINEAR or
    /// CANARY between two target groups): the pipeline follows the service deployment and decides
    /// each PAUSE hook: the test listener (stack output `test_url_output`, None to skip) at
    /// POST_TEST_TRAFFIC_SHIFT, the `analysis` and the service URL at each production step, the
    /// service URL at POST_PRODUCTION_TRAFFIC_SHIFT. The environment needs
    /// `EnvironmentBuilder.managed(...)`, and an analysis the pipeline's `metrics(...)`.
    #[staticmethod]
    #[pyo3(signature = (test_url_output = Some("TestUrl".to_owned()), analysis = None), text_signature = "(test_url_output='TestUrl', analysis=None)")]
    fn ecs_managed(
        test_url_output: Option<String>,
        analysis: Option<PyRef<'_, crate::analysis::Analysis>>,
    ) -> PyResult<Self> {
        let analysis = analysis.map(|a| a.inner.clone());
        if let Some(a) = &analysis {
            a.validate().map_err(|e| InvalidInputError::new_err(e.to_string()))?;
        }
        let managed = sendy_cd::EcsManaged::default().test_url_output(test_url_output).analysis(analysis);
        Ok(Strategy { inner: sendy_cd::Strategy::EcsManaged(managed) })
    }
    #[getter]
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn __repr__(&self) -> String {
        format!("Strategy.{}()", self.inner.name())
    }
}

/// How an environment is verified through its URL.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
#[derive(Clone)]
pub(crate) struct HealthCheck {
    pub(crate) inner: sendy_cd::HealthCheck,
}

#[pymethods]
impl HealthCheck {
    #[new]
    #[pyo3(
        text_signature = "(path='/health', expected_status=200, consecutive_successes=3, failure_threshold=3, request_timeout=5.0, interval=2.0)"
    )]
    #[pyo3(signature = (path = "/health", expected_status = Int(200), consecutive_successes = Int(3), failure_threshold = Int(3), request_timeout = Secs(5.0), interval = Secs(2.0)))]
    fn new(
        path: &str,
        expected_status: Int<u16>,
        consecutive_successes: Int<u32>,
        failure_threshold: Int<u32>,
        request_timeout: Secs,
        interval: Secs,
    ) -> PyResult<Self> {
        let inner = sendy_cd::HealthCheck::default()
            .path(path)
            .expected_status(expected_status.0)
            .consecutive_successes(consecutive_successes.0)
            .failure_threshold(failure_threshold.0)
            .request_timeout(seconds("request_timeout", request_timeout)?)
            .interval(seconds("interval", interval)?);
        // Checked here, at the call that received the values.
        inner.validate().map_err(|e| InvalidInputError::new_err(e.to_string()))?;
        Ok(HealthCheck { inner })
    }
    #[getter]
    fn path(&self) -> String {
        self.inner.path.clone()
    }
    #[getter]
    fn consecutive_successes(&self) -> u32 {
        self.inner.consecutive_successes
    }
}

/// One environment (blue, green, ...): its stack, deployer and verifier.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
#[derive(Clone)]
pub(crate) struct Environment {
    pub(crate) inner: sendy_cd::Environment,
    pub(crate) rt: Option<Rt>,
}

#[pymethods]
impl Environment {
    /// A builder of environment `name`.
    #[staticmethod]
    fn builder(name: &str) -> EnvironmentBuilder {
        EnvironmentBuilder { name: name.to_owned(), ..EnvironmentBuilder::default() }
    }
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }
    #[getter]
    fn stack_name(&self) -> String {
        self.inner.stack_name().to_string()
    }
    #[getter]
    fn dns_target(&self) -> String {
        self.inner.dns_target().to_string()
    }
    fn __repr__(&self) -> String {
        format!("Environment({})", self.inner.name())
    }
}

/// Collects an environment's parts; `build()` validates them.
#[pyclass(module = "sendy_cd._sendy_cd")]
#[derive(Default)]
pub(crate) struct EnvironmentBuilder {
    name: String,
    stack: Option<(Arc<dyn sendy_cd::Stack>, String)>,
    parameters: Option<sendy_cd::StackParameters>,
    image_parameter: Option<Option<String>>,
    url_output: Option<String>,
    deployer: Option<Arc<dyn sendy_cd::Deployer>>,
    managed: Option<Arc<dyn sendy_cd::ManagedDeployer>>,
    verifier: Option<Arc<dyn sendy_cd::Verifier>>,
    dns_target: Option<String>,
    rts: Vec<Rt>,
}

impl EnvironmentBuilder {
    /// A builder wired to a simulated account's backends.
    pub(crate) fn simulated(
        name: &str,
        stack: Arc<dyn sendy_cd::Stack>,
        stack_name: String,
        deployer: Arc<dyn sendy_cd::Deployer>,
        verifier: Arc<dyn sendy_cd::Verifier>,
        rt: Rt,
    ) -> Self {
        EnvironmentBuilder {
            name: name.to_owned(),
            stack: Some((stack, stack_name)),
            deployer: Some(deployer),
            verifier: Some(verifier),
            rts: vec![rt],
            ..EnvironmentBuilder::default()
        }
    }

    /// A builder wired to a simulated account's managed service.
    pub(crate) fn simulated_managed(
        name: &str,
        stack: Arc<dyn sendy_cd::Stack>,
        stack_name: String,
        managed: Arc<dyn sendy_cd::ManagedDeployer>,
        verifier: Arc<dyn sendy_cd::Verifier>,
        rt: Rt,
    ) -> Self {
        let deployer: Arc<dyn sendy_cd::Deployer> = managed.clone();
        EnvironmentBuilder {
            image_parameter: Some(None),
            managed: Some(managed),
            ..Self::simulated(name, stack, stack_name, deployer, verifier, rt)
        }
    }
}

#[pymethods]
impl EnvironmentBuilder {
    /// The stack backend and the stack's name.
    fn stack<'py>(mut slf: PyRefMut<'py, Self>, stack: &Bound<'py, PyAny>, name: &str) -> PyRefMut<'py, Self> {
        let (inner, rt) = Stack::resolve(stack);
        slf.rts.extend(rt);
        slf.stack = Some((inner, name.to_owned()));
        slf
    }
    /// Parameters every stack change sets (besides the image).
    fn parameters<'py>(
        mut slf: PyRefMut<'py, Self>,
        parameters: std::collections::BTreeMap<String, String>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        slf.parameters = Some(py(sendy_cd::StackParameters::parse(parameters).map_err(Into::into))?);
        Ok(slf)
    }
    /// The stack parameter that receives the image (default `ImageUri`), or None when the deployer
    /// alone rolls the image out.
    #[pyo3(signature = (key))]
    fn image_parameter(mut slf: PyRefMut<'_, Self>, key: Option<String>) -> PyRefMut<'_, Self> {
        slf.image_parameter = Some(key);
        slf
    }
    /// The stack output holding the service URL (default `ServiceUrl`).
    fn url_output(mut slf: PyRefMut<'_, Self>, key: String) -> PyRefMut<'_, Self> {
        slf.url_output = Some(key);
        slf
    }
    fn deployer<'py>(mut slf: PyRefMut<'py, Self>, deployer: &Bound<'py, PyAny>) -> PyRefMut<'py, Self> {
        let (inner, rt) = Deployer::resolve(deployer);
        slf.rts.extend(rt);
        slf.deployer = Some(inner);
        slf
    }
    /// A deployer whose backend shifts the traffic (for `Strategy.ecs_managed()`): it is the
    /// environment's deployer too.
    fn managed<'py>(
        mut slf: PyRefMut<'py, Self>,
        deployer: PyRef<'py, crate::backends::ManagedDeployer>,
    ) -> PyRefMut<'py, Self> {
        let base = deployer.as_super();
        slf.rts.extend(base.rt.clone());
        slf.deployer = Some(base.inner.clone());
        slf.managed = Some(deployer.inner.clone());
        slf
    }
    fn verifier<'py>(mut slf: PyRefMut<'py, Self>, verifier: &Bound<'py, PyAny>) -> PyRefMut<'py, Self> {
        let (inner, rt) = Verifier::resolve(verifier);
        slf.rts.extend(rt);
        slf.verifier = Some(inner);
        slf
    }
    /// The environment's set identifier in the weighted record (default: its name).
    fn dns_target(mut slf: PyRefMut<'_, Self>, set_identifier: String) -> PyRefMut<'_, Self> {
        slf.dns_target = Some(set_identifier);
        slf
    }
    fn build(&self) -> PyResult<Environment> {
        let mut b = sendy_cd::Environment::builder(&self.name);
        if let Some((stack, name)) = &self.stack {
            b = b.stack(stack.clone(), name);
        }
        if let Some(p) = &self.parameters {
            b = b.parameters(p.clone());
        }
        if let Some(key) = &self.image_parameter {
            b = b.image_parameter(key.as_deref());
        }
        if let Some(key) = &self.url_output {
            b = b.url_output(key);
        }
        if let Some(d) = &self.deployer {
            b = b.deployer(d.clone());
        }
        if let Some(m) = &self.managed {
            b = b.managed(m.clone());
        }
        if let Some(v) = &self.verifier {
            b = b.verifier(v.clone());
        }
        if let Some(t) = &self.dns_target {
            b = b.dns_target(t);
        }
        Ok(Environment { inner: py(b.build())?, rt: one_runtime(self.rts.iter().cloned())? })
    }
}

/// A deployment pipeline: source, builder, environments, DNS and strategy. Executions of one
/// pipeline never overlap. Every long operation has a blocking form that releases the GIL and stops
/// on Ctrl-C, and an `_async` twin for asyncio whose cancellation cancels the work.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
pub(crate) struct Pipeline {
    pub(crate) inner: Arc<sendy_cd::Pipeline>,
    pub(crate) rt: Rt,
}

type RecordResult = Result<sendy_cd::ExecutionRecord, sendy_cd::Error>;

fn record(r: RecordResult) -> PyResult<ExecutionRecord> {
    r.map(|inner| ExecutionRecord { inner }).map_err(|e| to_py(&e))
}

fn records(r: Result<Vec<sendy_cd::ExecutionRecord>, sendy_cd::Error>) -> PyResult<Vec<ExecutionRecord>> {
    r.map(|v| v.into_iter().map(|inner| ExecutionRecord { inner }).collect()).map_err(|e| to_py(&e))
}

impl Pipeline {
    fn run_future(
        &self,
        revision: &Revision,
        cancel: &CancellationToken,
    ) -> impl Future<Output = RecordResult> + Send + 'static {
        let (p, rev, c) = (self.inner.clone(), revision.inner.clone(), cancel.clone());
        async move { p.run_until_cancelled(rev, &c).await }
    }

    fn watch_future(
        &self,
        timeout: Option<Secs>,
        cancel: &CancellationToken,
    ) -> PyResult<impl Future<Output = Result<Vec<sendy_cd::ExecutionRecord>, sendy_cd::Error>> + Send + 'static> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let (p, c) = (self.inner.clone(), cancel.clone());
        Ok(async move {
            if let Some(t) = timeout {
                let c = c.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(t).await;
                    c.cancel();
                });
            }
            p.watch(&c).await
        })
    }
}

#[pymethods]
impl Pipeline {
    #[staticmethod]
    fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// Deploys `revision` and returns its record (whatever the outcome: failures are in the record,
    /// not raised). Ctrl-C cancels it: what it changed is undone, then KeyboardInterrupt is raised
    /// (the record is in `history()`).
    ///
    /// Raises ConflictError while another execution of this pipeline is under way.
    fn run(&self, py_: Python<'_>, revision: &Revision) -> PyResult<ExecutionRecord> {
        let cancel = CancellationToken::new();
        let fut = self.run_future(revision, &cancel);
        record(self.rt.block_on(py_, Some(cancel), fut)?)
    }

    /// `run` for asyncio.
    fn run_async<'py>(&self, py_: Python<'py>, revision: &Revision) -> PyResult<Bound<'py, PyAny>> {
        let cancel = CancellationToken::new();
        let fut = self.run_future(revision, &cancel);
        self.rt.awaitable(py_, Some(cancel), async move { record(fut.await) })
    }

    /// Starts deploying `revision` in the background: iterate the returned execution for its events
    /// (with `for` or `async for`), and read its `result()`.
    fn start(&self, revision: &Revision) -> Execution {
        let cancel = CancellationToken::new();
        let events = self.inner.subscribe();
        let fut = self.run_future(revision, &cancel);
        let (tx, rx) = tokio::sync::watch::channel(None);
        self.rt.spawn(async move {
            let out = fut.await;
            let _ = tx.send(Some(Arc::new(out)));
        });
        Execution { events: Arc::new(tokio::sync::Mutex::new(Some(events))), result: rx, cancel, rt: self.rt.clone() }
    }

    /// Deploys each new revision of the branch as it appears, until `timeout` seconds pass (on the
    /// pipeline's clock) or Ctrl-C; returns the records of the executions it ran.
    #[pyo3(signature = (timeout = None))]
    fn watch(&self, py_: Python<'_>, timeout: Option<Secs>) -> PyResult<Vec<ExecutionRecord>> {
        let cancel = CancellationToken::new();
        let fut = self.watch_future(timeout, &cancel)?;
        records(self.rt.block_on(py_, Some(cancel), fut)?)
    }

    /// `watch` for asyncio: runs until `timeout` or until the awaitable is cancelled.
    #[pyo3(signature = (timeout = None))]
    fn watch_async<'py>(&self, py_: Python<'py>, timeout: Option<Secs>) -> PyResult<Bound<'py, PyAny>> {
        let cancel = CancellationToken::new();
        let fut = self.watch_future(timeout, &cancel)?;
        self.rt.awaitable(py_, Some(cancel), async move { records(fut.await) })
    }

    /// Sends all traffic back to the environment that was live before the last switch.
    fn switch_back(&self, py_: Python<'_>) -> PyResult<ExecutionRecord> {
        let p = self.inner.clone();
        record(self.rt.block_on(py_, None, async move { p.switch_back().await })?)
    }

    fn switch_back_async<'py>(&self, py_: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let p = self.inner.clone();
        self.rt.awaitable(py_, None, async move { record(p.switch_back().await) })
    }

    /// Deploys again the image built earlier for `commit`, without building.
    fn redeploy(&self, py_: Python<'_>, commit: &str) -> PyResult<ExecutionRecord> {
        let commit = py(sendy_cd::CommitId::parse(commit).map_err(Into::into))?;
        let p = self.inner.clone();
        record(self.rt.block_on(py_, None, async move { p.redeploy(&commit).await })?)
    }

    fn redeploy_async<'py>(&self, py_: Python<'py>, commit: &str) -> PyResult<Bound<'py, PyAny>> {
        let commit = py(sendy_cd::CommitId::parse(commit).map_err(Into::into))?;
        let p = self.inner.clone();
        self.rt.awaitable(py_, None, async move { record(p.redeploy(&commit).await) })
    }

    /// Settles the executions a process left unfinished (killed, crashed), from their journal in the
    /// store: undoes what users could see and returns their records (outcome `interrupted`).
    fn resume(&self, py_: Python<'_>) -> PyResult<Vec<ExecutionRecord>> {
        let p = self.inner.clone();
        records(self.rt.block_on(py_, None, async move { p.resume().await })?)
    }

    /// The pipeline's executions as its store has them (every process's), newest first.
    #[pyo3(signature = (limit = Int(100)), text_signature = "($self, limit=100)")]
    fn executions(&self, py_: Python<'_>, limit: Int<u32>) -> PyResult<Vec<ExecutionRecord>> {
        let p = self.inner.clone();
        records(self.rt.block_on(py_, None, async move { p.executions(limit.0 as usize).await })?)
    }

    /// The pipeline id its executions and lease are kept under.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// The records of the executions this process ran (the newest 100), oldest first.
    fn history(&self) -> Vec<ExecutionRecord> {
        self.inner.history().into_iter().map(|inner| ExecutionRecord { inner }).collect()
    }

    fn last_record(&self) -> Option<ExecutionRecord> {
        self.inner.last_record().map(|inner| ExecutionRecord { inner })
    }

    /// Every event from now on, as a stream (iterate with `for` or `async for`; it ends when the
    /// pipeline is gone).
    fn subscribe(&self) -> EventStream {
        EventStream {
            inner: Arc::new(tokio::sync::Mutex::new(Some(self.inner.subscribe()))),
            rt: self.rt.clone(),
            until_finished: false,
        }
    }

    #[getter]
    fn environments(&self) -> Vec<String> {
        self.inner.environments().iter().map(|e| e.name().to_string()).collect()
    }

    #[getter]
    fn strategy(&self) -> Strategy {
        Strategy { inner: self.inner.strategy().clone() }
    }

    /// Whether the pipeline runs on a simulated clock (its parts come from a simulated account).
    #[getter]
    fn simulated(&self) -> bool {
        self.rt.is_simulated()
    }
}

type Shared = Arc<tokio::sync::Mutex<Option<sendy_cd::EventStream>>>;

async fn next_event(stream: Shared, until_finished: bool) -> Option<Event> {
    let mut guard = stream.lock().await;
    let event = guard.as_mut()?.recv().await;
    match event {
        Some(e) => {
            if until_finished && matches!(e.kind, sendy_cd::EventKind::ExecutionFinished { .. }) {
                *guard = None; // the execution is over: the next call ends the iteration
            }
            Some(Event::new(e))
        }
        None => {
            *guard = None;
            None
        }
    }
}

/// A stream of events: `for event in stream` or `async for event in stream`.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
pub(crate) struct EventStream {
    inner: Shared,
    rt: Rt,
    until_finished: bool,
}

#[pymethods]
impl EventStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }
    fn __next__(&self, py_: Python<'_>) -> PyResult<Event> {
        let fut = next_event(self.inner.clone(), self.until_finished);
        self.rt.block_on(py_, None, fut)?.ok_or_else(|| PyStopIteration::new_err(()))
    }
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }
    fn __anext__<'py>(&self, py_: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let fut = next_event(self.inner.clone(), self.until_finished);
        self.rt.awaitable(py_, None, async move { fut.await.ok_or_else(|| PyStopAsyncIteration::new_err(())) })
    }
}

/// A deployment running in the background (`Pipeline.start`). Iterating it (`for` or `async for`)
/// yields its events and ends after `execution_finished`.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
pub(crate) struct Execution {
    events: Shared,
    result: tokio::sync::watch::Receiver<Option<Arc<RecordResult>>>,
    cancel: CancellationToken,
    rt: Rt,
}

async fn wait_result(mut rx: tokio::sync::watch::Receiver<Option<Arc<RecordResult>>>) -> PyResult<ExecutionRecord> {
    let out = rx.wait_for(Option::is_some).await.map_err(|_| SendyError::new_err("the execution was lost"))?;
    match out.as_deref().expect("waited for Some") {
        Ok(r) => Ok(ExecutionRecord { inner: r.clone() }),
        Err(e) => Err(to_py(e)),
    }
}

#[pymethods]
impl Execution {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }
    fn __next__(&self, py_: Python<'_>) -> PyResult<Event> {
        let fut = next_event(self.events.clone(), true);
        self.rt.block_on(py_, None, fut)?.ok_or_else(|| PyStopIteration::new_err(()))
    }
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }
    fn __anext__<'py>(&self, py_: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let fut = next_event(self.events.clone(), true);
        self.rt.awaitable(py_, None, async move { fut.await.ok_or_else(|| PyStopAsyncIteration::new_err(())) })
    }
    /// Waits for the record. Ctrl-C cancels the execution (what it changed is undone first).
    fn result(&self, py_: Python<'_>) -> PyResult<ExecutionRecord> {
        self.rt.block_on(py_, Some(self.cancel.clone()), wait_result(self.result.clone()))?
    }
    fn result_async<'py>(&self, py_: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.rt.awaitable(py_, None, wait_result(self.result.clone()))
    }
    /// Cancels the execution: what it changed is undone, and its record says so.
    fn cancel(&self) {
        self.cancel.cancel();
    }
    /// Whether the execution has finished.
    fn done(&self) -> bool {
        self.result.borrow().is_some()
    }
}

/// Warns with a `DeprecationWarning` (an error when warnings are errors).
pub(crate) fn deprecated(py: Python<'_>, message: &str) -> PyResult<()> {
    let category = py.get_type::<pyo3::exceptions::PyDeprecationWarning>();
    PyErr::warn(py, &category, &std::ffi::CString::new(message).unwrap_or_default(), 1)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Strategy>()?;
    m.add_class::<HealthCheck>()?;
    m.add_class::<Environment>()?;
    m.add_class::<EnvironmentBuilder>()?;
    m.add_class::<Pipeline>()?;
    m.add_class::<PipelineBuilder>()?;
    m.add_class::<EventStream>()?;
    m.add_class::<Execution>()?;
    Ok(())
}
