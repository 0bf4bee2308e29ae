//! `sendy_cd.dashboard`: the deployment dashboard served from Python, and the static report.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyAny;
use tokio_util::sync::CancellationToken;

use crate::errors::{InvalidConfigError, py};
use crate::model::ExecutionRecord;
use crate::pipeline::Pipeline;
use crate::runtime::Rt;

/// A dashboard being served (on the library's own runtime, in the background): `url`, `stop()`;
/// a context manager that stops it on exit.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
pub(crate) struct DashboardServer {
    url: String,
    stop: CancellationToken,
    task: Mutex<Option<tokio::task::JoinHandle<sendy_cd::Result<()>>>>,
}

#[pymethods]
impl DashboardServer {
    /// Where it serves: `http://host:port/`.
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }
    /// Stops serving and waits until the server ended.
    fn stop(&self, py_: Python<'_>) -> PyResult<()> {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(task) = task {
            let ended = Rt::real().block_on(py_, None, task)?;
            if let Ok(Err(e)) = ended {
                return Err(crate::errors::to_py(&e));
            }
        }
        Ok(())
    }
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py_: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.stop(py_)?;
        Ok(false)
    }
    fn __repr__(&self) -> String {
        format!("<DashboardServer {}>", self.url)
    }
}

/// Serves the dashboard of `source` on `host:port` (port 0 picks a free one) in the background and
/// returns at once. `source` is a `Pipeline`, a list of them (live pages, actions when `token` is
/// given), or the path of a SQLite store with the pipeline `names` to show (read-only).
#[pyfunction]
#[pyo3(signature = (source, host = "127.0.0.1", port = 8080, *, names = None, token = None), text_signature = "(source, host='127.0.0.1', port=8080, *, names=None, token=None)")]
pub(crate) fn serve(
    py_: Python<'_>,
    source: &Bound<'_, PyAny>,
    host: &str,
    port: u16,
    names: Option<Vec<String>>,
    token: Option<String>,
) -> PyResult<DashboardServer> {
    let mut builder = sendy_cd::dashboard::Dashboard::builder();
    if let Ok(p) = source.cast::<Pipeline>() {
        builder = builder.pipeline(Arc::clone(&p.get().inner));
    } else if let Ok(path) = source.extract::<std::path::PathBuf>() {
        let Some(names) = names else {
            return Err(InvalidConfigError::new_err("a store path needs the pipeline names to show: names=[...]"));
        };
        let store: Arc<dyn sendy_cd::store::Store> = Arc::new(py(sendy_cd::store::sqlite::SqliteStore::open(&path))?);
        for name in &names {
            builder = builder.stored(name, Arc::clone(&store));
        }
    } else {
        let list: Vec<PyRef<'_, Pipeline>> = source.extract().map_err(|_| {
            InvalidConfigError::new_err("source: a Pipeline, a list of Pipelines, or the path of a SQLite store")
        })?;
        for p in list {
            builder = builder.pipeline(Arc::clone(&p.inner));
        }
    }
    if let Some(t) = &token {
        builder = builder.actions(t);
    }
    let dashboard = py(builder.build())?;
    let ip: std::net::IpAddr =
        host.parse().map_err(|_| InvalidConfigError::new_err(format!("host {host:?} is not an IP address")))?;
    let stop = CancellationToken::new();
    let rt = Rt::real();
    let token_for_server = stop.clone();
    let bound = rt.block_on(py_, None, async move {
        match dashboard.serve((ip, port).into(), token_for_server).await {
            Ok((addr, server)) => Ok((addr, tokio::spawn(server))),
            Err(e) => Err(e),
        }
    })?;
    let (addr, task) = py(bound)?;
    Ok(DashboardServer { url: format!("http://{addr}/"), stop, task: Mutex::new(Some(task)) })
}

/// One execution as a single HTML file (no script, no external asset): a CI artifact.
#[pyfunction]
pub(crate) fn report(record: &ExecutionRecord) -> String {
    sendy_cd::dashboard::report::html(&record.inner)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<DashboardServer>()?;
    m.add_function(wrap_pyfunction!(serve, m)?)?;
    m.add_function(wrap_pyfunction!(report, m)?)?;
    Ok(())
}
