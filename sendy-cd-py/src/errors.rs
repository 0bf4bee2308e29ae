//! `SendyError` and one subclass per variant of [`sendy_cd::Error`], both ways.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyAnyMethods;
use sendy_cd::Error;

pyo3::create_exception!(
    _sendy_cd,
    SendyError,
    PyException,
    "The base of every error sendy-cd raises. `retryable` says whether trying again may succeed."
);
pyo3::create_exception!(_sendy_cd, InvalidInputError, SendyError, "A value failed validation.");
pyo3::create_exception!(_sendy_cd, InvalidConfigError, SendyError, "A pipeline or backend is misconfigured.");
pyo3::create_exception!(_sendy_cd, NotFoundError, SendyError, "Something named does not exist.");
pyo3::create_exception!(_sendy_cd, ConflictError, SendyError, "The operation conflicts with one under way.");
pyo3::create_exception!(_sendy_cd, AccessDeniedError, SendyError, "The credentials may not do this.");
pyo3::create_exception!(_sendy_cd, ThrottledError, SendyError, "The service asked to slow down.");
pyo3::create_exception!(_sendy_cd, TransientError, SendyError, "A failure that may pass.");
pyo3::create_exception!(_sendy_cd, TimeoutError, SendyError, "An operation did not finish within its deadline.");
pyo3::create_exception!(_sendy_cd, StageFailedError, SendyError, "A pipeline stage failed.");
pyo3::create_exception!(_sendy_cd, CancelledError, SendyError, "The operation was cancelled.");
pyo3::create_exception!(_sendy_cd, BackendError, SendyError, "A backend failed in a way no other error describes.");

/// The Python exception of a library error, with `retryable` and `kind` set on it.
pub(crate) fn to_py(e: &Error) -> PyErr {
    let message = e.to_string();
    let err = match e {
        Error::InvalidInput(_) => InvalidInputError::new_err(message),
        Error::InvalidConfig(_) => InvalidConfigError::new_err(message),
        Error::NotFound { .. } => NotFoundError::new_err(message),
        Error::Conflict(_) => ConflictError::new_err(message),
        Error::AccessDenied(_) => AccessDeniedError::new_err(message),
        Error::Throttled(_) => ThrottledError::new_err(message),
        Error::Transient(_) => TransientError::new_err(message),
        Error::Timeout { .. } => TimeoutError::new_err(message),
        Error::StageFailed { .. } => StageFailedError::new_err(message),
        Error::Cancelled => CancelledError::new_err(message),
        _ => BackendError::new_err(message),
    };
    Python::attach(|py| {
        let value = err.value(py);
        let _ = value.setattr("retryable", e.is_retryable());
        let _ = value.setattr("kind", e.kind());
    });
    err
}

/// Converts a library result for Python.
pub(crate) fn py<T>(r: sendy_cd::Result<T>) -> PyResult<T> {
    r.map_err(|e| to_py(&e))
}

/// The library error for an exception raised by a backend written in Python: a `SendyError` subclass
/// keeps its meaning (a `TransientError` is retried, as from a Rust backend); any other exception is a
/// backend error whose message keeps the exception's type and message.
pub(crate) fn from_py(py: Python<'_>, err: &PyErr) -> Error {
    let value = err.value(py);
    let message = value.str().map(|s| s.to_string()).unwrap_or_default();
    let is = |t: &Bound<'_, pyo3::types::PyType>| value.is_instance(t).unwrap_or(false);
    if is(&py.get_type::<InvalidInputError>()) || is(&py.get_type::<InvalidConfigError>()) {
        Error::InvalidConfig(message)
    } else if is(&py.get_type::<NotFoundError>()) {
        Error::NotFound { kind: "python backend", id: message }
    } else if is(&py.get_type::<ConflictError>()) {
        Error::Conflict(message)
    } else if is(&py.get_type::<AccessDeniedError>()) {
        Error::AccessDenied(message)
    } else if is(&py.get_type::<ThrottledError>()) {
        Error::Throttled(message)
    } else if is(&py.get_type::<TransientError>()) {
        Error::Transient(message)
    } else if is(&py.get_type::<CancelledError>()) {
        Error::Cancelled
    } else {
        let name = value.get_type().qualname().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
        Error::Backend(format!("{name}: {message}"))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SendyError", py.get_type::<SendyError>())?;
    m.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    m.add("InvalidConfigError", py.get_type::<InvalidConfigError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("AccessDeniedError", py.get_type::<AccessDeniedError>())?;
    m.add("ThrottledError", py.get_type::<ThrottledError>())?;
    m.add("TransientError", py.get_type::<TransientError>())?;
    m.add("TimeoutError", py.get_type::<TimeoutError>())?;
    m.add("StageFailedError", py.get_type::<StageFailedError>())?;
    m.add("CancelledError", py.get_type::<CancelledError>())?;
    m.add("BackendError", py.get_type::<BackendError>())?;
    Ok(())
}
