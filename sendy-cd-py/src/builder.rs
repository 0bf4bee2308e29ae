//! `PipelineBuilder`: composes a pipeline from backends of this library or written in Python.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyAny;

use crate::backends::{AlarmSource, Builder, DnsSwitch, MetricSource, Source};
use crate::errors::{InvalidConfigError, InvalidInputError, py, to_py};
use crate::model::{Event, Int, Secs, seconds};
use crate::pipeline::{Environment, HealthCheck, Pipeline, Strategy, deprecated};
use crate::runtime::Rt;

/// The runtime the parts need: the simulated one for parts of a simulated account (all accounts share
/// it), the real one for live (AWS, HTTP, git) parts, either for backends written in Python. Simulated
/// and live parts cannot be mixed: on the simulated clock, every live timeout would fire at once.
pub(crate) fn one_runtime(rts: impl IntoIterator<Item = Rt>) -> PyResult<Option<Rt>> {
    let rts: Vec<Rt> = rts.into_iter().collect();
    let simulated = rts.iter().find(|r| r.is_simulated());
    if simulated.is_some() && rts.iter().any(|r| !r.is_simulated()) {
        return Err(InvalidConfigError::new_err(
            "simulated and live backends cannot share a pipeline: on the simulated clock every live timeout would fire at once",
        ));
    }
    Ok(simulated.or(rts.first()).cloned())
}

/// Composes a pipeline; `build()` validates it.
#[pyclass(module = "sendy_cd._sendy_cd")]
#[derive(Default)]
pub(crate) struct PipelineBuilder {
    source: Option<Arc<dyn sendy_cd::Source>>,
    builder: Option<Arc<dyn sendy_cd::Builder>>,
    environments: Vec<sendy_cd::Environment>,
    dns: Option<Arc<dyn sendy_cd::DnsSwitch>>,
    metrics: Option<Arc<dyn sendy_cd::analysis::MetricSource>>,
    alarms: Option<(Arc<dyn sendy_cd::analysis::AlarmSource>, sendy_cd::analysis::AlarmGate)>,
    strategy: Option<sendy_cd::Strategy>,
    branch: Option<String>,
    health_check: Option<sendy_cd::HealthCheck>,
    sinks: Vec<Arc<Py<PyAny>>>,
    expected: Vec<(sendy_cd::Stage, Duration)>,
    seed: Option<u64>,
    name: Option<String>,
    store: Option<Arc<dyn sendy_cd::store::Store>>,
    lease_time: Option<Duration>,
    wait_for_lease: Option<Duration>,
    resume_on_start: Option<bool>,
    resume_forward: Option<bool>,
    rts: Vec<Rt>,
}

#[pymethods]
impl PipelineBuilder {
    fn source<'py>(mut slf: PyRefMut<'py, Self>, source: &Bound<'py, PyAny>) -> PyRefMut<'py, Self> {
        let (inner, rt) = Source::resolve(source);
        slf.rts.extend(rt);
        slf.source = Some(inner);
        slf
    }
    /// The image builder (required): a `Builder` of this library or any object with its methods.
    fn image_builder<'py>(mut slf: PyRefMut<'py, Self>, builder: &Bound<'py, PyAny>) -> PyRefMut<'py, Self> {
        let (inner, rt) = Builder::resolve(builder);
        slf.rts.extend(rt);
        slf.builder = Some(inner);
        slf
    }
    /// The old name of `image_builder` (deprecated).
    fn builder<'py>(slf: PyRefMut<'py, Self>, builder: &Bound<'py, PyAny>) -> PyResult<PyRefMut<'py, Self>> {
        deprecated(builder.py(), "PipelineBuilder.builder() is renamed image_builder()")?;
        Ok(Self::image_builder(slf, builder))
    }
    fn environment<'py>(mut slf: PyRefMut<'py, Self>, environment: &Environment) -> PyRefMut<'py, Self> {
        slf.rts.extend(environment.rt.clone());
        slf.environments.push(environment.inner.clone());
        slf
    }
    fn dns<'py>(mut slf: PyRefMut<'py, Self>, dns: &Bound<'py, PyAny>) -> PyRefMut<'py, Self> {
        let (inner, rt) = DnsSwitch::resolve(dns);
        slf.rts.extend(rt);
        slf.dns = Some(inner);
        slf
    }
    /// Where a canary analysis reads the environments' metrics: `Account.metrics()`, or any object
    /// with a `fetch(request)` method (`MetricSourceProtocol`).
    fn metrics<'py>(mut slf: PyRefMut<'py, Self>, metrics: &Bound<'py, PyAny>) -> PyRefMut<'py, Self> {
        let (inner, rt) = MetricSource::resolve(metrics);
        slf.rts.extend(rt);
        slf.metrics = Some(inner);
        slf
    }
    /// Alarms `names` gate every bake and canary analysis: checked every `interval` seconds of a bake
    /// and before each interval of an analysis; one in ALARM fails the step. `source` is
    /// `Account.alarms()`, `aws.CloudWatchAlarms(config)`, or any object with `firing(names)`.
    #[pyo3(signature = (source, names, interval = Secs(30.0)), text_signature = "($self, source, names, interval=30.0)")]
    fn alarms<'py>(
        mut slf: PyRefMut<'py, Self>,
        source: &Bound<'py, PyAny>,
        names: Vec<String>,
        interval: Secs,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let gate = sendy_cd::analysis::AlarmGate::new(names).interval(seconds("interval", interval)?);
        py(gate.validate())?;
        let (inner, rt) = AlarmSource::resolve(source);
        slf.rts.extend(rt);
        slf.alarms = Some((inner, gate));
        Ok(slf)
    }
    fn strategy<'py>(mut slf: PyRefMut<'py, Self>, strategy: &Strategy) -> PyRefMut<'py, Self> {
        slf.strategy = Some(strategy.inner.clone());
        slf
    }
    /// The branch `watch` follows (default `main`).
    fn branch(mut slf: PyRefMut<'_, Self>, branch: String) -> PyRefMut<'_, Self> {
        slf.branch = Some(branch);
        slf
    }
    fn health_check<'py>(mut slf: PyRefMut<'py, Self>, health_check: &HealthCheck) -> PyRefMut<'py, Self> {
        slf.health_check = Some(health_check.inner.clone());
        slf
    }
    /// How long `stage` usually takes, in seconds (paces the status polls before anything is learned).
    fn expected_duration<'py>(
        mut slf: PyRefMut<'py, Self>,
        stage: &str,
        duration: Secs,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let stage = parse_stage(stage)?;
        let d = seconds("duration", duration)?;
        slf.expected.push((stage, d));
        Ok(slf)
    }
    /// Calls `callback(event)` for every event, on the runtime's thread. An exception it raises is
    /// reported with `sys.unraisablehook` and does not stop the pipeline.
    fn sink<'py>(mut slf: PyRefMut<'py, Self>, callback: &Bound<'py, PyAny>) -> PyResult<PyRefMut<'py, Self>> {
        if !callback.is_callable() {
            return Err(InvalidInputError::new_err("sink: expected a callable taking an Event"));
        }
        slf.sinks.push(Arc::new(callback.clone().unbind()));
        Ok(slf)
    }
    /// Seeds the pipeline's random choices (polling and retry jitter): with the same account seed, the
    /// same revision gives the same record, whether run with `run()` or `start()`.
    fn seed(mut slf: PyRefMut<'_, Self>, seed: Int<u64>) -> PyRefMut<'_, Self> {
        slf.seed = Some(seed.0);
        slf
    }
    /// The pipeline id its executions and lease are kept under in its store (default `default`).
    fn name(mut slf: PyRefMut<'_, Self>, name: String) -> PyRefMut<'_, Self> {
        slf.name = Some(name);
        slf
    }
    /// Keeps executions, learned durations and the pipeline's lease in the SQLite file at `path`
    /// (created if missing, such as `.sendy/state.db`), shared with other processes; or, with
    /// `dynamodb_table` and `config` (an `AwsConfig`), in that DynamoDB table, shared with runners on
    /// other machines (`DynamoDbStore.create_table` semantics: created if missing).
    #[pyo3(signature = (path = None, *, dynamodb_table = None, config = None))]
    fn store<'py>(
        mut slf: PyRefMut<'py, Self>,
        path: Option<std::path::PathBuf>,
        dynamodb_table: Option<String>,
        config: Option<PyRef<'py, crate::aws::AwsConfig>>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let store: Arc<dyn sendy_cd::store::Store> = match (path, dynamodb_table, config) {
            (Some(path), None, None) => Arc::new(py(sendy_cd::store::sqlite::SqliteStore::open(&path))?),
            (None, Some(table), Some(config)) => {
                let store = py(sendy_cd::store::dynamodb::DynamoDbStore::new(&config.inner, &table))?;
                let created = store.clone();
                crate::runtime::Rt::real()
                    .block_on(slf.py(), None, async move { created.create_table().await })?
                    .map_err(|e| to_py(&e))?;
                Arc::new(store)
            }
            _ => {
                return Err(InvalidConfigError::new_err(
                    "store: give either path, or dynamodb_table with config (an AwsConfig)",
                ));
            }
        };
        slf.store = Some(store);
        Ok(slf)
    }
    /// How long the pipeline's lease lasts unless renewed, in seconds or a `timedelta` (default 60).
    fn lease_time(mut slf: PyRefMut<'_, Self>, ttl: Secs) -> PyResult<PyRefMut<'_, Self>> {
        slf.lease_time = Some(seconds("lease_time", ttl)?);
        Ok(slf)
    }
    /// Waits up to `wait` for another process's lease instead of raising `LeaseHeldError` at once.
    fn wait_for_lease(mut slf: PyRefMut<'_, Self>, wait: Secs) -> PyResult<PyRefMut<'_, Self>> {
        slf.wait_for_lease = Some(seconds("wait_for_lease", wait)?);
        Ok(slf)
    }
    /// Whether `run` and `watch` first settle what a process left unfinished (default True).
    fn resume_on_start(mut slf: PyRefMut<'_, Self>, resume: bool) -> PyRefMut<'_, Self> {
        slf.resume_on_start = Some(resume);
        slf
    }
    /// Whether an interrupted deployment is resumed forward from where it stood (default True) or
    /// settled backward (what users could see undone).
    fn resume_forward(mut slf: PyRefMut<'_, Self>, forward: bool) -> PyRefMut<'_, Self> {
        slf.resume_forward = Some(forward);
        slf
    }
    fn build(&self) -> PyResult<Pipeline> {
        let mut b = sendy_cd::Pipeline::builder();
        if let Some(name) = &self.name {
            b = b.name(name);
        }
        if let Some(store) = &self.store {
            b = b.store(store.clone());
        }
        if let Some(ttl) = self.lease_time {
            b = b.lease_time(ttl);
        }
        if let Some(wait) = self.wait_for_lease {
            b = b.wait_for_lease(wait);
        }
        if let Some(resume) = self.resume_on_start {
            b = b.resume_on_start(resume);
        }
        if let Some(forward) = self.resume_forward {
            b = b.resume_forward(forward);
        }
        if let Some(seed) = self.seed {
            b = b.seed(seed);
        }
        if let Some(s) = &self.source {
            b = b.source(s.clone());
        }
        if let Some(x) = &self.builder {
            b = b.image_builder(x.clone());
        }
        for e in &self.environments {
            b = b.environment(e.clone());
        }
        if let Some(m) = &self.metrics {
            b = b.metrics(m.clone());
        }
        if let Some((source, gate)) = &self.alarms {
            b = b.alarms(source.clone(), gate.clone());
        }
        if let Some(d) = &self.dns {
            b = b.dns(d.clone());
        }
        if let Some(s) = &self.strategy {
            b = b.strategy(s.clone());
        }
        if let Some(br) = &self.branch {
            b = b.branch(br);
        }
        if let Some(h) = &self.health_check {
            b = b.health_check(h.clone());
        }
        for (stage, d) in &self.expected {
            b = b.expected_duration(*stage, *d);
        }
        for callback in &self.sinks {
            let callback = callback.clone();
            b = b.sink(Arc::new(move |event: &sendy_cd::Event| {
                Python::attach(|py| {
                    if let Err(e) = callback.bind(py).call1((Event::new(event.clone()),)) {
                        if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
                            // Ctrl-C came while the sink ran: the blocking call waiting for this
                            // work takes it at its next check (within 100 ms), cancels and undoes
                            // the execution, and raises it.
                            crate::runtime::interrupted();
                        } else {
                            e.write_unraisable(py, Some(callback.bind(py)));
                        }
                    }
                });
            }));
        }
        let rt = one_runtime(self.rts.iter().cloned())?.unwrap_or_else(Rt::real);
        let inner = {
            let _enter = rt.handle.enter();
            py(b.build())?
        };
        Ok(Pipeline { inner: Arc::new(inner), rt })
    }
}

fn parse_stage(name: &str) -> PyResult<sendy_cd::Stage> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).map_err(|_| {
        InvalidInputError::new_err(format!("unknown stage {name:?}: expected build, stack, rollout, verify or traffic"))
    })
}
