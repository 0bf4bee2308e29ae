//! `SendyError` and one subclass per variant of [`sendy_cd::Error`], both ways.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyAnyMethods, PyModule, PyType};
use sendy_cd::Error;

/// The exception classes, defined in Python (`sendy_cd/_errors.py`) so that each can also derive
/// from the built-in exception it means, which a class made in Rust cannot.
macro_rules! python_exceptions {
    ($($name:ident),* $(,)?) => {
        $(
            #[doc = concat!("`sendy_cd.", stringify!($name), "`, raised from Rust.")]
            pub(crate) struct $name;

            // Made for every class alike; Rust raises or tests some of them only.
            #[allow(dead_code)]
            impl $name {
                /// The exception, carrying `message`.
                pub(crate) fn new_err(message: impl Into<String>) -> PyErr {
                    let message = message.into();
                    Python::attach(|py| match class(py, stringify!($name)) {
                        Ok(cls) => PyErr::from_type(cls, (message,)),
                        Err(e) => e,
                    })
                }

                /// The class.
                pub(crate) fn type_object(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
                    class(py, stringify!($name))
                }
            }
        )*
    };
}

python_exceptions!(
    SendyError,
    InvalidInputError,
    InvalidConfigError,
    NotFoundError,
    ConflictError,
    AccessDeniedError,
    ThrottledError,
    TransientError,
    TimeoutError,
    StageFailedError,
    CancelledError,
    LeaseHeldError,
    LeaseLostError,
    BackendError,
);

/// Exception class `name` of `sendy_cd._errors`.
fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module = MODULE.get_or_try_init(py, || py.import("sendy_cd._errors").map(Bound::unbind))?;
    Ok(module.bind(py).getattr(name)?.cast_into::<PyType>()?)
}

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
        Error::LeaseHeld { .. } => LeaseHeldError::new_err(message),
        Error::LeaseLost { .. } => LeaseLostError::new_err(message),
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
    let is = |t: PyResult<Bound<'_, PyType>>| t.is_ok_and(|t| value.is_instance(&t).unwrap_or(false));
    let builtin = |name: &str| -> PyResult<Bound<'_, PyType>> {
        Ok(py.import("builtins")?.getattr(name)?.cast_into::<PyType>()?)
    };
    if is(InvalidInputError::type_object(py)) || is(InvalidConfigError::type_object(py)) {
        Error::InvalidConfig(message)
    } else if is(NotFoundError::type_object(py)) {
        Error::NotFound { kind: "python backend", id: message.into() }
    } else if is(ConflictError::type_object(py)) {
        Error::Conflict(message.into())
    } else if is(AccessDeniedError::type_object(py)) {
        Error::AccessDenied(message.into())
    } else if is(ThrottledError::type_object(py)) {
        Error::Throttled(message.into())
    } else if is(TransientError::type_object(py)) {
        Error::Transient(message.into())
    } else if is(CancelledError::type_object(py)) {
        Error::Cancelled
    } else if is(builtin("TimeoutError")) || is(builtin("ConnectionError")) {
        // A socket timeout or a refused or reset connection in a Python backend may pass, as from
        // a Rust backend: retried, and one failed probe for a verifier (not a failed stage).
        let name = value.get_type().qualname().map(|n| n.to_string()).unwrap_or_default();
        Error::Transient(format!("{name}: {message}").into())
    } else {
        let name = value.get_type().qualname().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
        Error::Backend(format!("{name}: {message}").into())
    }
}
