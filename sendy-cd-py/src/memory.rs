//! `memory.Account`: the simulated AWS account, on its own simulated clock.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyAny, PyDict};
use sendy_cd::memory::{self, Behavior, Fault, Health, Injection, Op};

use crate::backends::{Builder, Deployer, DnsSwitch, Source, Stack, Verifier};
use crate::errors::{InvalidInputError, py};
use crate::model::{Int, Revision, Secs, seconds, weights};
use crate::pipeline::Environment;
use crate::runtime::Rt;

/// How a simulated account behaves: durations in seconds (realistic by default), tasks per service,
/// jitter (a fraction: 0.1 is ±10 %) and its seed, and the names of the registry, repository and domain.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
#[derive(Clone)]
pub(crate) struct SimConfig {
    inner: memory::SimConfig,
}

#[pymethods]
impl SimConfig {
    #[new]
    #[pyo3(
        text_signature = "(*, build_duration=300.0, stack_duration=180.0, rollout_duration=120.0, dns_propagation=30.0, ttl=60.0, probe_latency=0.02, desired_count=2, jitter=0.0, seed=1, registry=None, repository=None, domain=None)"
    )]
    #[pyo3(signature = (*, build_duration = Secs(300.0), stack_duration = Secs(180.0), rollout_duration = Secs(120.0), dns_propagation = Secs(30.0), ttl = Secs(60.0), probe_latency = Secs(0.02), desired_count = Int(2), jitter = 0.0, seed = Int(1), registry = None, repository = None, domain = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        build_duration: Secs,
        stack_duration: Secs,
        rollout_duration: Secs,
        dns_propagation: Secs,
        ttl: Secs,
        probe_latency: Secs,
        desired_count: Int<u32>,
        jitter: f64,
        seed: Int<u64>,
        registry: Option<String>,
        repository: Option<String>,
        domain: Option<String>,
    ) -> PyResult<Self> {
        let d = memory::SimConfig::default();
        let config = SimConfig {
            inner: memory::SimConfig::default()
                .build_duration(seconds("build_duration", build_duration)?)
                .stack_duration(seconds("stack_duration", stack_duration)?)
                .rollout_duration(seconds("rollout_duration", rollout_duration)?)
                .dns_propagation(seconds("dns_propagation", dns_propagation)?)
                .ttl(seconds("ttl", ttl)?)
                .probe_latency(seconds("probe_latency", probe_latency)?)
                .desired_count(desired_count.0)
                .jitter(jitter)
                .seed(seed.0)
                .registry(registry.unwrap_or(d.registry))
                .repository(repository.unwrap_or(d.repository))
                .domain(domain.unwrap_or(d.domain)),
        };
        // Every field is checked here, at the call that received it.
        config.inner.validate().map_err(|e| InvalidInputError::new_err(e.to_string()))?;
        Ok(config)
    }
    #[getter]
    fn build_duration(&self) -> f64 {
        self.inner.build_duration.as_secs_f64()
    }
    #[getter]
    fn ttl(&self) -> f64 {
        self.inner.ttl.as_secs_f64()
    }
    #[getter]
    fn domain(&self) -> String {
        self.inner.domain.clone()
    }
    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// A simulated AWS account: a repository, builds and a registry, stacks, services with a circuit
/// breaker, weighted DNS and endpoints, with realistic durations on a simulated clock (a deployment
/// of several minutes runs in milliseconds). Faults and per-revision behaviours can be injected.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
pub(crate) struct Account {
    inner: memory::Account,
    pub(crate) rt: Rt,
}

fn snake(op: Op) -> String {
    let mut out = String::new();
    for (i, c) in op.to_string().chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn parse_op(name: &str) -> PyResult<Op> {
    Op::ALL.into_iter().find(|op| snake(*op) == name).ok_or_else(|| {
        let all: Vec<String> = Op::ALL.into_iter().map(snake).collect();
        InvalidInputError::new_err(format!("unknown operation {name:?}: expected one of {}", all.join(", ")))
    })
}

impl Account {
    /// Calls `f` on the account inside the simulated runtime (its clock is the simulated one).
    fn at<T>(&self, f: impl FnOnce(&memory::Account) -> T) -> T {
        let _enter = self.rt.handle.enter();
        f(&self.inner)
    }
}

#[pymethods]
impl Account {
    /// A new account, with `config` (realistic durations by default).
    #[new]
    #[pyo3(signature = (config = None))]
    fn new(config: Option<PyRef<'_, SimConfig>>) -> PyResult<Self> {
        let rt = Rt::simulated()?;
        let inner = {
            let _enter = rt.handle.enter();
            memory::Account::with_config(config.map(|c| c.inner.clone()).unwrap_or_default())
                .map_err(|e| InvalidInputError::new_err(e.to_string()))?
        };
        Ok(Account { inner, rt })
    }

    #[getter]
    fn config(&self) -> SimConfig {
        SimConfig { inner: self.at(|a| a.config()) }
    }

    /// The operations faults can be injected into (`build_start`, `rollout_status`, `probe`, ...).
    #[staticmethod]
    fn operations() -> Vec<String> {
        Op::ALL.into_iter().map(snake).collect()
    }

    /// Creates environment `name`: its stack, service and endpoint, and a weighted record (the first
    /// environment gets weight 100).
    fn create_environment(&self, name: &str) -> PyResult<()> {
        py(self.at(|a| a.create_environment(name)))
    }

    /// Pushes a commit to `branch` of the simulated repository.
    #[pyo3(signature = (branch, message, author = "Someone <someone@example.com>"))]
    fn push(&self, branch: &str, message: &str, author: &str) -> PyResult<Revision> {
        py(self.at(|a| a.push(branch, message, author))).map(|inner| Revision { inner })
    }

    /// Makes calls to `op` fail: `fault` is `fail` (a non-retryable error), `throttle`, `transient`,
    /// `hang` (never answers) or `lose_answer` (the call takes effect, its answer is lost); the first `after` calls are spared, then `times` calls fail (all of them
    /// if None).
    #[pyo3(signature = (op, fault, *, after = Int(0), times = None), text_signature = "($self, op, fault, *, after=0, times=None)")]
    fn inject(&self, op: &str, fault: &str, after: Int<u32>, times: Option<Int<u32>>) -> PyResult<()> {
        let (after, times) = (after.0, times.map(|t| t.0));
        let fault = match fault {
            "fail" => Fault::Fail,
            "throttle" => Fault::Throttle,
            "transient" => Fault::Transient,
            "hang" => Fault::Hang,
            "lose_answer" => Fault::LoseAnswer,
            other => {
                return Err(InvalidInputError::new_err(format!(
                    "unknown fault {other:?}: expected fail, throttle, transient, hang or lose_answer"
                )));
            }
        };
        let mut injection = Injection::new(parse_op(op)?, fault).after(after);
        if let Some(n) = times {
            injection = injection.times(n);
        }
        self.at(|a| a.inject(injection));
        Ok(())
    }

    /// Removes every injected fault.
    fn clear_faults(&self) {
        self.at(|a| a.clear_faults());
    }

    /// How many calls `op` has received.
    fn calls(&self, op: &str) -> PyResult<u32> {
        let op = parse_op(op)?;
        Ok(self.at(|a| a.calls(op)))
    }

    /// How the revision `commit` behaves: its build or stack update fails with a reason, its tasks
    /// crash (the circuit breaker rolls the service back), or its health is `healthy`, `unhealthy` or
    /// `unhealthy_under_traffic` (fails once users reach it); and how it serves traffic in
    /// `metrics()`: its `error_rate` (0 to 1) and its p50 and p99 latency in milliseconds.
    #[pyo3(signature = (commit, *, build_failure = None, stack_failure = None, crashing = false, health = "healthy", error_rate = 0.01, latency_p50_ms = 40.0, latency_p99_ms = 200.0))]
    #[allow(clippy::too_many_arguments)]
    fn set_behavior(
        &self,
        commit: &str,
        build_failure: Option<String>,
        stack_failure: Option<String>,
        crashing: bool,
        health: &str,
        error_rate: f64,
        latency_p50_ms: f64,
        latency_p99_ms: f64,
    ) -> PyResult<()> {
        let traffic = sendy_cd::memory::Traffic::default()
            .error_rate(error_rate)
            .latency_p50_ms(latency_p50_ms)
            .latency_p99_ms(latency_p99_ms);
        py(traffic.validate())?;
        let health = match health {
            "healthy" => Health::Healthy,
            "unhealthy" => Health::Unhealthy,
            "unhealthy_under_traffic" => Health::UnhealthyUnderTraffic,
            other => {
                return Err(InvalidInputError::new_err(format!(
                    "unknown health {other:?}: expected healthy, unhealthy or unhealthy_under_traffic"
                )));
            }
        };
        let commit = py(sendy_cd::CommitId::parse(commit).map_err(Into::into))?;
        self.at(|a| {
            a.set_behavior(
                &commit,
                Behavior::default()
                    .build_failure(build_failure)
                    .stack_failure(stack_failure)
                    .crashing(crashing)
                    .health(health)
                    .traffic(traffic),
            )
        });
        Ok(())
    }

    /// The weighted records' weights, `{environment: weight}`.
    fn weights<'py>(&self, py_: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let split = py(self.at(|a| a.weights()))?;
        weights(py_, &split)
    }

    /// The image environment `env`'s service runs, or None.
    fn serving(&self, env: &str) -> Option<String> {
        self.at(|a| a.serving(env)).map(|i| i.to_string())
    }

    /// The registry: `{image: digest}`.
    fn registry(&self) -> std::collections::BTreeMap<String, String> {
        self.at(|a| a.registry()).into_iter().map(|(k, v)| (k, v.to_string())).collect()
    }

    /// Stack `name`'s parameters, or None if it does not exist.
    fn stack_parameters<'py>(&self, py_: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.at(|a| a.stack_parameters(name)).map(|p| crate::model::to_python(py_, &p)).transpose()
    }

    /// Simulated seconds since the account was created.
    fn elapsed(&self) -> f64 {
        self.at(|a| a.elapsed()).as_secs_f64()
    }

    fn source(&self) -> Source {
        Source::new(Arc::new(self.at(|a| a.source())), Some(self.rt.clone()))
    }
    fn image_builder(&self) -> Builder {
        Builder::new(Arc::new(self.at(|a| a.image_builder())), Some(self.rt.clone()))
    }
    /// The old name of `image_builder` (deprecated).
    fn builder(&self, py: Python<'_>) -> PyResult<Builder> {
        crate::pipeline::deprecated(py, "Account.builder() is renamed image_builder()")?;
        Ok(self.image_builder())
    }
    fn stacks(&self) -> Stack {
        Stack::new(Arc::new(self.at(|a| a.stacks())), Some(self.rt.clone()))
    }
    fn deployer(&self, env: &str) -> PyResult<Deployer> {
        Ok(Deployer::new(Arc::new(py(self.at(|a| a.deployer(env)))?), Some(self.rt.clone())))
    }
    fn dns(&self) -> DnsSwitch {
        DnsSwitch::new(Arc::new(self.at(|a| a.dns())), Some(self.rt.clone()))
    }
    fn verifier(&self) -> Verifier {
        Verifier::new(Arc::new(self.at(|a| a.verifier())), Some(self.rt.clone()))
    }
    /// The account's alarms, for `PipelineBuilder.alarms`: firing from `set_alarm(name)` until
    /// `set_alarm(name, False)`.
    fn alarms(&self) -> crate::backends::AlarmSource {
        crate::backends::AlarmSource::new(Arc::new(self.at(|a| a.alarms())), Some(self.rt.clone()))
    }
    /// Puts alarm `name` in ALARM (`firing`) or back to OK.
    #[pyo3(signature = (name, firing = true))]
    fn set_alarm(&self, name: &str, firing: bool) {
        self.at(|a| a.set_alarm(name, firing));
    }
    /// The environments' metrics for a canary analysis: each serves its DNS weight's share of
    /// `requests_per_second` as the revision it runs behaves (`set_behavior`), with seeded noise.
    #[pyo3(signature = (requests_per_second = 200.0))]
    fn metrics(&self, requests_per_second: f64) -> PyResult<crate::backends::MetricSource> {
        let source = py(self.at(|a| a.metrics(requests_per_second)))?;
        Ok(crate::backends::MetricSource::new(Arc::new(source), Some(self.rt.clone())))
    }

    /// Environment `env` with every backend of this account.
    fn environment(&self, env: &str) -> PyResult<Environment> {
        Ok(Environment { inner: py(self.at(|a| a.environment(env)))?, rt: Some(self.rt.clone()) })
    }
    /// Environment `env` wired to this account's stack, deployer and verifier, to change before
    /// `build()` (your own verifier or deployer) without knowing how the account names its stacks.
    fn environment_builder(&self, env: &str) -> PyResult<crate::pipeline::EnvironmentBuilder> {
        let deployer = py(self.at(|a| a.deployer(env)))?;
        Ok(crate::pipeline::EnvironmentBuilder::simulated(
            env,
            Arc::new(self.at(|a| a.stacks())),
            format!("app-{env}"),
            Arc::new(deployer),
            Arc::new(self.at(|a| a.verifier())),
            self.rt.clone(),
        ))
    }

    /// Creates `name` as one ECS service behind a load balancer whose own deployment strategy moves
    /// the traffic between target groups `<name>-blue` and `<name>-green` (the names the account's
    /// metrics know): `shift` is "canary" (`percent`, baked `step_bake` seconds), "linear" (`step`
    /// percent a step, each baked `step_bake`) or "blue_green"; `bake` is ECS's bake time;
    /// `pause_hooks` the stages with a PAUSE hook (default: the three the pipeline decides);
    /// `hook_timeout` seconds before ECS takes `timeout_action` ("rollback" or "continue");
    /// `alarms` roll a deployment back when in ALARM (`set_alarm`). Its stack `app-<name>` has the
    /// outputs ServiceUrl and TestUrl.
    #[pyo3(
        text_signature = "($self, name, *, shift='canary', percent=10, step=25, step_bake=300.0, bake=300.0, pause_hooks=None, hook_timeout=86400.0, timeout_action='rollback', alarms=..., stage_time=10.0)"
    )]
    #[pyo3(signature = (name, *, shift = "canary", percent = Int(10), step = Int(25), step_bake = Secs(300.0), bake = Secs(300.0), pause_hooks = None, hook_timeout = Secs(86400.0), timeout_action = "rollback", alarms = vec![], stage_time = Secs(10.0)))]
    #[allow(clippy::too_many_arguments)]
    fn create_managed_service(
        &self,
        name: &str,
        shift: &str,
        percent: Int<u8>,
        step: Int<u8>,
        step_bake: Secs,
        bake: Secs,
        pause_hooks: Option<Vec<String>>,
        hook_timeout: Secs,
        timeout_action: &str,
        alarms: Vec<String>,
        stage_time: Secs,
    ) -> PyResult<()> {
        let step_bake = seconds("step_bake", step_bake)?;
        let shift = match shift {
            "canary" => memory::TrafficShift::Canary { percent: percent.0, bake: step_bake },
            "linear" => memory::TrafficShift::Linear { step: step.0, bake: step_bake },
            "blue_green" => memory::TrafficShift::BlueGreen,
            other => {
                return Err(InvalidInputError::new_err(format!(
                    "shift {other:?}: expected \"canary\", \"linear\" or \"blue_green\""
                )));
            }
        };
        let timeout_action = match timeout_action {
            "rollback" => sendy_cd::HookAction::Rollback,
            "continue" => sendy_cd::HookAction::Continue,
            other => {
                return Err(InvalidInputError::new_err(format!(
                    "timeout_action {other:?}: expected \"rollback\" or \"continue\""
                )));
            }
        };
        let mut cfg = memory::ManagedConfig::default()
            .shift(shift)
            .bake(seconds("bake", bake)?)
            .hook_timeout(seconds("hook_timeout", hook_timeout)?)
            .timeout_action(timeout_action)
            .alarms(alarms)
            .stage_time(seconds("stage_time", stage_time)?);
        if let Some(stages) = pause_hooks {
            cfg = cfg.pause_hooks(stages.iter().map(|s| sendy_cd::LifecycleStage::parse(s)).collect::<Vec<_>>());
        }
        py(self.at(|a| a.create_managed_service(name, cfg)))
    }
    /// The managed deployer of managed service `name`.
    fn managed_deployer(&self, py_: Python<'_>, name: &str) -> PyResult<Py<crate::backends::ManagedDeployer>> {
        let d = py(self.at(|a| a.managed_deployer(name)))?;
        Py::new(py_, crate::backends::ManagedDeployer::initializer(Arc::new(d), Some(self.rt.clone())))
    }
    /// Managed service `name` wired to this account's stack, managed deployer and verifier (no
    /// image parameter), to change before `build()`.
    fn managed_environment(&self, name: &str) -> PyResult<crate::pipeline::EnvironmentBuilder> {
        let d: Arc<dyn sendy_cd::ManagedDeployer> = Arc::new(py(self.at(|a| a.managed_deployer(name)))?);
        Ok(crate::pipeline::EnvironmentBuilder::simulated_managed(
            name,
            Arc::new(self.at(|a| a.stacks())),
            format!("app-{name}"),
            d,
            Arc::new(self.at(|a| a.verifier())),
            self.rt.clone(),
        ))
    }
    /// The image managed service `name` serves all production traffic with, when no deployment is
    /// under way.
    fn managed_serving(&self, name: &str) -> Option<String> {
        self.at(|a| a.managed_serving(name)).map(|i| i.to_string())
    }

    fn __repr__(&self) -> String {
        "<simulated AWS account>".into()
    }
}
