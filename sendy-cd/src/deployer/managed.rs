//! [`ManagedDeployer`]: a deployer whose backend shifts the traffic itself (ECS's `BLUE_GREEN`,
//! `LINEAR` and `CANARY` deployment strategies), with lifecycle stages and `PAUSE` hooks the pipeline
//! decides.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::Deployer;
use crate::error::Result;
use crate::model::{EnvironmentName, ImageRef, Rollout};

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(into = "String", from = "String")]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $variant,)*
            /// A value this version does not know, as the backend spelt it.
            Other(String),
        }

        impl $name {
            /// The backend's spelling (ECS's).
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }

            /// From the backend's spelling; anything unknown is kept as [`Other`](Self::Other).
            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// A lifecycle stage of a managed deployment, in ECS's order.
    LifecycleStage {
        /// Only when more than one service revision was active.
        ReconcileService = "RECONCILE_SERVICE",
        /// The new revision has not started; the old one has all production traffic.
        PreScaleUp = "PRE_SCALE_UP",
        /// The new revision's tasks start.
        ScaleUp = "SCALE_UP",
        /// The new revision runs; no traffic yet.
        PostScaleUp = "POST_SCALE_UP",
        /// Test traffic moves to the new revision.
        TestTrafficShift = "TEST_TRAFFIC_SHIFT",
        /// All test traffic is on the new revision: where it is checked through the test listener.
        PostTestTrafficShift = "POST_TEST_TRAFFIC_SHIFT",
        /// Before each production traffic step.
        PreProductionTrafficShift = "PRE_PRODUCTION_TRAFFIC_SHIFT",
        /// Production traffic moves (one step of a linear or canary deployment).
        ProductionTrafficShift = "PRODUCTION_TRAFFIC_SHIFT",
        /// All production traffic is on the new revision.
        PostProductionTrafficShift = "POST_PRODUCTION_TRAFFIC_SHIFT",
        /// Both revisions run while the new one bakes; a rollback is immediate.
        BakeTime = "BAKE_TIME",
        /// The old revision is scaled down.
        CleanUp = "CLEAN_UP",
    }
);

named_enum!(
    /// The state of a managed deployment (ECS's `ServiceDeploymentStatus`).
    ManagedState {
        /// Created, not started.
        Pending = "PENDING",
        /// Under way.
        InProgress = "IN_PROGRESS",
        /// Done: the new revision has all traffic.
        Successful = "SUCCESSFUL",
        /// A stop was asked for.
        StopRequested = "STOP_REQUESTED",
        /// Stopped.
        Stopped = "STOPPED",
        /// A rollback was asked for (a hook, an alarm, the circuit breaker, a stop).
        RollbackRequested = "ROLLBACK_REQUESTED",
        /// Rolling back.
        RollbackInProgress = "ROLLBACK_IN_PROGRESS",
        /// Rolled back: the old revision has all traffic again. A failure of the deployment.
        RollbackSuccessful = "ROLLBACK_SUCCESSFUL",
        /// The rollback failed: the service needs a person.
        RollbackFailed = "ROLLBACK_FAILED",
    }
);

impl ManagedState {
    /// Whether the deployment will not change any more.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            ManagedState::Successful
                | ManagedState::Stopped
                | ManagedState::RollbackSuccessful
                | ManagedState::RollbackFailed
        )
    }
}

/// What a paused hook is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookAction {
    /// Go on to the next stage.
    Continue,
    /// Roll the deployment back to the revision it replaces.
    Rollback,
}

impl fmt::Display for HookAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookAction::Continue => "CONTINUE",
            HookAction::Rollback => "ROLLBACK",
        })
    }
}

/// A `PAUSE` hook that waits for a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PausedHook {
    /// The hook's id, for [`ManagedDeployer::decide`].
    pub id: String,
    /// The stage it holds.
    pub stage: LifecycleStage,
    /// When the backend takes the timeout action itself.
    pub expires_at: Option<jiff::Timestamp>,
    /// What the backend does then.
    pub timeout_action: Option<HookAction>,
}

impl PausedHook {
    /// A paused hook.
    pub fn new(id: impl Into<String>, stage: LifecycleStage) -> Self {
        PausedHook { id: id.into(), stage, expires_at: None, timeout_action: None }
    }
}

/// Where a managed deployment is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManagedStatus {
    /// Its state.
    pub state: ManagedState,
    /// Its lifecycle stage, if the backend tells it.
    pub stage: Option<LifecycleStage>,
    /// Why it is in that state (a rollback's cause), as the backend says it.
    pub reason: Option<String>,
    /// The `PAUSE` hook waiting for a decision, if any.
    pub paused: Option<PausedHook>,
    /// The new revision's share of the production traffic, in percent, if known.
    pub production_percent: Option<f64>,
    /// The service revision the deployment rolls out.
    pub target_revision: Option<String>,
    /// The service revisions it replaces.
    pub source_revisions: Vec<String>,
    /// The name under which the metric source knows the traffic of the new revision (its target
    /// group), if the deployer knows it: the canary side of an analysis.
    pub target_slot: Option<EnvironmentName>,
    /// The same for the revision it replaces: the baseline side.
    pub source_slot: Option<EnvironmentName>,
}

impl ManagedStatus {
    /// A status in `state`, nothing else known.
    pub fn new(state: ManagedState) -> Self {
        ManagedStatus {
            state,
            stage: None,
            reason: None,
            paused: None,
            production_percent: None,
            target_revision: None,
            source_revisions: vec![],
            target_slot: None,
            source_slot: None,
        }
    }
}

/// One revision of the service, from the backend's history (for ECS, a service revision).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServiceRevision {
    /// Its ARN (the name [`ManagedDeployer::roll_back_to`] takes).
    pub arn: String,
    /// The task definition it runs (`family:revision`).
    pub task_definition: String,
    /// The image it runs, if the backend tells it.
    pub image: Option<ImageRef>,
    /// When it was created.
    pub created_at: Option<jiff::Timestamp>,
}

/// A [`Deployer`] whose backend shifts production traffic itself (ECS's `BLUE_GREEN`, `LINEAR` and
/// `CANARY` strategies): [`deploy`](Deployer::deploy) starts a managed deployment and pins it (the
/// rollout's `deployment_id` is the service deployment's ARN, never "the service looks stable"), and
/// [`status`](Deployer::status) reports `ROLLBACK_SUCCESSFUL`, `ROLLBACK_FAILED` and `STOPPED` as
/// [`RolloutStatus::Failed`](super::RolloutStatus::Failed).
///
/// # Contract
/// - [`progress`](Self::progress): the deployment's state, lifecycle stage, the `PAUSE` hook waiting
///   for a decision, and the traffic shares;
/// - [`decide`](Self::decide): resolves a paused hook with `CONTINUE` or `ROLLBACK`; deciding a hook
///   that is no longer waiting (decided already, timed out) is not an error: the backend's state says
///   what happened;
/// - [`stop`](Self::stop): stops the deployment and rolls it back; stopping a finished one is not an
///   error;
/// - [`history`](Self::history): the service's revisions, newest first;
/// - [`roll_back_to`](Self::roll_back_to): a managed deployment of an earlier revision, pinned.
///
/// # Errors
/// As [`Deployer`]'s: [`Error::NotFound`](crate::Error::NotFound) for an unknown deployment or
/// revision, throttling and transient errors as usual.
#[async_trait]
pub trait ManagedDeployer: Deployer {
    /// Where `rollout` is.
    async fn progress(&self, rollout: &Rollout) -> Result<ManagedStatus>;
    /// Resolves the paused hook `hook_id` of `rollout`.
    async fn decide(&self, rollout: &Rollout, hook_id: &str, action: HookAction) -> Result<()>;
    /// Stops `rollout`, rolling it back.
    async fn stop(&self, rollout: &Rollout) -> Result<()>;
    /// The service's revisions, newest first.
    async fn history(&self) -> Result<Vec<ServiceRevision>>;
    /// Starts a managed deployment of the earlier revision `arn`.
    async fn roll_back_to(&self, arn: &str) -> Result<Rollout>;
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mock [`ManagedDeployer`] (with its [`Deployer`] methods).
    pub ManagedDeployer {}

    #[async_trait]
    impl Deployer for ManagedDeployer {
        async fn deploy(&self, image: &ImageRef) -> Result<Rollout>;
        async fn status(&self, rollout: &Rollout) -> Result<super::RolloutStatus>;
        async fn revisions(&self) -> Result<super::ServiceRevisions>;
        async fn rollback(&self, to: &super::RollbackTarget) -> Result<Rollout>;
    }

    #[async_trait]
    impl ManagedDeployer for ManagedDeployer {
        async fn progress(&self, rollout: &Rollout) -> Result<ManagedStatus>;
        async fn decide(&self, rollout: &Rollout, hook_id: &str, action: HookAction) -> Result<()>;
        async fn stop(&self, rollout: &Rollout) -> Result<()>;
        async fn history(&self) -> Result<Vec<ServiceRevision>>;
        async fn roll_back_to(&self, arn: &str) -> Result<Rollout>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_kept() {
        for s in ["PRE_SCALE_UP", "POST_TEST_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"] {
            assert_eq!(LifecycleStage::parse(s).as_str(), s);
            assert!(!matches!(LifecycleStage::parse(s), LifecycleStage::Other(_)));
        }
        assert_eq!(LifecycleStage::parse("NEW_STAGE"), LifecycleStage::Other("NEW_STAGE".into()));
        let json = serde_json::to_string(&ManagedState::RollbackSuccessful).unwrap();
        assert_eq!(json, "\"ROLLBACK_SUCCESSFUL\"");
        assert_eq!(serde_json::from_str::<ManagedState>(&json).unwrap(), ManagedState::RollbackSuccessful);
        assert!(ManagedState::RollbackFailed.is_final() && ManagedState::Stopped.is_final());
        assert!(!ManagedState::RollbackInProgress.is_final() && !ManagedState::Other("X".into()).is_final());
    }
}
