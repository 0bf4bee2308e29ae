//! [`DnsSwitch`]: moves users between environments with weighted DNS records.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Id, TrafficSplit};

/// Whether a weight change has reached every name server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    /// Not yet (Route 53: `PENDING`).
    Pending,
    /// Every name server answers with the new weights (Route 53: `INSYNC`). Resolvers may still hold
    /// the old answer for one TTL.
    Applied,
}

/// One DNS name whose weighted records (one per environment, by set identifier) split traffic.
///
/// # Contract
/// - [`weights`](DnsSwitch::weights) reads the current weight of every set identifier of the name.
/// - [`set_weights`](DnsSwitch::set_weights) changes all the given weights in one atomic change and
///   returns its id; every set identifier must already exist (it is validated before the call).
/// - [`change_status`](DnsSwitch::change_status) reports whether that change is applied.
/// - [`ttl`](DnsSwitch::ttl) is the records' TTL: after a change is applied, resolvers may keep the old
///   answer for that long.
///
/// # Errors
/// - [`Error::NotFound`](crate::Error::NotFound): no such record or change;
/// - [`Error::Conflict`](crate::Error::Conflict): a set identifier the record does not have;
/// - throttling and transient errors as usual.
///
/// # Cancellation
/// Dropping a future returned by `set_weights` may or may not leave the change made; dropping the others
/// changes nothing.
///
/// # Example
/// ```
/// use sendy_cd::{ChangeStatus, DnsSwitch, SetIdentifier, TrafficSplit, memory::Account};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> sendy_cd::Result<()> {
/// let account = Account::new();
/// account.create_environment("blue")?; // live: weight 100
/// account.create_environment("green")?; // idle: weight 0
/// let dns = account.dns();
/// let (blue, green) = (SetIdentifier::parse("blue")?, SetIdentifier::parse("green")?);
/// let change = dns.set_weights(&TrafficSplit::all_to(&green, [&blue])?).await?;
/// tokio::time::sleep(std::time::Duration::from_secs(120)).await;
/// assert_eq!(dns.change_status(&change).await?, ChangeStatus::Applied);
/// assert_eq!(dns.weights().await?.weight(&green), 100);
/// # Ok(()) }
/// ```
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait DnsSwitch: Send + Sync {
    /// The current weights.
    async fn weights(&self) -> Result<TrafficSplit>;
    /// Sets new weights in one change.
    async fn set_weights(&self, split: &TrafficSplit) -> Result<Id>;
    /// Whether change `change` is applied.
    async fn change_status(&self, change: &Id) -> Result<ChangeStatus>;
    /// The records' TTL.
    fn ttl(&self) -> Duration;
}
