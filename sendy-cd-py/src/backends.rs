//! The six backends as Python objects, and backends written in Python serving a Rust pipeline.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pyo3::prelude::*;
use pyo3::types::{PyAny, PyTuple};
use sendy_cd::{Error, Result};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::errors::from_py;
use crate::runtime::{Rt, current_loop, python_call};

macro_rules! backend_class {
    ($name:ident, $trait:path, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(module = "sendy_cd._sendy_cd", subclass, frozen)]
        pub(crate) struct $name {
            pub(crate) inner: Arc<dyn $trait>,
            /// The runtime the backend needs: the simulated one for a simulated account's backends,
            /// the real one for live (AWS, HTTP, git) backends; none for backends written in Python.
            pub(crate) rt: Option<Rt>,
        }

        impl $name {
            pub(crate) fn new(inner: Arc<dyn $trait>, rt: Option<Rt>) -> Self {
                $name { inner, rt }
            }

            /// The backend behind `obj`: a backend object of this library, or any Python object with
            /// the protocol's methods.
            pub(crate) fn resolve(obj: &Bound<'_, PyAny>) -> (Arc<dyn $trait>, Option<Rt>) {
                match obj.cast::<$name>() {
                    Ok(b) => (b.get().inner.clone(), b.get().rt.clone()),
                    Err(_) => (Arc::new(PyBackend::new(obj, stringify!($name))), None),
                }
            }
        }

        #[pymethods]
        impl $name {
            fn __repr__(&self) -> String {
                let clock = if self.rt.as_ref().is_some_and(Rt::is_simulated) { "simulated" } else { "live" };
                format!("<{} ({clock})>", stringify!($name))
            }
        }
    };
}

backend_class!(Source, sendy_cd::Source, "Where revisions come from (`SourceProtocol` for your own).");
backend_class!(Builder, sendy_cd::Builder, "Builds a revision into an image (`BuilderProtocol` for your own).");
backend_class!(Stack, sendy_cd::Stack, "An environment's infrastructure (`StackProtocol` for your own).");
backend_class!(Deployer, sendy_cd::Deployer, "Rolls a service out to an image (`DeployerProtocol` for your own).");
backend_class!(DnsSwitch, sendy_cd::DnsSwitch, "Weighted DNS between environments (`DnsSwitchProtocol` for your own).");
backend_class!(Verifier, sendy_cd::Verifier, "Probes an environment's URL (`VerifierProtocol` for your own).");
backend_class!(
    AlarmSource,
    sendy_cd::analysis::AlarmSource,
    "Which alarms are firing, for the alarm gate (`AlarmSourceProtocol` for your own)."
);
backend_class!(
    MetricSource,
    sendy_cd::analysis::MetricSource,
    "The environments' metrics for a canary analysis (`MetricSourceProtocol` for your own)."
);

/// A deployer whose backend shifts the traffic itself (ECS's `BLUE_GREEN`, `LINEAR`, `CANARY`), for
/// `Strategy.ecs_managed()`: `Account.managed_deployer(name)` or `aws.EcsManagedDeployer(...)`.
#[pyclass(module = "sendy_cd._sendy_cd", extends = Deployer, subclass, frozen)]
pub(crate) struct ManagedDeployer {
    pub(crate) inner: Arc<dyn sendy_cd::ManagedDeployer>,
}

impl ManagedDeployer {
    /// The Python object: a `Deployer` whose backend is `inner`, and the managed deployer.
    pub(crate) fn initializer(inner: Arc<dyn sendy_cd::ManagedDeployer>, rt: Option<Rt>) -> PyClassInitializer<Self> {
        let deployer: Arc<dyn sendy_cd::Deployer> = inner.clone();
        PyClassInitializer::from(Deployer::new(deployer, rt)).add_subclass(ManagedDeployer { inner })
    }
}

/// A backend written in Python. Its methods are called on a blocking thread (so the runtime goes on
/// and simulated time stands still meanwhile), with the arguments as plain Python data (the JSON form
/// of the Rust types); a coroutine they return runs on the event loop of the `_async` call being
/// served, or else on a private one. A raised exception becomes the call's error (see
/// `errors::from_py`).
pub(crate) struct PyBackend {
    obj: Arc<Py<PyAny>>,
    what: &'static str,
}

impl PyBackend {
    fn new(obj: &Bound<'_, PyAny>, what: &'static str) -> Self {
        PyBackend { obj: Arc::new(obj.clone().unbind()), what }
    }

    async fn call<T: DeserializeOwned + Send + 'static>(
        &self,
        method: &'static str,
        args: Vec<serde_json::Value>,
    ) -> Result<T> {
        let obj = self.obj.clone();
        let what = self.what;
        let event_loop = current_loop();
        let counted = python_call();
        let task = tokio::task::spawn_blocking(move || {
            let _counted = counted; // dropped after the GIL is released
            Python::attach(|py| -> Result<T> {
                let fail = |e: PyErr| from_py(py, &e);
                let bridge = py.import("sendy_cd._bridge").map_err(fail)?;
                let mut py_args = Vec::with_capacity(args.len());
                for a in &args {
                    py_args.push(crate::model::to_python_argument(py, a).map_err(fail)?);
                }
                let target = obj.bind(py);
                if !target.hasattr(method).unwrap_or(false) {
                    return Err(Error::InvalidConfig(format!("the Python {what} has no method {method}()")));
                }
                let result = target.call_method1(method, PyTuple::new(py, py_args).map_err(fail)?).map_err(fail)?;
                let loop_arg = event_loop.as_ref().map(|l| l.bind(py).clone());
                let result = bridge.call_method1("resolve", (result, loop_arg)).map_err(fail)?;
                let text: String = bridge.call_method1("dumps", (result,)).map_err(fail)?.extract().map_err(fail)?;
                serde_json::from_str(&text).map_err(|e| {
                    Error::Backend(
                        format!("the Python {what}'s {method}() returned {text}, which is not valid: {e}").into(),
                    )
                })
            })
        });
        task.await.map_err(|e| Error::Backend(format!("the Python {what}'s {method}() did not finish: {e}").into()))?
    }
}

fn arg(v: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

#[async_trait]
impl sendy_cd::Source for PyBackend {
    async fn latest(&self, branch: &sendy_cd::BranchName) -> Result<sendy_cd::Revision> {
        self.call("latest", vec![arg(branch)]).await
    }
}

#[async_trait]
impl sendy_cd::Builder for PyBackend {
    async fn start(&self, revision: &sendy_cd::Revision) -> Result<sendy_cd::BuildId> {
        self.call("start", vec![arg(revision)]).await
    }
    async fn status(&self, build: &sendy_cd::BuildId) -> Result<sendy_cd::BuildStatus> {
        self.call("status", vec![arg(build)]).await
    }
    async fn stop(&self, build: &sendy_cd::BuildId) -> Result<()> {
        self.call::<IgnoredAny>("stop", vec![arg(build)]).await.map(|_| ())
    }
}

#[async_trait]
impl sendy_cd::Stack for PyBackend {
    async fn plan(&self, stack: &sendy_cd::StackName, change: &sendy_cd::StackChange) -> Result<sendy_cd::Plan> {
        self.call("plan", vec![arg(stack), arg(change)]).await
    }
    async fn apply(&self, plan: &sendy_cd::StackPlan) -> Result<()> {
        self.call::<IgnoredAny>("apply", vec![arg(plan)]).await.map(|_| ())
    }
    async fn status(&self, plan: &sendy_cd::StackPlan) -> Result<sendy_cd::StackStatus> {
        self.call("status", vec![arg(plan)]).await
    }
    async fn outputs(&self, stack: &sendy_cd::StackName) -> Result<sendy_cd::StackOutputs> {
        self.call("outputs", vec![arg(stack)]).await
    }
}

#[async_trait]
impl sendy_cd::Deployer for PyBackend {
    async fn deploy(&self, image: &sendy_cd::ImageRef) -> Result<sendy_cd::Rollout> {
        self.call("deploy", vec![arg(image)]).await
    }
    async fn status(&self, rollout: &sendy_cd::Rollout) -> Result<sendy_cd::RolloutStatus> {
        self.call("status", vec![arg(rollout)]).await
    }
    async fn revisions(&self) -> Result<sendy_cd::ServiceRevisions> {
        self.call("revisions", vec![]).await
    }
    async fn rollback(&self, to: &sendy_cd::RollbackTarget) -> Result<sendy_cd::Rollout> {
        self.call("rollback", vec![arg(to)]).await
    }
}

#[async_trait]
impl sendy_cd::DnsSwitch for PyBackend {
    async fn weights(&self) -> Result<sendy_cd::TrafficSplit> {
        self.call("weights", vec![]).await
    }
    async fn set_weights(&self, split: &sendy_cd::TrafficSplit) -> Result<sendy_cd::Id> {
        self.call("set_weights", vec![arg(split)]).await
    }
    async fn change_status(&self, change: &sendy_cd::Id) -> Result<sendy_cd::ChangeStatus> {
        self.call("change_status", vec![arg(change)]).await
    }
    fn ttl(&self) -> Duration {
        // A `ttl` attribute (or method) in seconds; 60 s, Route 53's advice, when absent.
        Python::attach(|py| {
            let obj = self.obj.bind(py);
            let ttl = obj.getattr("ttl").ok()?;
            let ttl = if ttl.is_callable() { ttl.call0().ok()? } else { ttl };
            ttl.extract::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
        })
        .unwrap_or(Duration::from_secs(60))
    }
}

#[async_trait]
impl sendy_cd::Verifier for PyBackend {
    async fn probe(
        &self,
        url: &sendy_cd::ServiceUrl,
        request: &sendy_cd::ProbeRequest,
    ) -> Result<sendy_cd::ProbeResponse> {
        self.call("probe", vec![arg(url), arg(request)]).await
    }
}

#[async_trait]
impl sendy_cd::analysis::MetricSource for PyBackend {
    async fn fetch(&self, request: &sendy_cd::analysis::MetricRequest) -> Result<Vec<sendy_cd::analysis::Series>> {
        self.call("fetch", vec![arg(request)]).await
    }
}

#[async_trait]
impl sendy_cd::analysis::AlarmSource for PyBackend {
    async fn firing(&self, names: &[String]) -> Result<Vec<String>> {
        self.call("firing", vec![arg(&names)]).await
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MetricSource>()?;
    m.add_class::<AlarmSource>()?;
    m.add_class::<Source>()?;
    m.add_class::<Builder>()?;
    m.add_class::<Stack>()?;
    m.add_class::<Deployer>()?;
    m.add_class::<ManagedDeployer>()?;
    m.add_class::<DnsSwitch>()?;
    m.add_class::<Verifier>()?;
    Ok(())
}
