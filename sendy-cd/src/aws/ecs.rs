//! [`Deployer`] on an ECS service, pinned to the deployment its own `UpdateService` created.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_ecs::types::{ContainerDefinition, Deployment, DeploymentRolloutState, Tag, TaskDefinition};

use super::AwsConfig;
use super::error::from_sdk;
use crate::deployer::{DeployedRevision, Deployer, RollbackTarget, RolloutStatus, ServiceRevisions};
use crate::error::{Error, Result};
use crate::model::{Id, ImageRef, Rollout};

/// The tag, on a task definition revision registered by the deployer, naming the revision that ran
/// (its rollout completed) when this one was deployed: the last good revision before it.
const PREVIOUS_GOOD: &str = "sendy-cd:previous-good";

/// One ECS service, rolled out by registering a task definition revision with the new image and
/// updating the service, as a [`Deployer`].
///
/// - [`deploy`](Deployer::deploy) costs four requests: `DescribeServices`, `DescribeTaskDefinition`,
///   `RegisterTaskDefinition` (a copy of the current revision with the image of the named container
///   replaced) and `UpdateService`; it pins the PRIMARY deployment that `UpdateService` created. When the
///   service's newest deployment already runs exactly that image (a stack update created it), it pins
///   that one instead and changes nothing.
/// - [`status`](Deployer::status) costs one `DescribeServices` (never `ListTasks`/`DescribeTasks`) and
///   reads the pinned deployment's `rolloutState`: a circuit-breaker rollback is
///   [`RolloutStatus::Failed`] with `rolled_back`, a newer deployment taking over is
///   [`RolloutStatus::Superseded`].
/// - A deployment ECS no longer lists is reported as this deployer last saw it end; one it never saw
///   is [`Error::NotFound`].
/// - The revision it registers carries the tag `sendy-cd:previous-good`, naming the revision the
///   service ran when it was deployed, if that revision's rollout had completed: this is where
///   [`revisions`](Deployer::revisions) finds the last good revision, at no extra request per
///   rollout. No task definition is ever deregistered.
#[derive(Debug)]
pub struct EcsDeployer {
    pub(super) client: aws_sdk_ecs::Client,
    pub(super) cluster: String,
    pub(super) service: String,
    container: Option<String>,
    /// Final statuses seen, for deployments ECS no longer lists.
    seen: Mutex<HashMap<String, RolloutStatus>>,
}

fn name_ok(s: &str) -> bool {
    (1..=255).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_:/.".contains(c))
}

/// Whether task definition `arn_or_name` is `wanted` (an ARN, or `family:revision`).
pub(super) fn same_revision(arn_or_name: &str, wanted: &str) -> bool {
    arn_or_name == wanted
        || arn_or_name.rsplit('/').next() == Some(wanted)
        || wanted.rsplit('/').next() == Some(arn_or_name)
}

/// `arn:...:task-definition/family:3` → `family:3`.
pub(super) fn short(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_owned()
}

impl EcsDeployer {
    /// The deployer of service `service` in cluster `cluster`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a malformed cluster or service name.
    pub fn new(config: &AwsConfig, cluster: &str, service: &str) -> Result<Self> {
        Self::from_client(aws_sdk_ecs::Client::new(config.sdk_config()), cluster, service)
    }

    /// As [`new`](Self::new), with a client of your own.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_client(client: aws_sdk_ecs::Client, cluster: &str, service: &str) -> Result<Self> {
        if !name_ok(cluster) || !name_ok(service) {
            return Err(Error::InvalidConfig(format!(
                "ECS cluster {:?} or service {:?} is malformed",
                crate::error::truncate(cluster),
                crate::error::truncate(service)
            )));
        }
        Ok(EcsDeployer {
            client,
            cluster: cluster.to_owned(),
            service: service.to_owned(),
            container: None,
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// The container whose image is replaced. Default: the task definition's only container (a task
    /// definition with several containers needs this).
    #[must_use]
    pub fn container(mut self, name: &str) -> Self {
        self.container = Some(name.to_owned());
        self
    }

    pub(super) async fn service(&self) -> Result<aws_sdk_ecs::types::Service> {
        let out = self
            .client
            .describe_services()
            .cluster(&self.cluster)
            .services(&self.service)
            .send()
            .await
            .map_err(|e| from_sdk("ecs:DescribeServices", e))?;
        out.services().first().cloned().ok_or_else(|| Error::NotFound {
            kind: "ECS service",
            id: format!("{}/{}", self.cluster, self.service).into(),
        })
    }

    pub(super) async fn task_definition(&self, arn: &str) -> Result<TaskDefinition> {
        let out = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|e| from_sdk("ecs:DescribeTaskDefinition", e))?;
        out.task_definition()
            .cloned()
            .ok_or_else(|| Error::NotFound { kind: "task definition", id: arn.to_owned().into() })
    }

    /// The container to update in `td`, by name or as the only one.
    fn target_container<'a>(&self, td: &'a TaskDefinition) -> Result<&'a ContainerDefinition> {
        let containers = td.container_definitions();
        match &self.container {
            Some(name) => containers.iter().find(|c| c.name() == Some(name.as_str())).ok_or_else(|| {
                Error::InvalidConfig(format!("task definition {:?} has no container {name:?}", td.family()))
            }),
            None if containers.len() == 1 => Ok(&containers[0]),
            None => Err(Error::InvalidConfig(format!(
                "task definition {:?} has {} containers: name the one to update with EcsDeployer::container",
                td.family(),
                containers.len()
            ))),
        }
    }

    pub(super) fn image_of(&self, td: &TaskDefinition) -> Result<ImageRef> {
        Ok(ImageRef::parse(self.target_container(td)?.image().unwrap_or_default())?)
    }

    /// Registers a copy of `td` with the target container's image replaced, tagged with the last good
    /// revision if known; returns the new ARN.
    pub(super) async fn register_with_image(
        &self,
        td: &TaskDefinition,
        image: &ImageRef,
        good: Option<&str>,
    ) -> Result<String> {
        let target = self.target_container(td)?.name().map(str::to_owned);
        let containers: Vec<ContainerDefinition> = td
            .container_definitions()
            .iter()
            .map(|c| {
                if c.name().map(str::to_owned) == target {
                    let mut c = c.clone();
                    c.image = Some(image.to_string());
                    c
                } else {
                    c.clone()
                }
            })
            .collect();
        let out = self
            .client
            .register_task_definition()
            .family(td.family().unwrap_or_default())
            .set_task_role_arn(td.task_role_arn().map(str::to_owned))
            .set_execution_role_arn(td.execution_role_arn().map(str::to_owned))
            .set_network_mode(td.network_mode().cloned())
            .set_container_definitions(Some(containers))
            .set_volumes(Some(td.volumes().to_vec()))
            .set_placement_constraints(Some(td.placement_constraints().to_vec()))
            .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()))
            .set_cpu(td.cpu().map(str::to_owned))
            .set_memory(td.memory().map(str::to_owned))
            .set_pid_mode(td.pid_mode().cloned())
            .set_ipc_mode(td.ipc_mode().cloned())
            .set_proxy_configuration(td.proxy_configuration().cloned())
            .set_ephemeral_storage(td.ephemeral_storage().cloned())
            .set_runtime_platform(td.runtime_platform().cloned())
            .set_tags(good.map(|g| vec![Tag::builder().key(PREVIOUS_GOOD).value(g).build()]))
            .send()
            .await
            .map_err(|e| from_sdk("ecs:RegisterTaskDefinition", e))?;
        out.task_definition()
            .and_then(|t| t.task_definition_arn())
            .map(str::to_owned)
            .ok_or_else(|| Error::Backend("ecs: RegisterTaskDefinition returned no ARN".into()))
    }

    /// Points the service at `task_definition` and pins the deployment that created.
    async fn roll_to(&self, task_definition: &str, image: ImageRef) -> Result<Rollout> {
        let out = self
            .client
            .update_service()
            .cluster(&self.cluster)
            .service(&self.service)
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| from_sdk("ecs:UpdateService", e))?;
        let service = out.service().ok_or_else(|| Error::Backend("ecs: UpdateService returned no service".into()))?;
        let created = service.deployments().iter().find(|d| {
            d.status() == Some("PRIMARY") && d.task_definition().is_some_and(|t| same_revision(t, task_definition))
        });
        let id = created.and_then(Deployment::id).ok_or_else(|| {
            Error::Backend(
                (format!(
                    "ecs: UpdateService of {}/{} created no PRIMARY deployment of {task_definition}",
                    self.cluster, self.service
                ))
                .into(),
            )
        })?;
        Ok(Rollout { deployment_id: Id::parse(id)?, image })
    }

    fn remember(&self, id: &str, status: &RolloutStatus) {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id.to_owned(), status.clone());
    }
}

#[async_trait]
impl Deployer for EcsDeployer {
    async fn deploy(&self, image: &ImageRef) -> Result<Rollout> {
        let service = self.service().await?;
        let current = service.task_definition().unwrap_or_default().to_owned();
        let td = self.task_definition(&current).await?;
        if &self.image_of(&td)? == image {
            // A stack update already rolls this image out: pin its deployment rather than start another.
            let primary = service.deployments().iter().find(|d| {
                d.status() == Some("PRIMARY") && d.task_definition().is_some_and(|t| same_revision(t, &current))
            });
            if let Some(id) = primary.and_then(Deployment::id) {
                return Ok(Rollout { deployment_id: Id::parse(id)?, image: image.clone() });
            }
        }
        // The revision running now is good if its rollout completed: record it on the new revision.
        let good = service
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY") && d.rollout_state() == Some(&DeploymentRolloutState::Completed))
            .and_then(Deployment::task_definition);
        let registered = self.register_with_image(&td, image, good).await?;
        self.roll_to(&registered, image.clone()).await
    }

    async fn status(&self, rollout: &Rollout) -> Result<RolloutStatus> {
        let id = rollout.deployment_id.as_str();
        let service = self.service().await?;
        let primary = service.deployments().iter().find(|d| d.status() == Some("PRIMARY"));
        let Some(ours) = service.deployments().iter().find(|d| d.id() == Some(id)) else {
            // ECS lists a deployment until it is drained; a superseded one is still listed (ACTIVE) while
            // its replacement rolls out, and is seen as such then.
            if let Some(seen) = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id) {
                return Ok(seen.clone());
            }
            return Err(Error::NotFound {
                kind: "ECS deployment (not listed, and never seen to end)",
                id: id.to_owned().into(),
            });
        };
        let count = |n: i32| u32::try_from(n).unwrap_or(0);
        let (running, desired, failed) =
            (count(ours.running_count()), count(ours.desired_count()), count(ours.failed_tasks()));
        let newer = primary.filter(|p| p.id() != Some(id)).and_then(Deployment::id);
        let status = match ours.rollout_state() {
            Some(DeploymentRolloutState::Completed) => RolloutStatus::Completed { running, desired },
            Some(DeploymentRolloutState::Failed) => RolloutStatus::Failed {
                reason: ours.rollout_state_reason().unwrap_or("the deployment failed").to_owned(),
                // The circuit breaker's rollback is a newer PRIMARY deployment of the previous revision.
                rolled_back: newer.is_some(),
                failed,
            },
            _ => match newer {
                Some(by) => RolloutStatus::Superseded { by: Id::parse(by)? },
                None => RolloutStatus::InProgress { running, desired, failed },
            },
        };
        if status.is_final() {
            self.remember(id, &status);
        }
        Ok(status)
    }

    async fn revisions(&self) -> Result<ServiceRevisions> {
        let service = self.service().await?;
        let current_td = service
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
            .and_then(Deployment::task_definition)
            .or(service.task_definition())
            .map(str::to_owned);
        let Some(current_td) = current_td else { return Ok(ServiceRevisions::default()) };
        let out = self
            .client
            .describe_task_definition()
            .task_definition(&current_td)
            .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| from_sdk("ecs:DescribeTaskDefinition", e))?;
        let td = out
            .task_definition()
            .ok_or_else(|| Error::NotFound { kind: "task definition", id: current_td.clone().into() })?;
        let current = Some(DeployedRevision { revision: short(&current_td), image: self.image_of(td)? });
        let good = out.tags().iter().find(|t| t.key() == Some(PREVIOUS_GOOD)).and_then(Tag::value);
        let last_good = match good {
            Some(arn) => Some(DeployedRevision {
                revision: short(arn),
                image: self.image_of(&self.task_definition(arn).await?)?,
            }),
            None => None,
        };
        Ok(ServiceRevisions { current, last_good })
    }

    async fn rollback(&self, to: &RollbackTarget) -> Result<Rollout> {
        let target = match to {
            RollbackTarget::Revision(name) => name.clone(),
            RollbackTarget::LastGood => self
                .revisions()
                .await?
                .last_good
                .map(|r| r.revision)
                .ok_or_else(|| Error::NotFound { kind: "last good revision", id: self.service.clone().into() })?,
        };
        let td = self.task_definition(&target).await?;
        let image = self.image_of(&td)?;
        let arn = td.task_definition_arn().unwrap_or(&target).to_owned();
        // A rollback to that revision already under way (a retry after a lost answer): pin it.
        let service = self.service().await?;
        let under_way = service.deployments().iter().find(|d| {
            d.status() == Some("PRIMARY")
                && d.task_definition().is_some_and(|t| same_revision(t, &arn))
                && d.rollout_state() != Some(&DeploymentRolloutState::Failed)
        });
        if let Some(id) = under_way.and_then(Deployment::id) {
            return Ok(Rollout { deployment_id: Id::parse(id)?, image });
        }
        self.roll_to(&arn, image).await
    }
}
