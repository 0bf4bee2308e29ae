//! [`Stack`]: an environment's infrastructure, changed through previewed plans.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Id, StackName, StackOutputs, StackParameters};

/// What to change in a stack.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackChange {
    /// New parameter values; parameters not listed keep their previous values.
    pub parameters: StackParameters,
    /// A new template body; `None` keeps the current template. Required to create a stack.
    pub template: Option<String>,
}

/// What a change does to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChangeAction {
    /// The resource is created.
    Add,
    /// The resource is updated.
    Modify,
    /// The resource is deleted.
    Remove,
    /// The resource is imported.
    Import,
    /// Decided only when the change is applied.
    Dynamic,
}

/// Whether a modified resource is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Replacement {
    /// It is replaced.
    True,
    /// It is updated in place.
    False,
    /// It may be replaced, depending on values known only when applying.
    Conditional,
}

/// One resource a plan changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceChange {
    /// The resource's logical id in the template.
    pub logical_id: String,
    /// Its type, such as `AWS::ECS::TaskDefinition`.
    pub resource_type: String,
    /// What happens to it.
    pub action: ChangeAction,
    /// Whether it is replaced (for [`ChangeAction::Modify`]).
    pub replacement: Option<Replacement>,
}

/// Whether a plan creates the stack or updates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PlanKind {
    /// The stack does not exist yet.
    Create,
    /// The stack exists.
    Update,
}

/// A previewed change (a CloudFormation change set), ready to apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackPlan {
    /// The plan's id (the change set's id); [`Stack::status`] follows the update this plan starts.
    pub id: Id,
    /// The stack it changes.
    pub stack: StackName,
    /// Create or update.
    pub kind: PlanKind,
    /// The resources it changes (may be empty when only parameters change).
    pub changes: Vec<ResourceChange>,
}

/// The outcome of planning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "plan", rename_all = "snake_case")]
pub enum Plan {
    /// The stack already matches the change: a normal outcome, nothing to apply.
    NoChanges,
    /// A plan to apply.
    Ready(StackPlan),
}

/// Where an applied plan is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StackStatus {
    /// Being applied; `status` as the backend names it (`UPDATE_IN_PROGRESS`, ...).
    InProgress {
        /// The backend's status.
        status: String,
    },
    /// Applied.
    Complete,
    /// Failed without rolling back (a failed create, or a failed rollback).
    Failed {
        /// The resource that failed first, if known.
        resource: Option<String>,
        /// Its reason.
        reason: String,
    },
    /// Failed and rolled back to the previous state.
    RolledBack {
        /// The resource that failed first, if known.
        resource: Option<String>,
        /// Its reason.
        reason: String,
    },
}

impl StackStatus {
    /// Whether the status is final.
    pub fn is_final(&self) -> bool {
        !matches!(self, StackStatus::InProgress { .. })
    }
}

/// An environment's infrastructure (network, load balancer, cluster, service, task definition), changed
/// only through plans that are previewed first.
///
/// # Contract
/// - [`plan`](Stack::plan) previews `change` without changing anything; a change that changes nothing
///   is [`Plan::NoChanges`], not an error. A plan for a stack that does not exist is a
///   [`PlanKind::Create`] and needs a template.
/// - [`apply`](Stack::apply) starts applying a plan and returns without waiting. Applying a plan that
///   was applied already (the answer of the first apply was lost, and the call is tried again) succeeds
///   and changes nothing: how the update goes is for [`status`](Stack::status) to say.
/// - [`status`](Stack::status) reports the update *that plan* started, never an earlier or later one.
///   Any rollback or failure is reported as such, with the failing resource's reason.
/// - [`outputs`](Stack::outputs) reads the stack's current outputs.
///
/// # Errors
/// - [`Error::NotFound`](crate::Error::NotFound): the stack (for `outputs`) or plan does not exist;
/// - [`Error::InvalidInput`](crate::Error::InvalidInput) / [`Error::InvalidConfig`](crate::Error::InvalidConfig):
///   a create without a template, an unknown parameter;
/// - [`Error::Conflict`](crate::Error::Conflict): the stack is being changed by someone else;
/// - throttling and transient errors as usual.
///
/// # Cancellation
/// Dropping a future returned by `plan` may leave an unused plan behind; by `apply`, the plan may or may
/// not have started. Dropping the others changes nothing.
///
/// # Example
/// ```
/// use sendy_cd::{Plan, Stack, StackChange, StackName, StackParameters, StackStatus, memory::Account};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> sendy_cd::Result<()> {
/// let account = Account::new();
/// account.create_environment("blue")?; // creates the stack "app-blue"
/// let stacks = account.stacks();
/// let name = StackName::parse("app-blue")?;
/// let change = StackChange { parameters: StackParameters::parse([("DesiredCount", "4")])?, template: None };
/// let Plan::Ready(plan) = stacks.plan(&name, &change).await? else { panic!() };
/// stacks.apply(&plan).await?;
/// tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
/// assert_eq!(stacks.status(&plan).await?, StackStatus::Complete);
/// assert_eq!(stacks.plan(&name, &change).await?, Plan::NoChanges);
/// # Ok(()) }
/// ```
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Stack: Send + Sync {
    /// Previews `change` to stack `stack`.
    async fn plan(&self, stack: &StackName, change: &StackChange) -> Result<Plan>;
    /// Previews `change` at most once for `key`: called again with the same key (a retry after an
    /// ambiguous failure, or an interrupted execution resumed), it answers the plan the first call
    /// made, if it still exists, instead of making another. The pipeline calls this with a key made
    /// of its name, the execution id and the environment. CloudFormation names the change set after
    /// the key; the simulated account remembers keys.
    ///
    /// The default calls [`plan`](Self::plan) (no protection).
    async fn plan_once(&self, stack: &StackName, change: &StackChange, key: &str) -> Result<Plan> {
        let _ = key;
        self.plan(stack, change).await
    }
    /// Starts applying `plan`.
    async fn apply(&self, plan: &StackPlan) -> Result<()>;
    /// Where the update started by `plan` is.
    async fn status(&self, plan: &StackPlan) -> Result<StackStatus>;
    /// The current outputs of `stack`.
    async fn outputs(&self, stack: &StackName) -> Result<StackOutputs>;
}
