//! [`StackDeployer`]: rolls out by updating a stack's image parameter, then follows the deployment
//! that update created.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::deployer::{Deployer, RollbackTarget, RolloutStatus, ServiceRevisions};
use crate::error::{Error, Result};
use crate::model::{ImageRef, ParameterKey, Rollout, StackName, StackParameters, Stage};
use crate::shared::Shared;
use crate::stack::{Plan, Stack, StackChange, StackPlan, StackStatus};
use crate::wait::{Check, PollPolicy, Wait};

/// A service owned by a stack (the seed's path: CloudFormation manages the task definition and the
/// service), as a [`Deployer`].
///
/// [`deploy`](Deployer::deploy) plans and applies the stack with the new image in its image parameter,
/// waits until the service runs a revision of that image (the stack update registers it and updates
/// the service), then pins the deployment the update created through `service`, whose `deploy` pins an
/// existing deployment of exactly that image instead of starting another (as
/// [`EcsDeployer`](crate::aws::EcsDeployer) does). [`status`](Deployer::status) reports that deployment,
/// and a stack update that fails or rolls back as a failed rollout. Rollbacks go through the stack
/// too, so it stays the one source of truth.
pub struct StackDeployer {
    stack: Arc<dyn Stack>,
    stack_name: StackName,
    image_parameter: ParameterKey,
    service: Arc<dyn Deployer>,
    poll: PollPolicy,
    deadline: Duration,
    plans: Mutex<HashMap<String, StackPlan>>,
}

impl std::fmt::Debug for StackDeployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackDeployer")
            .field("stack_name", &self.stack_name)
            .field("image_parameter", &self.image_parameter)
            .finish_non_exhaustive()
    }
}

impl StackDeployer {
    /// Rolls out through stack `stack_name` (parameter `ImageUri`), following the service through
    /// `service`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed stack name.
    pub fn new(stack: impl Shared<dyn Stack>, stack_name: &str, service: impl Shared<dyn Deployer>) -> Result<Self> {
        let (stack, service) = (stack.into_shared(), service.into_shared());
        Ok(StackDeployer {
            stack,
            stack_name: StackName::parse(stack_name)?,
            image_parameter: ParameterKey::parse("ImageUri")?,
            service,
            poll: PollPolicy::default(),
            deadline: Duration::from_secs(1800),
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// The stack parameter that holds the image (validated when parsed). Default `ImageUri`.
    #[must_use]
    pub fn image_parameter(mut self, key: ParameterKey) -> Self {
        self.image_parameter = key;
        self
    }

    /// How to poll while waiting for the stack update to reach the service, and for how long.
    /// Defaults: [`PollPolicy::default`], 30 minutes.
    #[must_use]
    pub fn polling(mut self, poll: PollPolicy, deadline: Duration) -> Self {
        self.poll = poll;
        self.deadline = deadline;
        self
    }

    fn failed(plan: &StackPlan, status: &StackStatus) -> Option<String> {
        match status {
            StackStatus::RolledBack { resource, reason } | StackStatus::Failed { resource, reason } => Some(format!(
                "stack {} update {}: {}{reason}",
                plan.stack,
                if matches!(status, StackStatus::RolledBack { .. }) { "rolled back" } else { "failed" },
                resource.as_ref().map(|r| format!("{r}: ")).unwrap_or_default()
            )),
            _ => None,
        }
    }
}

#[async_trait]
impl Deployer for StackDeployer {
    async fn deploy(&self, image: &ImageRef) -> Result<Rollout> {
        let mut parameters = StackParameters::new();
        parameters.insert(self.image_parameter.clone(), image.to_string());
        let change = StackChange { parameters, template: None };
        let plan = match self.stack.plan(&self.stack_name, &change).await? {
            // The stack already sets this image: follow (or start) the service's deployment of it.
            Plan::NoChanges => return self.service.deploy(image).await,
            Plan::Ready(plan) => plan,
        };
        self.stack.apply(&plan).await?;
        // The update registers a revision with the image and points the service at it: wait for that.
        let plan_ref = &plan;
        Wait::new(&self.poll, format!("stack {} to reach the service", self.stack_name), self.deadline)
            .until(|| async move {
                let revisions = self.service.revisions().await?;
                if revisions.current.as_ref().is_some_and(|c| &c.image == image) {
                    return Ok(Check::Ready(()));
                }
                let status = self.stack.status(plan_ref).await?;
                if let Some(reason) = Self::failed(plan_ref, &status) {
                    return Err(Error::StageFailed { stage: Stage::Rollout, reason });
                }
                if status == StackStatus::Complete {
                    return Err(Error::StageFailed {
                        stage: Stage::Rollout,
                        reason: format!(
                            "stack {} updated without changing the service's image: is {} the image parameter?",
                            self.stack_name, self.image_parameter
                        ),
                    });
                }
                Ok(Check::Pending)
            })
            .await?;
        let rollout = self.service.deploy(image).await?;
        self.plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(rollout.deployment_id.to_string(), plan);
        Ok(rollout)
    }

    async fn status(&self, rollout: &Rollout) -> Result<RolloutStatus> {
        let service = self.service.status(rollout).await?;
        let plan = self
            .plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(rollout.deployment_id.as_str())
            .cloned();
        let Some(plan) = plan else { return Ok(service) };
        let stack = self.stack.status(&plan).await?;
        if let Some(reason) = Self::failed(&plan, &stack) {
            return Ok(RolloutStatus::Failed { reason, rolled_back: true, failed: 0 });
        }
        // Done only once the stack update is done as well.
        Ok(match (service, stack) {
            (RolloutStatus::Completed { running, desired }, StackStatus::InProgress { .. }) => {
                RolloutStatus::InProgress { running, desired, failed: 0 }
            }
            (service, _) => service,
        })
    }

    async fn revisions(&self) -> Result<ServiceRevisions> {
        self.service.revisions().await
    }

    async fn rollback(&self, to: &RollbackTarget) -> Result<Rollout> {
        let revisions = self.service.revisions().await?;
        let target = match to {
            RollbackTarget::LastGood => revisions.last_good,
            RollbackTarget::Revision(name) => {
                [revisions.current, revisions.last_good].into_iter().flatten().find(|r| &r.revision == name)
            }
        };
        let target = target.ok_or_else(|| Error::NotFound {
            kind: "revision known to the service (current or last good)",
            id: format!("{to:?}").into(),
        })?;
        self.deploy(&target.image).await
    }
}
