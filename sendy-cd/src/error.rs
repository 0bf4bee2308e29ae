//! The crate's one error type.
//!
//! Backends keep their own private errors and convert them into [`Error`]; whether an error is worth
//! retrying is decided in exactly one place, [`Error::is_retryable`].

use std::time::Duration;

use crate::model::{ParseError, Stage};

/// The most characters of a caller's or a service's text that an error repeats.
pub const MAX_ECHO: usize = 200;

/// `text`, cut to its first [`MAX_ECHO`] characters with a note of its full length when longer: what
/// an error repeats of an input, so that a 10 MB input never makes a 10 MB message.
pub fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}… ({} bytes in all)", &text[..end], text.len()),
    }
}

/// The result type of every fallible operation in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, as variants a caller can act on.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value failed validation; nothing was sent to AWS.
    #[error(transparent)]
    InvalidInput(#[from] ParseError),

    /// A pipeline, environment or backend was configured inconsistently; nothing was sent to AWS.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// The named resource does not exist.
    #[error("{kind} not found: {id}")]
    NotFound {
        /// What kind of resource (stack, build, deployment, record, ...).
        kind: &'static str,
        /// Its id or name.
        id: String,
    },

    /// The request conflicts with the resource's current state (a deployment already running, a stack
    /// being updated, an unknown set identifier in a weight change).
    #[error("conflict: {0}")]
    Conflict(String),

    /// The caller is not allowed to do this.
    #[error("access denied: {0}")]
    AccessDenied(String),

    /// The service asked us to slow down. Retryable, with backoff.
    #[error("throttled: {0}")]
    Throttled(String),

    /// A transient failure: a network error, a 5xx answer, a call that did not answer in time.
    /// Retryable.
    #[error("transient failure: {0}")]
    Transient(String),

    /// An operation did not finish within its deadline.
    #[error("{operation} did not finish within {after:?}")]
    Timeout {
        /// What was being waited for.
        operation: String,
        /// The deadline that passed.
        after: Duration,
    },

    /// A stage of a deployment failed: the build failed, the stack rolled back, the rollout failed or
    /// was rolled back by the circuit breaker, the environment failed verification.
    #[error("{stage} failed: {reason}")]
    StageFailed {
        /// The stage that failed.
        stage: Stage,
        /// Why, as the backend reported it.
        reason: String,
    },

    /// The operation was cancelled by its caller.
    #[error("cancelled")]
    Cancelled,

    /// Any other error a backend reported; not retryable.
    #[error("{0}")]
    Backend(String),
}

impl Error {
    /// Whether trying the same call again may succeed: throttling and transient errors.
    ///
    /// This is the one place the crate decides it; the waiting and retrying helpers in
    /// [`wait`](crate::wait) ask it and nothing else.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Throttled(_) | Error::Transient(_))
    }

    /// Whether the service asked to slow down (retry with a longer backoff).
    pub fn is_throttling(&self) -> bool {
        matches!(self, Error::Throttled(_))
    }

    /// The stage a [`StageFailed`](Error::StageFailed) error is about.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Error::StageFailed { stage, .. } => Some(*stage),
            _ => None,
        }
    }

    /// A short, stable name of the variant (`"throttled"`, `"stage_failed"`, ...), for records and bindings.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidInput(_) => "invalid_input",
            Error::InvalidConfig(_) => "invalid_config",
            Error::NotFound { .. } => "not_found",
            Error::Conflict(_) => "conflict",
            Error::AccessDenied(_) => "access_denied",
            Error::Throttled(_) => "throttled",
            Error::Transient(_) => "transient",
            Error::Timeout { .. } => "timeout",
            Error::StageFailed { .. } => "stage_failed",
            Error::Cancelled => "cancelled",
            Error::Backend(_) => "backend",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_and_transient_errors_are_retryable() {
        assert!(Error::Throttled("slow down".into()).is_retryable());
        assert!(Error::Transient("503".into()).is_retryable());
        for e in [
            Error::InvalidConfig("x".into()),
            Error::NotFound { kind: "stack", id: "x".into() },
            Error::Conflict("x".into()),
            Error::AccessDenied("x".into()),
            Error::Timeout { operation: "x".into(), after: Duration::from_secs(1) },
            Error::StageFailed { stage: Stage::Build, reason: "x".into() },
            Error::Cancelled,
            Error::Backend("x".into()),
        ] {
            assert!(!e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn long_inputs_are_cut_in_errors() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(10_000);
        let cut = truncate(&long);
        assert!(cut.starts_with(&"é".repeat(MAX_ECHO)), "{cut}");
        assert!(cut.ends_with("… (20000 bytes in all)"), "{cut}");
        let err = crate::model::CommitId::parse("x".repeat(10 << 20)).unwrap_err();
        assert!(err.to_string().len() < 400, "{}", err.to_string().len());
    }

    #[test]
    fn messages_name_the_stage() {
        let e = Error::StageFailed { stage: Stage::Rollout, reason: "circuit breaker".into() };
        assert_eq!(e.to_string(), "rollout failed: circuit breaker");
        assert_eq!(e.stage(), Some(Stage::Rollout));
        assert_eq!(e.kind(), "stage_failed");
    }
}
