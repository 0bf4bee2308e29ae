//! [`Deployer`]: rolls a service out to a new image.

mod managed;
mod stack;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Id, ImageRef, Rollout};

#[cfg(feature = "mock")]
pub use managed::MockManagedDeployer;
pub use managed::{
    HookAction, LifecycleStage, ManagedDeployer, ManagedState, ManagedStatus, PausedHook, ServiceRevision,
};
pub use stack::StackDeployer;

/// Where one rollout (one deployment id) is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RolloutStatus {
    /// Tasks of the new revision are starting.
    InProgress {
        /// Tasks running the new revision.
        running: u32,
        /// Tasks wanted.
        desired: u32,
        /// Tasks of this deployment that failed to start or stay healthy.
        failed: u32,
    },
    /// Every desired task runs the new revision.
    Completed {
        /// Tasks running.
        running: u32,
        /// Tasks wanted.
        desired: u32,
    },
    /// The rollout failed. `rolled_back` is true when a circuit breaker put the previous revision back:
    /// the service is healthy again, but *this* rollout did not succeed.
    Failed {
        /// Why, as the backend reported it.
        reason: String,
        /// Whether the service was rolled back to its previous revision.
        rolled_back: bool,
        /// Tasks that failed.
        failed: u32,
    },
    /// Another deployment of the service started before this one finished, and replaced it.
    Superseded {
        /// The deployment that took over.
        by: Id,
    },
}

impl RolloutStatus {
    /// Whether the status is final.
    pub fn is_final(&self) -> bool {
        !matches!(self, RolloutStatus::InProgress { .. })
    }
}

/// A revision a service ran or runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedRevision {
    /// The backend's name of the revision (for ECS, the task definition `family:revision`).
    pub revision: String,
    /// The image it runs.
    pub image: ImageRef,
}

/// What a service runs, and what it last ran successfully.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRevisions {
    /// The revision of the service's newest (primary) deployment, whatever its state.
    pub current: Option<DeployedRevision>,
    /// The newest revision other than `current` whose rollout completed: where
    /// [`RollbackTarget::LastGood`] goes.
    pub last_good: Option<DeployedRevision>,
}

/// Where to roll back to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", content = "revision", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RollbackTarget {
    /// [`ServiceRevisions::last_good`].
    LastGood,
    /// Any earlier revision, by the backend's name for it.
    Revision(String),
}

/// Rolls an environment's service out to a new image, and back.
///
/// # Contract
/// - [`deploy`](Deployer::deploy) starts a rollout of `image` and returns it pinned to the deployment id
///   it created (or, when a stack update already created a deployment of exactly this image, that one).
/// - [`status`](Deployer::status) reports *that* deployment: a circuit-breaker rollback is
///   [`RolloutStatus::Failed`] with `rolled_back`, never success; a newer deployment taking over is
///   [`RolloutStatus::Superseded`].
/// - [`revisions`](Deployer::revisions) tells the current and the last good revision.
/// - [`rollback`](Deployer::rollback) starts a rollout of an earlier revision, pinned like `deploy`'s.
/// - A revision the service still runs is never deleted or deregistered.
///
/// # Errors
/// - [`Error::NotFound`](crate::Error::NotFound): the service, deployment or revision does not exist,
///   or there is no last good revision to roll back to;
/// - throttling and transient errors as usual.
///
/// # Cancellation
/// Dropping a future returned by `deploy` or `rollback` may or may not leave a rollout started; dropping
/// the others changes nothing.
///
/// # Example
/// ```
/// use sendy_cd::{Deployer, ImageRef, RolloutStatus, memory::Account};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> sendy_cd::Result<()> {
/// let account = Account::new();
/// account.create_environment("blue")?;
/// let deployer = account.deployer("blue")?;
/// let rollout = deployer.deploy(&ImageRef::parse("app:v2")?).await?;
/// tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
/// assert!(matches!(deployer.status(&rollout).await?, RolloutStatus::Completed { .. }));
/// assert_eq!(deployer.revisions().await?.current.unwrap().image.tag(), Some("v2"));
/// # Ok(()) }
/// ```
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Deployer: Send + Sync {
    /// Starts rolling `image` out.
    async fn deploy(&self, image: &ImageRef) -> Result<Rollout>;
    /// Where `rollout` is.
    async fn status(&self, rollout: &Rollout) -> Result<RolloutStatus>;
    /// The current and last good revisions.
    async fn revisions(&self) -> Result<ServiceRevisions>;
    /// Starts rolling back to `to`.
    async fn rollback(&self, to: &RollbackTarget) -> Result<Rollout>;
}
