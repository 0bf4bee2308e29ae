//! Python bindings of sendy-cd: the native module `sendy_cd._sendy_cd`, wrapped by the Python
//! package `sendy_cd` (see `python/sendy_cd`). Built with maturin (`pyproject.toml`).

mod analysis;
mod aws;
mod backends;
mod builder;
mod dashboard;
mod errors;
mod memory;
mod model;
mod pipeline;
mod runtime;

use pyo3::prelude::*;

#[pymodule(name = "_sendy_cd")]
fn sendy_cd_py(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    backends::register(m)?;
    m.add_class::<model::Revision>()?;
    m.add_class::<runtime::Pending>()?;
    m.add_class::<model::Event>()?;
    m.add_class::<model::StageRecord>()?;
    m.add_class::<model::ExecutionRecord>()?;
    m.add_class::<memory::Account>()?;
    m.add_class::<memory::SimConfig>()?;
    pipeline::register(m)?;
    analysis::register(m)?;
    aws::register(m)?;
    dashboard::register(m)?;
    Ok(())
}
