//! [`ManagedDeployer`] on an ECS service whose own deployment strategy (`BLUE_GREEN`, `LINEAR`,
//! `CANARY`) shifts the traffic: pinned to the service deployment its `UpdateService` created.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_ecs::types::{
    DeploymentConfiguration, DeploymentLifecycleHook, DeploymentLifecycleHookAction, DeploymentLifecycleHookStage,
    DeploymentLifecycleHookStatus, DeploymentLifecycleHookTargetType, DeploymentLifecycleHookTimeoutConfiguration,
    DeploymentStrategy, ServiceDeployment, ServiceDeploymentStatus, StopServiceDeploymentStopType,
};

use super::AwsConfig;
use super::ecs::{EcsDeployer, same_revision, short};
use super::error::from_sdk;
use crate::deployer::{
    DeployedRevision, Deployer, HookAction, LifecycleStage, ManagedDeployer, ManagedState, ManagedStatus, PausedHook,
    RollbackTarget, RolloutStatus, ServiceRevision, ServiceRevisions,
};
use crate::error::{Error, Result};
use crate::model::{EnvironmentName, Id, ImageRef, Rollout};

/// The metric slots of a deployment's new and old revisions.
type Slots = (Option<EnvironmentName>, Option<EnvironmentName>);

/// `DescribeServiceRevisions` takes at most this many ARNs.
const REVISIONS_PER_CALL: usize = 20;

/// One ECS service deployed with the service's own traffic shifting, as a [`ManagedDeployer`].
///
/// - [`deploy`](Deployer::deploy): `DescribeServices` (the service's `deploymentConfiguration.strategy`
///   must be `BLUE_GREEN`, `LINEAR` or `CANARY`, else [`Error::InvalidConfig`]),
///   `DescribeTaskDefinition`, `RegisterTaskDefinition` (the current revision with the image replaced)
///   and `UpdateService`; the rollout is pinned to the service deployment ARN `UpdateService` answers
///   (`currentServiceDeployment`). A retry after a lost answer finds that deployment (the service's
///   current deployment, in progress, of the same image) rather than start another.
/// - [`progress`](ManagedDeployer::progress) and [`status`](Deployer::status): one
///   `DescribeServiceDeployments` of the pinned ARN: state, lifecycle stage, the `PAUSE` hook
///   `AWAITING_ACTION`, the target revision's requested production traffic weight.
///   `ROLLBACK_SUCCESSFUL`, `ROLLBACK_FAILED` and `STOPPED` are failures.
/// - The metric slots (the target groups' names for the analysis) come from the target groups named
///   with [`target_group`](Self::target_group): the first time a deployment is described, one
///   `DescribeServiceRevisions` of its target and source revisions reads each one's load balancer
///   target group (the alternate target group of the new revision when both name the production one).
/// - [`decide`](ManagedDeployer::decide): `ContinueServiceDeployment`; [`stop`](ManagedDeployer::stop):
///   `DescribeServiceDeployments`, then `StopServiceDeployment` (`ROLLBACK`) unless it has ended.
/// - [`history`](ManagedDeployer::history): `ListServiceDeployments` (pages of 100) and
///   `DescribeServiceRevisions` (20 ARNs a call); [`roll_back_to`](ManagedDeployer::roll_back_to):
///   `DescribeServiceRevisions` and `UpdateService` to its task definition.
#[derive(Debug)]
pub struct EcsManagedDeployer {
    ecs: EcsDeployer,
    target_groups: BTreeMap<String, EnvironmentName>,
    /// Slots read per deployment ARN.
    slots: Mutex<BTreeMap<String, Slots>>,
    /// The PAUSE hook set on the service at each deployment: its stages and timeout in minutes.
    pause: Option<(Vec<LifecycleStage>, i32)>,
}

impl EcsManagedDeployer {
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
        Ok(EcsManagedDeployer {
            ecs: EcsDeployer::from_client(client, cluster, service)?,
            target_groups: BTreeMap::new(),
            slots: Mutex::new(BTreeMap::new()),
            pause: None,
        })
    }

    /// The stages the pipeline decides: `POST_TEST_TRAFFIC_SHIFT` (the test listener),
    /// `PRE_PRODUCTION_TRAFFIC_SHIFT` (each production step's analysis) and
    /// `POST_PRODUCTION_TRAFFIC_SHIFT` (the production URL).
    pub const PIPELINE_HOOKS: [LifecycleStage; 3] = [
        LifecycleStage::PostTestTrafficShift,
        LifecycleStage::PreProductionTrafficShift,
        LifecycleStage::PostProductionTrafficShift,
    ];

    /// Sets a `PAUSE` hook at `stages` on the service with each deployment (in the `UpdateService`
    /// that starts it; the service's other hooks are kept): CloudFormation cannot declare one. A hook
    /// no one decides within `timeout` rolls the deployment back (ECS's timeout action `ROLLBACK`), so
    /// a pipeline that died leaves the old revision serving. Without this, the pipeline decides the
    /// `PAUSE` hooks the service already has.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for no stage, a stage ECS takes no `PAUSE` hook at
    /// (`TEST_TRAFFIC_SHIFT`, `PRODUCTION_TRAFFIC_SHIFT`, `SCALE_UP`, `BAKE_TIME`, `CLEAN_UP`), or a
    /// timeout that is not 1 to 1,440 whole minutes.
    pub fn pause_hooks(mut self, stages: &[LifecycleStage], timeout: std::time::Duration) -> Result<Self> {
        let hookable = |s: &LifecycleStage| {
            matches!(
                s,
                LifecycleStage::ReconcileService
                    | LifecycleStage::PreScaleUp
                    | LifecycleStage::PostScaleUp
                    | LifecycleStage::PostTestTrafficShift
                    | LifecycleStage::PreProductionTrafficShift
                    | LifecycleStage::PostProductionTrafficShift
            )
        };
        if stages.is_empty() {
            return Err(Error::InvalidConfig("PAUSE hooks: no stage given".into()));
        }
        if let Some(bad) = stages.iter().find(|s| !hookable(s)) {
            return Err(Error::InvalidConfig(format!("ECS takes no PAUSE hook at {bad}")));
        }
        let minutes = timeout.as_secs() / 60;
        if !timeout.as_secs().is_multiple_of(60) || timeout.subsec_nanos() != 0 || !(1..=1440).contains(&minutes) {
            return Err(Error::InvalidConfig(format!(
                "PAUSE hook timeout {timeout:?} is not 1 to 1,440 whole minutes"
            )));
        }
        self.pause = Some((stages.to_vec(), i32::try_from(minutes).unwrap_or(1440)));
        Ok(self)
    }

    /// The service's deployment configuration with this deployer's PAUSE hook in place of its
    /// PAUSE hooks, if it sets one.
    fn with_pause_hook(&self, current: Option<&DeploymentConfiguration>) -> Option<DeploymentConfiguration> {
        let (stages, minutes) = self.pause.as_ref()?;
        let mut cfg = current.cloned().unwrap_or_else(|| DeploymentConfiguration::builder().build());
        let mut hooks: Vec<DeploymentLifecycleHook> = cfg
            .lifecycle_hooks()
            .iter()
            .filter(|h| h.target_type() != Some(&DeploymentLifecycleHookTargetType::Pause))
            .cloned()
            .collect();
        hooks.push(
            DeploymentLifecycleHook::builder()
                .target_type(DeploymentLifecycleHookTargetType::Pause)
                .set_lifecycle_stages(Some(
                    stages.iter().map(|s| DeploymentLifecycleHookStage::from(s.as_str())).collect(),
                ))
                .timeout_configuration(
                    DeploymentLifecycleHookTimeoutConfiguration::builder()
                        .timeout_in_minutes(*minutes)
                        .action(DeploymentLifecycleHookAction::Rollback)
                        .build(),
                )
                .build(),
        );
        cfg.lifecycle_hooks = Some(hooks);
        Some(cfg)
    }

    /// The container whose image is replaced (see [`EcsDeployer::container`]).
    #[must_use]
    pub fn container(mut self, name: &str) -> Self {
        self.ecs = self.ecs.container(name);
        self
    }

    /// Target group `arn` is known to the metric source as `name` (as given to
    /// [`CloudWatchMetrics`](super::CloudWatchMetrics)'s `target_group`): name both of the service's
    /// target groups for the analysis of a managed deployment.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a name that is not an environment name; [`Error::InvalidConfig`]
    /// for an empty ARN.
    pub fn target_group(mut self, name: &str, arn: &str) -> Result<Self> {
        if arn.is_empty() {
            return Err(Error::InvalidConfig(format!("target group {name}: empty ARN")));
        }
        self.target_groups.insert(arn.to_owned(), EnvironmentName::parse(name)?);
        Ok(self)
    }

    fn client(&self) -> &aws_sdk_ecs::Client {
        &self.ecs.client
    }

    async fn describe(&self, arn: &str) -> Result<ServiceDeployment> {
        let out = self
            .client()
            .describe_service_deployments()
            .service_deployment_arns(arn)
            .send()
            .await
            .map_err(|e| from_sdk("ecs:DescribeServiceDeployments", e))?;
        out.service_deployments()
            .iter()
            .find(|d| d.service_deployment_arn() == Some(arn))
            .cloned()
            .ok_or_else(|| Error::NotFound { kind: "ECS service deployment", id: arn.to_owned().into() })
    }

    async fn describe_revisions(&self, arns: &[String]) -> Result<Vec<aws_sdk_ecs::types::ServiceRevision>> {
        let mut out = vec![];
        for chunk in arns.chunks(REVISIONS_PER_CALL) {
            let page = self
                .client()
                .describe_service_revisions()
                .set_service_revision_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| from_sdk("ecs:DescribeServiceRevisions", e))?;
            out.extend(page.service_revisions().iter().cloned());
        }
        Ok(out)
    }

    /// The metric slots of deployment `d`'s target and source revisions, read once.
    async fn slots(&self, d: &ServiceDeployment) -> Result<Slots> {
        let arn = d.service_deployment_arn().unwrap_or_default().to_owned();
        if self.target_groups.is_empty() {
            return Ok((None, None));
        }
        if let Some(known) = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&arn) {
            return Ok(known.clone());
        }
        let target = d.target_service_revision().and_then(|r| r.arn()).map(str::to_owned);
        let source = d.source_service_revisions().first().and_then(|r| r.arn()).map(str::to_owned);
        let arns: Vec<String> = target.iter().chain(source.iter()).cloned().collect();
        let revisions = self.describe_revisions(&arns).await?;
        let lb = |arn: &Option<String>| {
            revisions
                .iter()
                .find(|r| r.service_revision_arn() == arn.as_deref())
                .and_then(|r| r.load_balancers().first().cloned())
        };
        let (target_lb, source_lb) = (lb(&target), lb(&source));
        let source_tg = source_lb.as_ref().and_then(|l| l.target_group_arn()).map(str::to_owned);
        let target_tg = target_lb.as_ref().and_then(|l| {
            let tg = l.target_group_arn().map(str::to_owned);
            if tg.is_some() && tg == source_tg {
                // Both name the production target group: the new revision is on the alternate one.
                l.advanced_configuration().and_then(|a| a.alternate_target_group_arn()).map(str::to_owned)
            } else {
                tg
            }
        });
        let name = |tg: Option<String>| tg.and_then(|tg| self.target_groups.get(&tg).cloned());
        let slots = (name(target_tg), name(source_tg));
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(arn, slots.clone());
        Ok(slots)
    }

    /// Points the service at `task_definition`; the service deployment it created.
    async fn update_to(
        &self,
        task_definition: &str,
        image: ImageRef,
        configuration: Option<DeploymentConfiguration>,
    ) -> Result<Rollout> {
        let out = self
            .client()
            .update_service()
            .cluster(&self.ecs.cluster)
            .service(&self.ecs.service)
            .task_definition(task_definition)
            .set_deployment_configuration(configuration)
            .send()
            .await
            .map_err(|e| from_sdk("ecs:UpdateService", e))?;
        let arn = out.service().and_then(|s| s.current_service_deployment()).ok_or_else(|| {
            Error::Backend(
                format!(
                    "ecs: UpdateService of {}/{} answered no current service deployment",
                    self.ecs.cluster, self.ecs.service
                )
                .into(),
            )
        })?;
        Ok(Rollout { deployment_id: Id::parse(arn)?, image })
    }

    /// The service's current deployment, if it is under way and rolls out `task_definition`: what a
    /// retry after a lost answer pins.
    async fn under_way(&self, service: &aws_sdk_ecs::types::Service, task_definition: &str) -> Result<Option<String>> {
        let Some(current) = service.current_service_deployment() else { return Ok(None) };
        let primary_runs_it = service.deployments().iter().any(|d| {
            d.status() == Some("PRIMARY") && d.task_definition().is_some_and(|t| same_revision(t, task_definition))
        });
        if !primary_runs_it {
            return Ok(None);
        }
        let d = self.describe(current).await?;
        let state = ManagedState::parse(d.status().map(ServiceDeploymentStatus::as_str).unwrap_or_default());
        Ok((matches!(state, ManagedState::Pending | ManagedState::InProgress)).then(|| current.to_owned()))
    }

    /// The service's deployments, newest first, as ECS lists them (every page).
    async fn deployments(
        &self,
        status: Option<ServiceDeploymentStatus>,
    ) -> Result<Vec<aws_sdk_ecs::types::ServiceDeploymentBrief>> {
        let mut out = vec![];
        let mut token = None;
        loop {
            let page = self
                .client()
                .list_service_deployments()
                .cluster(&self.ecs.cluster)
                .service(&self.ecs.service)
                .set_status(status.clone().map(|s| vec![s]))
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| from_sdk("ecs:ListServiceDeployments", e))?;
            out.extend(page.service_deployments().iter().cloned());
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| b.created_at().map(|t| t.as_nanos()).cmp(&a.created_at().map(|t| t.as_nanos())));
        Ok(out)
    }

    fn image_of_revision(r: &aws_sdk_ecs::types::ServiceRevision) -> Option<ImageRef> {
        r.container_images().first().and_then(|c| c.image()).and_then(|i| ImageRef::parse(i).ok())
    }
}

fn state_of(d: &ServiceDeployment) -> ManagedState {
    ManagedState::parse(d.status().map(ServiceDeploymentStatus::as_str).unwrap_or("PENDING"))
}

fn timestamp(t: &aws_smithy_types::DateTime) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_second(t.secs()).ok()
}

#[async_trait]
impl Deployer for EcsManagedDeployer {
    async fn deploy(&self, image: &ImageRef) -> Result<Rollout> {
        let service = self.ecs.service().await?;
        let strategy = service.deployment_configuration().and_then(|c| c.strategy());
        if !matches!(
            strategy,
            Some(DeploymentStrategy::BlueGreen | DeploymentStrategy::Linear | DeploymentStrategy::Canary)
        ) {
            return Err(Error::InvalidConfig(format!(
                "ECS service {}/{} deploys with strategy {}: ECS-managed traffic needs BLUE_GREEN, LINEAR or CANARY",
                self.ecs.cluster,
                self.ecs.service,
                strategy.map_or("ROLLING (the default)", |s| s.as_str())
            )));
        }
        let current = service.task_definition().unwrap_or_default().to_owned();
        let td = self.ecs.task_definition(&current).await?;
        if &self.ecs.image_of(&td)? == image
            && let Some(arn) = self.under_way(&service, &current).await?
        {
            return Ok(Rollout { deployment_id: Id::parse(arn)?, image: image.clone() });
        }
        let registered = self.ecs.register_with_image(&td, image, None).await?;
        let configuration = self.with_pause_hook(service.deployment_configuration());
        self.update_to(&registered, image.clone(), configuration).await
    }

    async fn status(&self, rollout: &Rollout) -> Result<RolloutStatus> {
        let d = self.describe(rollout.deployment_id.as_str()).await?;
        let count = |n: i32| u32::try_from(n).unwrap_or(0);
        let target = d.target_service_revision();
        let (running, desired) =
            target.map_or((0, 0), |t| (count(t.running_task_count()), count(t.requested_task_count())));
        let state = state_of(&d);
        let reason = || format!("{state}{}", d.status_reason().map(|r| format!(": {r}")).unwrap_or_default());
        Ok(match state {
            ManagedState::Successful => RolloutStatus::Completed { running, desired },
            ManagedState::RollbackSuccessful | ManagedState::Stopped => {
                RolloutStatus::Failed { reason: reason(), rolled_back: true, failed: 0 }
            }
            ManagedState::RollbackFailed => RolloutStatus::Failed { reason: reason(), rolled_back: false, failed: 0 },
            _ => RolloutStatus::InProgress { running, desired, failed: 0 },
        })
    }

    async fn revisions(&self) -> Result<ServiceRevisions> {
        let service = self.ecs.service().await?;
        let Some(current_td) = service.task_definition().map(str::to_owned) else {
            return Ok(ServiceRevisions::default());
        };
        let current = DeployedRevision {
            revision: short(&current_td),
            image: self.ecs.image_of(&self.ecs.task_definition(&current_td).await?)?,
        };
        // The newest successful deployment of another task definition.
        let successful = self.deployments(Some(ServiceDeploymentStatus::Successful)).await?;
        let arns: Vec<String> =
            successful.iter().filter_map(|d| d.target_service_revision_arn().map(str::to_owned)).collect();
        let revisions = self.describe_revisions(&arns).await?;
        let last_good = arns
            .iter()
            .filter_map(|arn| revisions.iter().find(|r| r.service_revision_arn() == Some(arn.as_str())))
            .find(|r| r.task_definition().is_some_and(|t| !same_revision(t, &current_td)))
            .and_then(|r| {
                Some(DeployedRevision { revision: short(r.task_definition()?), image: Self::image_of_revision(r)? })
            });
        Ok(ServiceRevisions { current: Some(current), last_good })
    }

    async fn rollback(&self, to: &RollbackTarget) -> Result<Rollout> {
        let name =
            match to {
                RollbackTarget::Revision(name) if name.contains(":service-revision/") => {
                    return self.roll_back_to(name).await;
                }
                RollbackTarget::Revision(name) => name.clone(),
                RollbackTarget::LastGood => self.revisions().await?.last_good.map(|r| r.revision).ok_or_else(|| {
                    Error::NotFound { kind: "last good revision", id: self.ecs.service.clone().into() }
                })?,
            };
        let td = self.ecs.task_definition(&name).await?;
        let image = self.ecs.image_of(&td)?;
        let arn = td.task_definition_arn().unwrap_or(&name).to_owned();
        let service = self.ecs.service().await?;
        if let Some(under_way) = self.under_way(&service, &arn).await? {
            return Ok(Rollout { deployment_id: Id::parse(under_way)?, image });
        }
        self.update_to(&arn, image, None).await
    }
}

#[async_trait]
impl ManagedDeployer for EcsManagedDeployer {
    async fn progress(&self, rollout: &Rollout) -> Result<ManagedStatus> {
        let d = self.describe(rollout.deployment_id.as_str()).await?;
        let stage = d.lifecycle_stage().map(|s| LifecycleStage::parse(s.as_str()));
        let paused = d
            .lifecycle_hook_details()
            .iter()
            .find(|h| {
                h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction)
                    && h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause)
            })
            .and_then(|h| {
                let mut hook =
                    PausedHook::new(h.hook_id()?, stage.clone().unwrap_or(LifecycleStage::Other("UNKNOWN".into())));
                hook.expires_at = h.expires_at().and_then(timestamp);
                hook.timeout_action = h.timeout_action().map(|a| match a {
                    DeploymentLifecycleHookAction::Continue => HookAction::Continue,
                    _ => HookAction::Rollback,
                });
                Some(hook)
            });
        let mut status = ManagedStatus::new(state_of(&d));
        status.stage = stage;
        status.paused = paused;
        status.reason = d.status_reason().map(str::to_owned).or_else(|| {
            let triggered = d.alarms().map(|a| a.triggered_alarm_names().join(", ")).filter(|n| !n.is_empty())?;
            Some(format!("alarms in ALARM: {triggered}"))
        });
        status.production_percent = d.target_service_revision().and_then(|t| t.requested_production_traffic_weight());
        status.target_revision = d.target_service_revision().and_then(|t| t.arn()).map(str::to_owned);
        status.source_revisions =
            d.source_service_revisions().iter().filter_map(|r| r.arn()).map(str::to_owned).collect();
        let (target_slot, source_slot) = self.slots(&d).await?;
        status.target_slot = target_slot;
        status.source_slot = source_slot;
        Ok(status)
    }

    async fn decide(&self, rollout: &Rollout, hook_id: &str, action: HookAction) -> Result<()> {
        self.client()
            .continue_service_deployment()
            .service_deployment_arn(rollout.deployment_id.as_str())
            .hook_id(hook_id)
            .action(match action {
                HookAction::Continue => DeploymentLifecycleHookAction::Continue,
                HookAction::Rollback => DeploymentLifecycleHookAction::Rollback,
            })
            .send()
            .await
            .map_err(|e| from_sdk("ecs:ContinueServiceDeployment", e))?;
        Ok(())
    }

    async fn stop(&self, rollout: &Rollout) -> Result<()> {
        let d = self.describe(rollout.deployment_id.as_str()).await?;
        let state = state_of(&d);
        if state.is_final()
            || matches!(
                state,
                ManagedState::StopRequested | ManagedState::RollbackRequested | ManagedState::RollbackInProgress
            )
        {
            return Ok(());
        }
        self.client()
            .stop_service_deployment()
            .service_deployment_arn(rollout.deployment_id.as_str())
            .stop_type(StopServiceDeploymentStopType::Rollback)
            .send()
            .await
            .map_err(|e| from_sdk("ecs:StopServiceDeployment", e))?;
        Ok(())
    }

    async fn history(&self) -> Result<Vec<ServiceRevision>> {
        let deployments = self.deployments(None).await?;
        let mut arns: Vec<String> = vec![];
        for d in &deployments {
            if let Some(arn) = d.target_service_revision_arn()
                && !arns.iter().any(|a| a == arn)
            {
                arns.push(arn.to_owned());
            }
        }
        let revisions = self.describe_revisions(&arns).await?;
        Ok(arns
            .iter()
            .filter_map(|arn| revisions.iter().find(|r| r.service_revision_arn() == Some(arn.as_str())))
            .map(|r| ServiceRevision {
                arn: r.service_revision_arn().unwrap_or_default().to_owned(),
                task_definition: short(r.task_definition().unwrap_or_default()),
                image: Self::image_of_revision(r),
                created_at: r.created_at().and_then(timestamp),
            })
            .collect())
    }

    async fn roll_back_to(&self, arn: &str) -> Result<Rollout> {
        let revision = self
            .describe_revisions(&[arn.to_owned()])
            .await?
            .into_iter()
            .find(|r| r.service_revision_arn() == Some(arn))
            .ok_or_else(|| Error::NotFound { kind: "ECS service revision", id: arn.to_owned().into() })?;
        let td_arn = revision
            .task_definition()
            .ok_or_else(|| Error::Backend(format!("ecs: service revision {arn} names no task definition").into()))?
            .to_owned();
        let image = match Self::image_of_revision(&revision) {
            Some(image) => image,
            None => self.ecs.image_of(&self.ecs.task_definition(&td_arn).await?)?,
        };
        let service = self.ecs.service().await?;
        if let Some(under_way) = self.under_way(&service, &td_arn).await? {
            return Ok(Rollout { deployment_id: Id::parse(under_way)?, image });
        }
        self.update_to(&td_arn, image, None).await
    }
}
