//! The alarm gate: named alarms checked during every bake and canary analysis; any in `ALARM` fails
//! the step, and the pipeline sends the traffic back.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, Result};

/// Tells which alarms are firing.
///
/// # Contract
/// [`firing`](AlarmSource::firing) answers, in one request to its backend, which of `names` are
/// in the `ALARM` state now (an alarm that does not exist is not firing; `INSUFFICIENT_DATA` is not
/// firing).
///
/// # Errors
/// The backend's errors ([`Error::Throttled`], [`Error::Transient`], [`Error::AccessDenied`], ...).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait AlarmSource: Send + Sync {
    /// The names among `names` whose alarm is in `ALARM`.
    async fn firing(&self, names: &[String]) -> Result<Vec<String>>;
}

/// Which alarms gate a pipeline's bakes, and how often they are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlarmGate {
    /// The alarms' names.
    pub names: Vec<String>,
    /// The pause between two checks during a bake. Default 30 s (CloudWatch evaluates alarms every
    /// minute at most).
    pub interval: Duration,
}

impl AlarmGate {
    /// A gate on `names`, checked every 30 s.
    pub fn new(names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        AlarmGate { names: names.into_iter().map(Into::into).collect(), interval: Duration::from_secs(30) }
    }

    /// Checks the gate: at least one alarm, names of 1 to 255 characters, no name twice, an interval
    /// of at least a second.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming what is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidConfig(format!("alarm gate: {m}")));
        if self.names.is_empty() {
            return bad("no alarm names".into());
        }
        for (i, name) in self.names.iter().enumerate() {
            if name.trim().is_empty() || name.len() > 255 {
                return bad(format!("alarm name {:?} must be 1 to 255 characters", crate::error::truncate(name)));
            }
            if self.names[..i].contains(name) {
                return bad(format!("alarm {name:?} named twice"));
            }
        }
        if self.interval < Duration::from_secs(1) {
            return bad(format!("interval {:?} is under a second", self.interval));
        }
        Ok(())
    }
}

setters!(AlarmGate { interval: Duration });
