//! `aws`: the AWS configuration and backends, and the live HTTP verifier and git sources.

use std::sync::Arc;

use pyo3::prelude::*;

use crate::backends::{AlarmSource, Builder, Deployer, DnsSwitch, MetricSource, Source, Stack, Verifier};
use crate::errors::py;
use crate::model::{Int, Secs, seconds};
use crate::runtime::Rt;

/// Where and as whom AWS is called: the standard chain (environment, profiles, SSO, instance roles),
/// with the same keys as in Rust. `endpoint` (or `AWS_ENDPOINT_URL`) reaches a local emulator.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
pub(crate) struct AwsConfig {
    pub(crate) inner: sendy_cd::aws::AwsConfig,
}

fn builder(
    region: Option<&str>,
    profile: Option<&str>,
    endpoint: Option<&str>,
    max_attempts: Option<Int<u32>>,
    connect_timeout: Option<Secs>,
    attempt_timeout: Option<Secs>,
) -> PyResult<sendy_cd::aws::AwsConfigBuilder> {
    let mut b = sendy_cd::aws::AwsConfig::builder();
    if let Some(r) = region {
        b = b.region(r);
    }
    if let Some(p) = profile {
        b = b.profile(p);
    }
    if let Some(e) = endpoint {
        b = b.endpoint(e);
    }
    if let Some(Int(n)) = max_attempts {
        b = b.max_attempts(n);
    }
    if let Some(t) = connect_timeout {
        b = b.connect_timeout(seconds("connect_timeout", t)?);
    }
    if let Some(t) = attempt_timeout {
        b = b.attempt_timeout(seconds("attempt_timeout", t)?);
    }
    Ok(b)
}

#[pymethods]
impl AwsConfig {
    /// Validates the settings and loads the configuration (reads the environment and files; sends no
    /// request). Raises InvalidConfigError for a malformed region or endpoint, or when no region is set.
    #[staticmethod]
    #[pyo3(signature = (*, region = None, profile = None, endpoint = None, max_attempts = None, connect_timeout = None, attempt_timeout = None))]
    fn load(
        py_: Python<'_>,
        region: Option<&str>,
        profile: Option<&str>,
        endpoint: Option<&str>,
        max_attempts: Option<Int<u32>>,
        connect_timeout: Option<Secs>,
        attempt_timeout: Option<Secs>,
    ) -> PyResult<AwsConfig> {
        let b = builder(region, profile, endpoint, max_attempts, connect_timeout, attempt_timeout)?;
        let inner = py(Rt::real().block_on(py_, None, b.load())?)?;
        Ok(AwsConfig { inner })
    }

    /// `load` for asyncio.
    #[staticmethod]
    #[pyo3(signature = (*, region = None, profile = None, endpoint = None, max_attempts = None, connect_timeout = None, attempt_timeout = None))]
    fn load_async<'py>(
        py_: Python<'py>,
        region: Option<&str>,
        profile: Option<&str>,
        endpoint: Option<&str>,
        max_attempts: Option<Int<u32>>,
        connect_timeout: Option<Secs>,
        attempt_timeout: Option<Secs>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let b = builder(region, profile, endpoint, max_attempts, connect_timeout, attempt_timeout)?;
        Rt::real().awaitable(py_, None, async move { py(b.load().await).map(|inner| AwsConfig { inner }) })
    }

    #[getter]
    fn region(&self) -> Option<String> {
        self.inner.sdk_config().region().map(ToString::to_string)
    }
}

fn live<T>(f: impl FnOnce() -> T) -> T {
    let _enter = Rt::real().handle.enter();
    f()
}

/// CodeBuild builds the image into ECR (see `deploy/buildspec.yml`).
#[pyclass(module = "sendy_cd._sendy_cd", extends = Builder, frozen)]
pub(crate) struct CodeBuildBuilder {}

#[pymethods]
impl CodeBuildBuilder {
    #[new]
    fn new(config: &AwsConfig, project: &str, repository: &str) -> PyResult<PyClassInitializer<Self>> {
        let b = py(live(|| sendy_cd::aws::CodeBuildBuilder::new(&config.inner, project, repository)))?;
        Ok(PyClassInitializer::from(Builder::new(Arc::new(b), Some(Rt::real()))).add_subclass(CodeBuildBuilder {}))
    }
}

/// CloudFormation stacks, changed through change sets.
#[pyclass(module = "sendy_cd._sendy_cd", extends = Stack, frozen)]
pub(crate) struct CloudFormationStack {}

#[pymethods]
impl CloudFormationStack {
    #[new]
    fn new(config: &AwsConfig) -> PyClassInitializer<Self> {
        let s = live(|| sendy_cd::aws::CloudFormationStack::new(&config.inner));
        PyClassInitializer::from(Stack::new(Arc::new(s), Some(Rt::real()))).add_subclass(CloudFormationStack {})
    }
}

/// An ECS service, rolled out directly (register a task definition revision, update the service,
/// follow that deployment).
#[pyclass(module = "sendy_cd._sendy_cd", extends = Deployer, frozen)]
pub(crate) struct EcsDeployer {}

#[pymethods]
impl EcsDeployer {
    #[new]
    #[pyo3(signature = (config, cluster, service, *, container = None))]
    fn new(
        config: &AwsConfig,
        cluster: &str,
        service: &str,
        container: Option<&str>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let mut d = py(live(|| sendy_cd::aws::EcsDeployer::new(&config.inner, cluster, service)))?;
        if let Some(c) = container {
            d = d.container(c);
        }
        Ok(PyClassInitializer::from(Deployer::new(Arc::new(d), Some(Rt::real()))).add_subclass(EcsDeployer {}))
    }
}

/// An ECS service whose own deployment strategy (BLUE_GREEN, LINEAR, CANARY) shifts the traffic, for
/// `Strategy.ecs_managed()`: pinned to the service deployment ARN its UpdateService created.
/// `target_groups` names each target group ARN as the metric source knows it (the analysis's two
/// sides); `pause_hooks` (stage names, such as `ecs_managed_hooks()`) sets the PAUSE hooks the
/// pipeline decides with each deployment, rolled back by ECS after `hook_timeout` seconds undecided.
#[pyclass(module = "sendy_cd._sendy_cd", extends = crate::backends::ManagedDeployer, frozen)]
pub(crate) struct EcsManagedDeployer {}

#[pymethods]
impl EcsManagedDeployer {
    #[new]
    #[pyo3(
        signature = (config, cluster, service, *, container = None, target_groups = None, pause_hooks = None, hook_timeout = Secs(1800.0)),
        text_signature = "(config, cluster, service, *, container=None, target_groups=None, pause_hooks=None, hook_timeout=1800.0)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        config: &AwsConfig,
        cluster: &str,
        service: &str,
        container: Option<&str>,
        target_groups: Option<std::collections::BTreeMap<String, String>>,
        pause_hooks: Option<Vec<String>>,
        hook_timeout: Secs,
    ) -> PyResult<PyClassInitializer<Self>> {
        let mut d = py(live(|| sendy_cd::aws::EcsManagedDeployer::new(&config.inner, cluster, service)))?;
        if let Some(c) = container {
            d = d.container(c);
        }
        for (name, arn) in target_groups.unwrap_or_default() {
            d = py(d.target_group(&name, &arn))?;
        }
        if let Some(stages) = pause_hooks {
            let stages: Vec<sendy_cd::LifecycleStage> =
                stages.iter().map(|s| sendy_cd::LifecycleStage::parse(s)).collect();
            d = py(d.pause_hooks(&stages, seconds("hook_timeout", hook_timeout)?))?;
        }
        Ok(crate::backends::ManagedDeployer::initializer(Arc::new(d), Some(Rt::real()))
            .add_subclass(EcsManagedDeployer {}))
    }

    /// The stages the pipeline decides: POST_TEST_TRAFFIC_SHIFT, PRE_PRODUCTION_TRAFFIC_SHIFT,
    /// POST_PRODUCTION_TRAFFIC_SHIFT.
    #[staticmethod]
    fn pipeline_hooks() -> Vec<String> {
        sendy_cd::aws::EcsManagedDeployer::PIPELINE_HOOKS.iter().map(|s| s.as_str().to_owned()).collect()
    }
}

/// Route 53 weighted records of one name (TTL 60 s by default).
#[pyclass(module = "sendy_cd._sendy_cd", extends = DnsSwitch, frozen)]
pub(crate) struct Route53Dns {}

#[pymethods]
impl Route53Dns {
    #[new]
    #[pyo3(signature = (config, zone_id, name, *, record_type = None, ttl = None))]
    fn new(
        config: &AwsConfig,
        zone_id: &str,
        name: &str,
        record_type: Option<&str>,
        ttl: Option<Secs>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let mut b = sendy_cd::aws::Route53Dns::builder(zone_id, name);
        if let Some(t) = record_type {
            b = b.record_type(py(t.parse())?);
        }
        if let Some(t) = ttl {
            b = b.ttl(seconds("ttl", t)?);
        }
        let d = py(live(|| b.build(&config.inner)))?;
        Ok(PyClassInitializer::from(DnsSwitch::new(Arc::new(d), Some(Rt::real()))).add_subclass(Route53Dns {}))
    }
}

/// A canary analysis's metrics from CloudWatch (`GetMetricData`, one request per interval):
/// `target_groups` maps each environment to its ALB and target group (`("app/<name>/<id>",
/// "targetgroup/<name>/<id>")`) for the built-in measures; `metrics` maps `(environment, name)` to
/// `(namespace, metric_name, stat, dimensions)` for measures you name.
#[pyclass(module = "sendy_cd._sendy_cd", extends = MetricSource, frozen)]
pub(crate) struct CloudWatchMetrics {}

type NamedQuery = (String, String, String, std::collections::BTreeMap<String, String>);

#[pymethods]
impl CloudWatchMetrics {
    #[new]
    #[pyo3(signature = (config, *, target_groups = None, metrics = None))]
    fn new(
        config: &AwsConfig,
        target_groups: Option<std::collections::BTreeMap<String, (String, String)>>,
        metrics: Option<std::collections::BTreeMap<(String, String), NamedQuery>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let mut b = sendy_cd::aws::CloudWatchMetrics::builder();
        for (env, (lb, tg)) in target_groups.unwrap_or_default() {
            b = b.target_group(&env, &lb, &tg);
        }
        for ((env, name), (namespace, metric_name, stat, dimensions)) in metrics.unwrap_or_default() {
            let mut q = sendy_cd::aws::MetricQuery::new(namespace, metric_name, stat);
            for (k, v) in dimensions {
                q = q.dimension(k, v);
            }
            b = b.metric(&env, &name, q);
        }
        let source = py(live(|| b.build(&config.inner)))?;
        Ok(PyClassInitializer::from(MetricSource::new(Arc::new(source), Some(Rt::real())))
            .add_subclass(CloudWatchMetrics {}))
    }
}

/// CloudWatch alarms for the alarm gate (`DescribeAlarms`: metric and composite alarms in ALARM).
#[pyclass(module = "sendy_cd._sendy_cd", extends = AlarmSource, frozen)]
pub(crate) struct CloudWatchAlarms {}

#[pymethods]
impl CloudWatchAlarms {
    #[new]
    fn new(config: &AwsConfig) -> PyClassInitializer<Self> {
        let source = live(|| sendy_cd::aws::CloudWatchAlarms::new(&config.inner));
        PyClassInitializer::from(AlarmSource::new(Arc::new(source), Some(Rt::real()))).add_subclass(CloudWatchAlarms {})
    }
}

/// Verifies an environment with HTTP GETs of its URL's health path.
#[pyclass(module = "sendy_cd._sendy_cd", extends = Verifier, frozen)]
pub(crate) struct HttpVerifier {}

#[pymethods]
impl HttpVerifier {
    #[new]
    fn new() -> PyResult<PyClassInitializer<Self>> {
        let v = py(live(sendy_cd::verify::http::HttpVerifier::new))?;
        Ok(PyClassInitializer::from(Verifier::new(Arc::new(v), Some(Rt::real()))).add_subclass(HttpVerifier {}))
    }
}

/// Any git remote (a path, https), read with gitoxide into a bare clone kept in `cache`.
#[pyclass(module = "sendy_cd._sendy_cd", extends = Source, frozen)]
pub(crate) struct GitSource {}

#[pymethods]
impl GitSource {
    #[new]
    fn new(url: &str, cache: std::path::PathBuf) -> PyResult<PyClassInitializer<Self>> {
        let s = py(sendy_cd::source::git::GitSource::new(url, cache))?;
        Ok(PyClassInitializer::from(Source::new(Arc::new(s), Some(Rt::real()))).add_subclass(GitSource {}))
    }
}

/// A GitHub repository through the REST API, with conditional requests.
#[pyclass(module = "sendy_cd._sendy_cd", extends = Source, frozen)]
pub(crate) struct GitHubSource {}

#[pymethods]
impl GitHubSource {
    #[new]
    #[pyo3(signature = (owner, repo, *, token = None, api_url = None))]
    fn new(owner: &str, repo: &str, token: Option<&str>, api_url: Option<&str>) -> PyResult<PyClassInitializer<Self>> {
        let mut b = sendy_cd::source::github::GitHubSource::builder(owner, repo);
        if let Some(t) = token {
            b = b.token(t);
        }
        if let Some(u) = api_url {
            b = b.api_url(u);
        }
        let s = py(live(|| b.build()))?;
        Ok(PyClassInitializer::from(Source::new(Arc::new(s), Some(Rt::real()))).add_subclass(GitHubSource {}))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AwsConfig>()?;
    m.add_class::<CodeBuildBuilder>()?;
    m.add_class::<CloudFormationStack>()?;
    m.add_class::<EcsDeployer>()?;
    m.add_class::<EcsManagedDeployer>()?;
    m.add_class::<Route53Dns>()?;
    m.add_class::<HttpVerifier>()?;
    m.add_class::<CloudWatchMetrics>()?;
    m.add_class::<CloudWatchAlarms>()?;
    m.add_class::<GitSource>()?;
    m.add_class::<GitHubSource>()?;
    Ok(())
}
