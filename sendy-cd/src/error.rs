//! The crate's one error type.
//!
//! Backends keep their own private errors and convert them into [`Error`]; whether an error is worth
//! retrying is decided in exactly one place, [`Error::is_retryable`].

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::model::{ParseError, Stage};

/// The cause an [`Error`] keeps: any error, shared so that [`Error`] stays `Clone`.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What an error says about a failure a service or backend reported: its message, the service's
/// machine-readable error code when it gave one (`"ThrottlingException"`, `"InvalidInputException"`),
/// and the error that caused it ([`Error::source`](std::error::Error::source) returns it).
///
/// It reads as its message (`Deref<Target = str>`, `Display`), and is made from a `String` or `&str`.
#[derive(Clone, Default)]
pub struct Detail {
    message: String,
    code: Option<String>,
    cause: Option<Cause>,
}

impl Detail {
    /// A detail with `message` only.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: None, cause: None }
    }

    /// With the service's error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// With the error that caused it.
    pub fn with_cause(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Arc::new(cause));
        self
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The service's error code, when it gave one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The error that caused it, when there is one.
    pub fn cause(&self) -> Option<&Cause> {
        self.cause.as_ref()
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Detail");
        d.field("message", &self.message);
        if let Some(code) = &self.code {
            d.field("code", code);
        }
        if let Some(cause) = &self.cause {
            d.field("cause", &cause.to_string());
        }
        d.finish()
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Deref for Detail {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

impl From<String> for Detail {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for Detail {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl PartialEq<str> for Detail {
    fn eq(&self, other: &str) -> bool {
        self.message == other
    }
}

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
/// Its [`source`](std::error::Error::source) is the cause a [`Detail`] keeps (the SDK error, the git
/// error); its [`code`](Error::code) the service's error code.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error {
    /// A value failed validation; nothing was sent to AWS.
    InvalidInput(ParseError),

    /// A pipeline, environment or backend was configured inconsistently; nothing was sent to AWS.
    InvalidConfig(String),

    /// The named resource does not exist.
    NotFound {
        /// What kind of resource (stack, build, deployment, record, ...).
        kind: &'static str,
        /// Its id or name (with the service's code and the cause, when a service said so).
        id: Detail,
    },

    /// The request conflicts with the resource's current state (a deployment already running, a stack
    /// being updated, an unknown set identifier in a weight change).
    Conflict(Detail),

    /// The caller is not allowed to do this.
    AccessDenied(Detail),

    /// The service asked us to slow down. Retryable, with backoff.
    Throttled(Detail),

    /// A transient failure: a network error, a 5xx answer, a call that did not answer in time.
    /// Retryable.
    Transient(Detail),

    /// An operation did not finish within its deadline.
    Timeout {
        /// What was being waited for.
        operation: String,
        /// The deadline that passed.
        after: Duration,
    },

    /// A stage of a deployment failed: the build failed, the stack rolled back, the rollout failed or
    /// was rolled back by the circuit breaker, the environment failed verification.
    StageFailed {
        /// The stage that failed.
        stage: Stage,
        /// Why, as the backend reported it.
        reason: String,
    },

    /// The operation was cancelled by its caller.
    Cancelled,

    /// Another holder runs this pipeline: its lease has not expired. Nothing was changed.
    LeaseHeld {
        /// Who holds the lease (host, pid and what it runs).
        holder: String,
        /// When its lease ends unless renewed.
        expires_at: jiff::Timestamp,
    },

    /// This process's lease on the pipeline expired or was taken by another holder: it made no
    /// further mutating call, and leaves the execution for the new holder to settle.
    LeaseLost {
        /// The pipeline id.
        pipeline: String,
        /// The fencing token it held.
        token: u64,
    },

    /// Any other error a backend reported; not retryable.
    Backend(Detail),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput(e) => e.fmt(f),
            Error::InvalidConfig(m) => write!(f, "invalid configuration: {m}"),
            Error::NotFound { kind, id } => write!(f, "{kind} not found: {id}"),
            Error::Conflict(d) => write!(f, "conflict: {d}"),
            Error::AccessDenied(d) => write!(f, "access denied: {d}"),
            Error::Throttled(d) => write!(f, "throttled: {d}"),
            Error::Transient(d) => write!(f, "transient failure: {d}"),
            Error::Timeout { operation, after } => write!(f, "{operation} did not finish within {after:?}"),
            Error::StageFailed { stage, reason } => write!(f, "{stage} failed: {reason}"),
            Error::Cancelled => f.write_str("cancelled"),
            Error::LeaseHeld { holder, expires_at } => {
                write!(f, "the pipeline is running elsewhere: {holder} holds its lease until {expires_at}")
            }
            Error::LeaseLost { pipeline, token } => {
                write!(
                    f,
                    "the lease on pipeline {pipeline} (token {token}) was lost: stopped before any further change"
                )
            }
            Error::Backend(d) => d.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    /// The cause a [`Detail`] keeps (the SDK's error, gitoxide's, the HTTP client's); an invalid
    /// input reads as its [`ParseError`] and has that error's source.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::InvalidInput(e) => e.source(),
            _ => self.detail()?.cause().map(|c| c.as_ref() as &(dyn std::error::Error + 'static)),
        }
    }
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Error::InvalidInput(e)
    }
}

impl Error {
    /// The [`Detail`] of a failure a service or backend reported (not found, conflict, access
    /// denied, throttled, transient, backend).
    pub fn detail(&self) -> Option<&Detail> {
        match self {
            Error::NotFound { id: d, .. }
            | Error::Conflict(d)
            | Error::AccessDenied(d)
            | Error::Throttled(d)
            | Error::Transient(d)
            | Error::Backend(d) => Some(d),
            _ => None,
        }
    }

    /// The service's machine-readable error code, when the error came from a service that gave one
    /// (`"ThrottlingException"`, `"InvalidInputException"`, `"ChangeSetNotFound"`): what code that
    /// acts on a particular service error matches, never the message.
    pub fn code(&self) -> Option<&str> {
        self.detail()?.code()
    }

    /// This error with its [`Detail`] changed by `f` (errors without one are returned as they are).
    pub fn map_detail(mut self, f: impl FnOnce(Detail) -> Detail) -> Self {
        match &mut self {
            Error::NotFound { id: d, .. }
            | Error::Conflict(d)
            | Error::AccessDenied(d)
            | Error::Throttled(d)
            | Error::Transient(d)
            | Error::Backend(d) => *d = f(std::mem::take(d)),
            _ => {}
        }
        self
    }

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
            Error::LeaseHeld { .. } => "lease_held",
            Error::LeaseLost { .. } => "lease_lost",
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
    fn an_error_keeps_its_cause_and_code() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let e = Error::Transient(Detail::new("GET /x: connection lost").with_code("RequestTimeout").with_cause(io));
        assert_eq!(e.to_string(), "transient failure: GET /x: connection lost");
        assert_eq!(e.code(), Some("RequestTimeout"));
        let source = std::error::Error::source(&e).expect("the cause is the source");
        assert_eq!(source.to_string(), "reset by peer");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
        // Cloning keeps it; an error without a detail has neither.
        assert!(std::error::Error::source(&e.clone()).is_some());
        assert_eq!(Error::Cancelled.code(), None);
        assert!(std::error::Error::source(&Error::Conflict("busy".into())).is_none());
    }

    #[test]
    fn messages_name_the_stage() {
        let e = Error::StageFailed { stage: Stage::Rollout, reason: "circuit breaker".into() };
        assert_eq!(e.to_string(), "rollout failed: circuit breaker");
        assert_eq!(e.stage(), Some(Stage::Rollout));
        assert_eq!(e.kind(), "stage_failed");
    }
}
