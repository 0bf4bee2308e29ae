//! `EcsManagedDeployer` with aws-smithy-mocks: every service deployment status and lifecycle stage,
//! paused hooks, a hook's timeout, an alarm rollback, a stop, the revision history; and a whole
//! pipeline deciding each hook of a scripted ECS deployment.
//!
//! Not against the emulator: moto 5.2.1 has no `DescribeServiceDeployments`,
//! `ContinueServiceDeployment`, `StopServiceDeployment`, `ListServiceDeployments` or
//! `DescribeServiceRevisions` (`../shared/AWS-EMULATOR.md`), and its `UpdateService` answers no
//! `currentServiceDeployment`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_ecs::Client;
use aws_sdk_ecs::operation::continue_service_deployment::ContinueServiceDeploymentOutput;
use aws_sdk_ecs::operation::describe_service_deployments::DescribeServiceDeploymentsOutput;
use aws_sdk_ecs::operation::describe_service_revisions::DescribeServiceRevisionsOutput;
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
use aws_sdk_ecs::operation::list_service_deployments::ListServiceDeploymentsOutput;
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionOutput;
use aws_sdk_ecs::operation::stop_service_deployment::StopServiceDeploymentOutput;
use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
use aws_sdk_ecs::types::{
    AdvancedConfiguration, ContainerDefinition, ContainerImage, DeploymentConfiguration, DeploymentLifecycleHookAction,
    DeploymentLifecycleHookDetail, DeploymentLifecycleHookStatus, DeploymentLifecycleHookTargetType,
    DeploymentStrategy, LoadBalancer, Service, ServiceDeployment, ServiceDeploymentAlarms, ServiceDeploymentBrief,
    ServiceDeploymentLifecycleStage, ServiceDeploymentStatus, ServiceRevision, ServiceRevisionSummary,
    StopServiceDeploymentStopType, TaskDefinition,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use sendy_cd::aws::EcsManagedDeployer;
use sendy_cd::memory::{Account, ManagedConfig};
use sendy_cd::{
    Deployer, EcsManaged, Error, HookAction, Id, ImageRef, LifecycleStage, ManagedDeployer, ManagedState, Outcome,
    Pipeline, Recovery, Rollout, RolloutStatus, Strategy,
};

const TD1: &str = "arn:aws:ecs:us-east-1:1:task-definition/shop-api:1";
const TD2: &str = "arn:aws:ecs:us-east-1:1:task-definition/shop-api:2";
const SD: &str = "arn:aws:ecs:us-east-1:1:service-deployment/shop/api/abc";
const REV1: &str = "arn:aws:ecs:us-east-1:1:service-revision/shop/api/1";
const REV2: &str = "arn:aws:ecs:us-east-1:1:service-revision/shop/api/2";
const TG_BLUE: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/shop-blue/1";
const TG_GREEN: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/shop-green/2";

fn rollout() -> Rollout {
    Rollout { deployment_id: Id::parse(SD).unwrap(), image: ImageRef::parse("shop/api:v2").unwrap() }
}

fn service(strategy: Option<DeploymentStrategy>) -> Service {
    Service::builder()
        .service_name("api")
        .task_definition(TD1)
        .set_deployment_configuration(strategy.map(|s| DeploymentConfiguration::builder().strategy(s).build()))
        .current_service_deployment(SD)
        .build()
}

fn task_definition(arn: &str, image: &str) -> TaskDefinition {
    TaskDefinition::builder()
        .task_definition_arn(arn)
        .family("shop-api")
        .container_definitions(ContainerDefinition::builder().name("api").image(image).build())
        .build()
}

/// A service deployment in `status` at `stage`, the new revision at `percent` of production traffic.
fn deployment(
    status: ServiceDeploymentStatus,
    stage: Option<ServiceDeploymentLifecycleStage>,
    percent: f64,
) -> ServiceDeployment {
    ServiceDeployment::builder()
        .service_deployment_arn(SD)
        .status(status)
        .set_lifecycle_stage(stage)
        .target_service_revision(
            ServiceRevisionSummary::builder()
                .arn(REV2)
                .requested_task_count(4)
                .running_task_count(4)
                .requested_production_traffic_weight(percent)
                .build(),
        )
        .source_service_revisions(ServiceRevisionSummary::builder().arn(REV1).requested_task_count(4).build())
        .build()
}

fn paused(d: ServiceDeployment, hook: &str) -> ServiceDeployment {
    let mut d = d;
    d.lifecycle_hook_details = Some(vec![
        DeploymentLifecycleHookDetail::builder()
            .hook_id(hook)
            .target_type(DeploymentLifecycleHookTargetType::Pause)
            .status(DeploymentLifecycleHookStatus::AwaitingAction)
            .expires_at(DateTime::from_secs(1_800_000_000))
            .timeout_action(DeploymentLifecycleHookAction::Rollback)
            .build(),
    ]);
    d
}

fn described(d: ServiceDeployment) -> DescribeServiceDeploymentsOutput {
    DescribeServiceDeploymentsOutput::builder().service_deployments(d).build()
}

fn revision(arn: &str, td: &str, image: &str, tg: &str, alternate: Option<&str>) -> ServiceRevision {
    let lb = LoadBalancer::builder()
        .target_group_arn(tg)
        .set_advanced_configuration(
            alternate.map(|a| AdvancedConfiguration::builder().alternate_target_group_arn(a).build()),
        )
        .build();
    ServiceRevision::builder()
        .service_revision_arn(arn)
        .task_definition(td)
        .container_images(ContainerImage::builder().container_name("api").image(image).build())
        .load_balancers(lb)
        .created_at(DateTime::from_secs(1_800_000_000))
        .build()
}

fn revisions_rule() -> aws_smithy_mocks::Rule {
    mock!(Client::describe_service_revisions).then_compute_output(|r| {
        let all = [
            revision(REV1, TD1, "shop/api:v1", TG_BLUE, Some(TG_GREEN)),
            // ECS names the production target group on both, the new one as the alternate.
            revision(REV2, TD2, "shop/api:v2", TG_BLUE, Some(TG_GREEN)),
        ];
        let wanted = r.service_revision_arns();
        DescribeServiceRevisionsOutput::builder()
            .set_service_revisions(Some(
                all.into_iter()
                    .filter(|x| wanted.iter().any(|w| Some(w.as_str()) == x.service_revision_arn()))
                    .collect(),
            ))
            .build()
    })
}

fn deployer(client: Client) -> EcsManagedDeployer {
    EcsManagedDeployer::from_client(client, "shop", "api")
        .unwrap()
        .target_group("shop-blue", TG_BLUE)
        .unwrap()
        .target_group("shop-green", TG_GREEN)
        .unwrap()
}

#[tokio::test]
async fn deploy_registers_the_image_and_pins_the_service_deployment_update_service_created() {
    let services = mock!(Client::describe_services)
        .then_output(|| DescribeServicesOutput::builder().services(service(Some(DeploymentStrategy::Canary))).build());
    let td = mock!(Client::describe_task_definition).then_output(|| {
        DescribeTaskDefinitionOutput::builder().task_definition(task_definition(TD1, "shop/api:v1")).build()
    });
    let register = mock!(Client::register_task_definition)
        .match_requests(|r| r.container_definitions()[0].image() == Some("shop/api:v2"))
        .then_output(|| {
            RegisterTaskDefinitionOutput::builder().task_definition(task_definition(TD2, "shop/api:v2")).build()
        });
    let update = mock!(Client::update_service)
        .match_requests(|r| r.task_definition() == Some(TD2) && r.cluster() == Some("shop"))
        .then_output(|| UpdateServiceOutput::builder().service(service(Some(DeploymentStrategy::Canary))).build());
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&services, &td, &register, &update]);
    let rollout = deployer(client).deploy(&ImageRef::parse("shop/api:v2").unwrap()).await.unwrap();
    assert_eq!(rollout.deployment_id.as_str(), SD, "pinned by the service deployment ARN");
    assert_eq!((register.num_calls(), update.num_calls()), (1, 1));

    // A service that rolls (no traffic shifting of its own) is refused before anything changes.
    let rolling = mock!(Client::describe_services)
        .then_output(|| DescribeServicesOutput::builder().services(service(None)).build());
    let register =
        mock!(Client::register_task_definition).then_output(|| RegisterTaskDefinitionOutput::builder().build());
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rolling, &register]);
    let err = deployer(client).deploy(&ImageRef::parse("shop/api:v2").unwrap()).await.unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig(m) if m.contains("ROLLING")), "{err}");
    assert_eq!(register.num_calls(), 0);
}

#[tokio::test]
async fn every_status_and_stage_is_reported_truthfully() {
    use ServiceDeploymentStatus as S;
    let cases = [
        (S::Pending, ManagedState::Pending, "in_progress"),
        (S::InProgress, ManagedState::InProgress, "in_progress"),
        (S::Successful, ManagedState::Successful, "completed"),
        (S::StopRequested, ManagedState::StopRequested, "in_progress"),
        (S::Stopped, ManagedState::Stopped, "rolled_back"),
        (S::RollbackRequested, ManagedState::RollbackRequested, "in_progress"),
        (S::RollbackInProgress, ManagedState::RollbackInProgress, "in_progress"),
        (S::RollbackSuccessful, ManagedState::RollbackSuccessful, "rolled_back"),
        (S::RollbackFailed, ManagedState::RollbackFailed, "failed"),
    ];
    for (status, state, rollout_status) in cases {
        let s = status.clone();
        let rule = mock!(Client::describe_service_deployments)
            .match_requests(|r| r.service_deployment_arns() == [SD])
            .then_output(move || described(deployment(s.clone(), None, 0.0)));
        let revs = revisions_rule();
        let d = deployer(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule, &revs]));
        assert_eq!(d.progress(&rollout()).await.unwrap().state, state);
        let got = d.status(&rollout()).await.unwrap();
        let kind = match got {
            RolloutStatus::InProgress { .. } => "in_progress",
            RolloutStatus::Completed { .. } => "completed",
            RolloutStatus::Failed { rolled_back: true, .. } => "rolled_back",
            RolloutStatus::Failed { rolled_back: false, .. } => "failed",
            other => panic!("{other:?}"),
        };
        assert_eq!(kind, rollout_status, "{status:?}");
    }
    use ServiceDeploymentLifecycleStage as L;
    let stages = [
        (L::ReconcileService, LifecycleStage::ReconcileService),
        (L::PreScaleUp, LifecycleStage::PreScaleUp),
        (L::ScaleUp, LifecycleStage::ScaleUp),
        (L::PostScaleUp, LifecycleStage::PostScaleUp),
        (L::TestTrafficShift, LifecycleStage::TestTrafficShift),
        (L::PostTestTrafficShift, LifecycleStage::PostTestTrafficShift),
        (L::from("PRE_PRODUCTION_TRAFFIC_SHIFT"), LifecycleStage::PreProductionTrafficShift),
        (L::ProductionTrafficShift, LifecycleStage::ProductionTrafficShift),
        (L::PostProductionTrafficShift, LifecycleStage::PostProductionTrafficShift),
        (L::BakeTime, LifecycleStage::BakeTime),
        (L::CleanUp, LifecycleStage::CleanUp),
    ];
    for (stage, expected) in stages {
        let s = stage.clone();
        let rule = mock!(Client::describe_service_deployments)
            .then_output(move || described(deployment(ServiceDeploymentStatus::InProgress, Some(s.clone()), 10.0)));
        let revs = revisions_rule();
        let d = deployer(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule, &revs]));
        let p = d.progress(&rollout()).await.unwrap();
        assert_eq!(p.stage, Some(expected));
        assert_eq!(p.production_percent, Some(10.0));
        assert!(p.paused.is_none());
    }
}

#[tokio::test]
async fn a_paused_hook_its_target_groups_and_the_decision_sent() {
    let rule = mock!(Client::describe_service_deployments).then_output(|| {
        described(paused(
            deployment(
                ServiceDeploymentStatus::InProgress,
                Some(ServiceDeploymentLifecycleStage::PostTestTrafficShift),
                0.0,
            ),
            "hook-1",
        ))
    });
    let revs = revisions_rule();
    let decide = mock!(Client::continue_service_deployment)
        .match_requests(|r| {
            r.service_deployment_arn() == Some(SD)
                && r.hook_id() == Some("hook-1")
                && r.action() == Some(&DeploymentLifecycleHookAction::Rollback)
        })
        .then_output(|| ContinueServiceDeploymentOutput::builder().service_deployment_arn(SD).build());
    let d = deployer(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule, &revs, &decide]));
    let p = d.progress(&rollout()).await.unwrap();
    let hook = p.paused.clone().expect("paused");
    assert_eq!((hook.id.as_str(), hook.stage.clone()), ("hook-1", LifecycleStage::PostTestTrafficShift));
    assert_eq!(hook.timeout_action, Some(HookAction::Rollback));
    assert_eq!(hook.expires_at, Some(jiff::Timestamp::from_second(1_800_000_000).unwrap()));
    assert_eq!((p.target_revision.as_deref(), p.source_revisions.clone()), (Some(REV2), vec![REV1.to_owned()]));
    // The new revision is on the alternate target group.
    assert_eq!(p.target_slot.as_ref().map(|s| s.as_str()), Some("shop-green"));
    assert_eq!(p.source_slot.as_ref().map(|s| s.as_str()), Some("shop-blue"));
    d.progress(&rollout()).await.unwrap();
    assert_eq!(revs.num_calls(), 1, "the target groups are read once per deployment");
    d.decide(&rollout(), "hook-1", HookAction::Rollback).await.unwrap();
    assert_eq!(decide.num_calls(), 1);

    // A Lambda hook running, or a PAUSE hook that timed out, waits for nothing.
    for (target, status) in [
        (DeploymentLifecycleHookTargetType::AwsLambda, DeploymentLifecycleHookStatus::InProgress),
        (DeploymentLifecycleHookTargetType::Pause, DeploymentLifecycleHookStatus::TimedOut),
    ] {
        let rule = mock!(Client::describe_service_deployments).then_output(move || {
            let mut dep = deployment(
                ServiceDeploymentStatus::InProgress,
                Some(ServiceDeploymentLifecycleStage::PostScaleUp),
                0.0,
            );
            dep.lifecycle_hook_details = Some(vec![
                DeploymentLifecycleHookDetail::builder()
                    .hook_id("h")
                    .target_type(target.clone())
                    .status(status.clone())
                    .build(),
            ]);
            described(dep)
        });
        let revs = revisions_rule();
        let d = deployer(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule, &revs]));
        assert!(d.progress(&rollout()).await.unwrap().paused.is_none());
    }
}

#[tokio::test]
async fn an_alarm_rollback_and_a_hook_timeout_say_why() {
    let alarm = mock!(Client::describe_service_deployments).then_output(|| {
        let mut d = deployment(ServiceDeploymentStatus::RollbackSuccessful, None, 0.0);
        d.alarms =
            Some(ServiceDeploymentAlarms::builder().alarm_names("shop-5xx").triggered_alarm_names("shop-5xx").build());
        described(d)
    });
    let revs = revisions_rule();
    let d = deployer(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&alarm, &revs]));
    let p = d.progress(&rollout()).await.unwrap();
    assert_eq!(p.state, ManagedState::RollbackSuccessful);
    assert!(p.reason.as_deref().is_some_and(|r| r.contains("shop-5xx")), "{p:?}");

    let timeout = mock!(Client::describe_service_deployments).then_output(|| {
        let mut d = deployment(ServiceDeploymentStatus::RollbackSuccessful, None, 0.0);
        d.status_reason = Some("Lifecycle hook hook-1 timed out; rolling back".into());
        described(d)
    });
    let d = deployer(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&timeout, &revs]));
    let RolloutStatus::Failed { reason, rolled_back, .. } = d.status(&rollout()).await.unwrap() else { panic!() };
    assert!(rolled_back && reason.contains("ROLLBACK_SUCCESSFUL") && reason.contains("timed out"), "{reason}");
}

#[tokio::test]
async fn a_stop_rolls_back_a_running_deployment_and_leaves_an_ended_one() {
    for (status, stops) in [(ServiceDeploymentStatus::InProgress, 1), (ServiceDeploymentStatus::Successful, 0)] {
        let describe = mock!(Client::describe_service_deployments)
            .then_output(move || described(deployment(status.clone(), None, 0.0)));
        let stop = mock!(Client::stop_service_deployment)
            .match_requests(|r| {
                r.service_deployment_arn() == Some(SD)
                    && r.stop_type() == Some(&StopServiceDeploymentStopType::Rollback)
            })
            .then_output(|| StopServiceDeploymentOutput::builder().service_deployment_arn(SD).build());
        let d = deployer(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&describe, &stop]));
        d.stop(&rollout()).await.unwrap();
        assert_eq!(stop.num_calls(), stops);
    }
}

#[tokio::test]
async fn the_history_lists_every_revision_and_a_rollback_deploys_any_of_them() {
    let list = mock!(Client::list_service_deployments)
        .match_requests(|r| r.cluster() == Some("shop") && r.service() == Some("api"))
        .sequence()
        .output(|| {
            ListServiceDeploymentsOutput::builder()
                .service_deployments(
                    ServiceDeploymentBrief::builder()
                        .service_deployment_arn(SD)
                        .target_service_revision_arn(REV2)
                        .status(ServiceDeploymentStatus::Successful)
                        .created_at(DateTime::from_secs(2_000))
                        .build(),
                )
                .next_token("page-2")
                .build()
        })
        .output(|| {
            ListServiceDeploymentsOutput::builder()
                .service_deployments(
                    ServiceDeploymentBrief::builder()
                        .service_deployment_arn("arn:aws:ecs:us-east-1:1:service-deployment/shop/api/first")
                        .target_service_revision_arn(REV1)
                        .status(ServiceDeploymentStatus::Successful)
                        .created_at(DateTime::from_secs(1_000))
                        .build(),
                )
                .build()
        })
        .build();
    let revs = revisions_rule();
    let d = deployer(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list, &revs]));
    let history = d.history().await.unwrap();
    let names: Vec<_> = history.iter().map(|r| (r.arn.as_str(), r.task_definition.as_str())).collect();
    assert_eq!(names, vec![(REV2, "shop-api:2"), (REV1, "shop-api:1")], "newest first, across pages");
    assert_eq!(history[1].image.as_ref().map(ToString::to_string).as_deref(), Some("shop/api:v1"));

    let services = mock!(Client::describe_services).then_output(|| {
        DescribeServicesOutput::builder().services(service(Some(DeploymentStrategy::BlueGreen))).build()
    });
    let update = mock!(Client::update_service)
        .match_requests(|r| r.task_definition() == Some(TD1))
        .then_output(|| UpdateServiceOutput::builder().service(service(Some(DeploymentStrategy::BlueGreen))).build());
    let d = deployer(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&revs, &services, &update]));
    let rollout = d.roll_back_to(REV1).await.unwrap();
    assert_eq!((rollout.deployment_id.as_str(), rollout.image.to_string()), (SD, "shop/api:v1".to_owned()));
    assert_eq!(update.num_calls(), 1);
    let missing = d.roll_back_to("arn:aws:ecs:us-east-1:1:service-revision/shop/api/9").await;
    assert!(matches!(missing, Err(Error::NotFound { .. })), "{missing:?}");
}

/// A scripted ECS: each `ContinueServiceDeployment` moves the deployment to its next paused hook;
/// `ROLLBACK` (or a stop) rolls it back. The pipeline decides every hook with its checks.
struct ScriptedEcs {
    decisions: Arc<AtomicUsize>,
    rolled_back: Arc<AtomicUsize>,
}

impl ScriptedEcs {
    fn new() -> Self {
        ScriptedEcs { decisions: Arc::new(AtomicUsize::new(0)), rolled_back: Arc::new(AtomicUsize::new(0)) }
    }

    fn client(&self) -> Client {
        use ServiceDeploymentLifecycleStage as L;
        let services = mock!(Client::describe_services).then_output(|| {
            DescribeServicesOutput::builder().services(service(Some(DeploymentStrategy::Canary))).build()
        });
        let td = mock!(Client::describe_task_definition).then_output(|| {
            DescribeTaskDefinitionOutput::builder().task_definition(task_definition(TD1, "shop/api:v1")).build()
        });
        let register = mock!(Client::register_task_definition).then_output(|| {
            RegisterTaskDefinitionOutput::builder().task_definition(task_definition(TD2, "shop/api:v2")).build()
        });
        let update = mock!(Client::update_service)
            .then_output(|| UpdateServiceOutput::builder().service(service(Some(DeploymentStrategy::Canary))).build());
        let (decisions, rolled_back) = (self.decisions.clone(), self.rolled_back.clone());
        let describe = mock!(Client::describe_service_deployments).then_compute_output(move |_| {
            if rolled_back.load(Ordering::SeqCst) > 0 {
                return described(deployment(ServiceDeploymentStatus::RollbackSuccessful, None, 0.0));
            }
            let (stage, percent) = match decisions.load(Ordering::SeqCst) {
                0 => (L::PostTestTrafficShift, 0.0),
                1 => (L::from("PRE_PRODUCTION_TRAFFIC_SHIFT"), 0.0),
                2 => (L::from("PRE_PRODUCTION_TRAFFIC_SHIFT"), 10.0),
                3 => (L::PostProductionTrafficShift, 100.0),
                _ => return described(deployment(ServiceDeploymentStatus::Successful, None, 100.0)),
            };
            let n = decisions.load(Ordering::SeqCst);
            described(paused(
                deployment(ServiceDeploymentStatus::InProgress, Some(stage), percent),
                &format!("hook-{n}"),
            ))
        });
        let (decisions, rolled_back) = (self.decisions.clone(), self.rolled_back.clone());
        let decide = mock!(Client::continue_service_deployment).then_compute_output(move |r| {
            if r.action() == Some(&DeploymentLifecycleHookAction::Rollback) {
                rolled_back.fetch_add(1, Ordering::SeqCst);
            } else {
                decisions.fetch_add(1, Ordering::SeqCst);
            }
            ContinueServiceDeploymentOutput::builder().service_deployment_arn(SD).build()
        });
        let rolled_back = self.rolled_back.clone();
        let stop = mock!(Client::stop_service_deployment).then_compute_output(move |_| {
            rolled_back.fetch_add(1, Ordering::SeqCst);
            StopServiceDeploymentOutput::builder().service_deployment_arn(SD).build()
        });
        let revs = revisions_rule();
        let list =
            mock!(Client::list_service_deployments).then_output(|| ListServiceDeploymentsOutput::builder().build());
        mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            [&services, &td, &register, &update, &describe, &decide, &stop, &revs, &list]
        )
    }
}

fn mocked_pipeline(account: &Account, ecs: &ScriptedEcs) -> Pipeline {
    // The simulated account builds and answers the URLs; the ECS deployer is the AWS one on mocks.
    let env = account.managed_environment("shop").unwrap().managed(Arc::new(deployer(ecs.client()))).build().unwrap();
    Pipeline::builder()
        .source(Arc::new(account.source()))
        .image_builder(Arc::new(account.image_builder()))
        .environment(env)
        .strategy(Strategy::EcsManaged(EcsManaged::default()))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_decides_each_hook_of_a_real_deployer_and_a_failed_check_rolls_ecs_back() {
    let account = Account::new();
    account.create_managed_service("shop", ManagedConfig::default()).unwrap();
    let ecs = ScriptedEcs::new();
    let record = mocked_pipeline(&account, &ecs).run(account.push("main", "Good", "Ada").unwrap()).await.unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded, "{:#?}", record.steps);
    let managed = record.managed.as_ref().unwrap();
    assert_eq!(managed.deployment.as_str(), SD);
    assert_eq!(
        (managed.revisions_before.clone(), managed.revision_after.as_deref()),
        (vec![REV1.to_owned()], Some(REV2))
    );
    let hooks: Vec<_> = managed.hooks.iter().map(|h| (h.stage.clone(), h.production_percent, h.action)).collect();
    use LifecycleStage::*;
    assert_eq!(
        hooks,
        vec![
            (PostTestTrafficShift, 0, HookAction::Continue),
            (PreProductionTrafficShift, 0, HookAction::Continue),
            (PreProductionTrafficShift, 10, HookAction::Continue),
            (PostProductionTrafficShift, 100, HookAction::Continue),
        ]
    );
    assert_eq!(ecs.decisions.load(Ordering::SeqCst), 4);

    // The test listener fails its checks: ROLLBACK is sent at POST_TEST_TRAFFIC_SHIFT, and the
    // execution follows ECS to ROLLBACK_SUCCESSFUL.
    let ecs = ScriptedEcs::new();
    let mut failing = sendy_cd::mock::MockVerifier::new();
    failing
        .expect_probe()
        .returning(|_, _| Ok(sendy_cd::ProbeResponse { status: 500, latency: std::time::Duration::from_millis(5) }));
    let env = account
        .managed_environment("shop")
        .unwrap()
        .managed(Arc::new(deployer(ecs.client())))
        .verifier(Arc::new(failing))
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .source(Arc::new(account.source()))
        .image_builder(Arc::new(account.image_builder()))
        .environment(env)
        .strategy(Strategy::EcsManaged(EcsManaged::default()))
        .build()
        .unwrap();
    let record = pipeline.run(account.push("main", "Bad", "Ada").unwrap()).await.unwrap();
    let Outcome::Failed { recovery, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert!(matches!(recovery, Recovery::ServiceRolledBack { revision } if revision == REV1), "{recovery:?}");
    assert_eq!(ecs.rolled_back.load(Ordering::SeqCst), 1, "one ROLLBACK decision, no stop needed");
    assert_eq!(ecs.decisions.load(Ordering::SeqCst), 0, "nothing was continued");
    let hooks = &record.managed.as_ref().unwrap().hooks;
    assert_eq!((hooks.len(), hooks[0].stage.clone(), hooks[0].action), (1, PostTestTrafficShift, HookAction::Rollback));
    assert_eq!(record.managed.as_ref().unwrap().state, Some(ManagedState::RollbackSuccessful));
}

/// A `deploy` tried again after its answer was lost finds the service deployment the first try
/// started (the service's current one, in progress, of the same image) rather than start another.
#[tokio::test]
async fn a_retried_deploy_pins_the_deployment_the_lost_answer_started() {
    let started = || {
        let mut s = service(Some(DeploymentStrategy::Linear));
        s.task_definition = Some(TD2.into());
        s.deployments =
            Some(vec![aws_sdk_ecs::types::Deployment::builder().status("PRIMARY").task_definition(TD2).build()]);
        s
    };
    let services = mock!(Client::describe_services)
        .then_output(move || DescribeServicesOutput::builder().services(started()).build());
    let td = mock!(Client::describe_task_definition).then_output(|| {
        DescribeTaskDefinitionOutput::builder().task_definition(task_definition(TD2, "shop/api:v2")).build()
    });
    let describe = mock!(Client::describe_service_deployments)
        .then_output(|| described(deployment(ServiceDeploymentStatus::InProgress, None, 0.0)));
    let register =
        mock!(Client::register_task_definition).then_output(|| RegisterTaskDefinitionOutput::builder().build());
    let update = mock!(Client::update_service).then_output(|| UpdateServiceOutput::builder().build());
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&services, &td, &describe, &register, &update]);
    let rollout = deployer(client).deploy(&ImageRef::parse("shop/api:v2").unwrap()).await.unwrap();
    assert_eq!(rollout.deployment_id.as_str(), SD);
    assert_eq!((register.num_calls(), update.num_calls()), (0, 0), "nothing started twice");
}

/// CloudFormation cannot declare a PAUSE hook: the deployer sets one in the `UpdateService` that
/// starts each deployment, keeping the service's other hooks; bad stages and timeouts are refused.
#[tokio::test]
async fn pause_hooks_are_set_with_the_deployment_and_other_hooks_kept() {
    use aws_sdk_ecs::types::{DeploymentLifecycleHook, DeploymentLifecycleHookStage};
    let with_lambda = || {
        let mut s = service(Some(DeploymentStrategy::Canary));
        s.deployment_configuration = Some(
            DeploymentConfiguration::builder()
                .strategy(DeploymentStrategy::Canary)
                .bake_time_in_minutes(5)
                .lifecycle_hooks(
                    DeploymentLifecycleHook::builder()
                        .target_type(DeploymentLifecycleHookTargetType::AwsLambda)
                        .hook_target_arn("arn:aws:lambda:us-east-1:1:function:smoke")
                        .lifecycle_stages(DeploymentLifecycleHookStage::PostScaleUp)
                        .build(),
                )
                .build(),
        );
        s
    };
    let services = mock!(Client::describe_services)
        .then_output(move || DescribeServicesOutput::builder().services(with_lambda()).build());
    let td = mock!(Client::describe_task_definition).then_output(|| {
        DescribeTaskDefinitionOutput::builder().task_definition(task_definition(TD1, "shop/api:v1")).build()
    });
    let register = mock!(Client::register_task_definition).then_output(|| {
        RegisterTaskDefinitionOutput::builder().task_definition(task_definition(TD2, "shop/api:v2")).build()
    });
    let update = mock!(Client::update_service)
        .match_requests(|r| {
            let Some(cfg) = r.deployment_configuration() else { return false };
            let hooks = cfg.lifecycle_hooks();
            let pause = hooks.iter().find(|h| h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause));
            let stages: Vec<&str> =
                pause.map(|h| h.lifecycle_stages().iter().map(|s| s.as_str()).collect()).unwrap_or_default();
            let timeout = pause.and_then(|h| h.timeout_configuration());
            cfg.strategy() == Some(&DeploymentStrategy::Canary)
                && cfg.bake_time_in_minutes() == Some(5)
                && hooks.len() == 2
                && hooks.iter().any(|h| h.hook_target_arn() == Some("arn:aws:lambda:us-east-1:1:function:smoke"))
                && stages
                    == ["POST_TEST_TRAFFIC_SHIFT", "PRE_PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"]
                && timeout.and_then(|t| t.timeout_in_minutes()) == Some(30)
                && timeout.and_then(|t| t.action()) == Some(&DeploymentLifecycleHookAction::Rollback)
        })
        .then_output(|| UpdateServiceOutput::builder().service(service(Some(DeploymentStrategy::Canary))).build());
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&services, &td, &register, &update]);
    let d = deployer(client)
        .pause_hooks(&EcsManagedDeployer::PIPELINE_HOOKS, std::time::Duration::from_secs(1800))
        .unwrap();
    d.deploy(&ImageRef::parse("shop/api:v2").unwrap()).await.unwrap();
    assert_eq!(update.num_calls(), 1);

    let fresh = || EcsManagedDeployer::from_client(mock_client!(aws_sdk_ecs, []), "shop", "api").unwrap();
    let minute = std::time::Duration::from_secs(60);
    assert!(fresh().pause_hooks(&[LifecycleStage::ProductionTrafficShift], minute).is_err());
    assert!(fresh().pause_hooks(&[], minute).is_err());
    assert!(fresh().pause_hooks(&EcsManagedDeployer::PIPELINE_HOOKS, std::time::Duration::from_secs(90)).is_err());
    assert!(fresh().pause_hooks(&EcsManagedDeployer::PIPELINE_HOOKS, minute * 1441).is_err());
    assert!(fresh().target_group("Bad Name", TG_BLUE).is_err());
}

/// A stateful ECS behind aws-smithy-mocks, enough for the conformance check: task definitions,
/// service revisions, service deployments that go through their stages one `DescribeServiceDeployments`
/// at a time and wait at PAUSE hooks for `ContinueServiceDeployment`.
mod fake {
    use std::sync::{Arc, Mutex};

    use super::*;
    use aws_sdk_ecs::types::{Deployment, Failure};

    /// The stages a deployment goes through: (stage, a PAUSE hook waits there, production weight).
    const SCRIPT: [(&str, bool, f64); 7] = [
        ("SCALE_UP", false, 0.0),
        ("POST_TEST_TRAFFIC_SHIFT", true, 0.0),
        ("PRE_PRODUCTION_TRAFFIC_SHIFT", true, 0.0),
        ("PRODUCTION_TRAFFIC_SHIFT", false, 10.0),
        ("PRE_PRODUCTION_TRAFFIC_SHIFT", true, 10.0),
        ("POST_PRODUCTION_TRAFFIC_SHIFT", true, 100.0),
        ("BAKE_TIME", false, 100.0),
    ];

    struct Dep {
        arn: String,
        target: usize,
        source: usize,
        phase: usize,
        state: ServiceDeploymentStatus,
        created: i64,
    }

    #[derive(Default)]
    struct State {
        /// (task definition ARN, image)
        tds: Vec<(String, String)>,
        /// (service revision ARN, index of its task definition)
        revisions: Vec<(String, usize)>,
        deps: Vec<Dep>,
        current_td: usize,
        clock: i64,
    }

    impl State {
        fn td_arn(n: usize) -> String {
            format!("arn:aws:ecs:us-east-1:1:task-definition/shop-api:{}", n + 1)
        }

        fn service(&self) -> Service {
            let current = self.deps.last();
            let td = Self::td_arn(self.current_td);
            Service::builder()
                .service_name("api")
                .task_definition(&td)
                .deployment_configuration(
                    DeploymentConfiguration::builder().strategy(DeploymentStrategy::Canary).build(),
                )
                .set_current_service_deployment(current.map(|d| d.arn.clone()))
                .deployments(Deployment::builder().status("PRIMARY").task_definition(td).build())
                .build()
        }

        fn describe(&mut self, arn: &str) -> Option<ServiceDeployment> {
            use ServiceDeploymentStatus as S;
            let revisions = self.revisions.clone();
            let dep = self.deps.iter_mut().find(|d| d.arn == arn)?;
            // Time passes with each read: the deployment moves on unless a hook waits.
            match dep.state {
                S::InProgress if !SCRIPT.get(dep.phase).is_some_and(|p| p.1) => {
                    dep.phase += 1;
                    if dep.phase >= SCRIPT.len() {
                        dep.state = S::Successful;
                    }
                }
                S::RollbackInProgress => dep.state = S::RollbackSuccessful,
                S::StopRequested => dep.state = S::Stopped,
                _ => {}
            }
            let in_progress = dep.state == S::InProgress;
            let (stage, hook, percent) = if in_progress { SCRIPT[dep.phase] } else { ("", false, 0.0) };
            let percent = if dep.state == S::Successful { 100.0 } else { percent };
            let mut d = ServiceDeployment::builder()
                .service_deployment_arn(&dep.arn)
                .status(dep.state.clone())
                .target_service_revision(
                    ServiceRevisionSummary::builder()
                        .arn(&revisions[dep.target].0)
                        .requested_task_count(2)
                        .running_task_count(2)
                        .requested_production_traffic_weight(percent)
                        .build(),
                )
                .source_service_revisions(ServiceRevisionSummary::builder().arn(&revisions[dep.source].0).build())
                .set_lifecycle_stage(in_progress.then(|| ServiceDeploymentLifecycleStage::from(stage)))
                .build();
            if in_progress && hook {
                d = paused(d, &format!("{}/hook-{}", dep.arn, dep.phase));
            }
            Some(d)
        }
    }

    pub(super) fn client() -> Client {
        let state = Arc::new(Mutex::new(State::default()));
        {
            let mut s = state.lock().unwrap();
            s.tds.push((State::td_arn(0), "shop/api:v0".into()));
            s.revisions.push(("arn:aws:ecs:us-east-1:1:service-revision/shop/api/0".into(), 0));
        }
        let st = state.clone();
        let services = mock!(Client::describe_services).then_compute_output(move |_| {
            DescribeServicesOutput::builder().services(st.lock().unwrap().service()).build()
        });
        let st = state.clone();
        let td = mock!(Client::describe_task_definition).then_compute_output(move |r| {
            let s = st.lock().unwrap();
            let wanted = r.task_definition().unwrap_or_default();
            let found = s.tds.iter().find(|(arn, _)| arn == wanted || arn.ends_with(&format!("/{wanted}")));
            DescribeTaskDefinitionOutput::builder()
                .set_task_definition(found.map(|(arn, image)| task_definition(arn, image)))
                .build()
        });
        let st = state.clone();
        let register = mock!(Client::register_task_definition).then_compute_output(move |r| {
            let mut s = st.lock().unwrap();
            let image = r.container_definitions()[0].image().unwrap_or_default().to_owned();
            let arn = State::td_arn(s.tds.len());
            s.tds.push((arn.clone(), image.clone()));
            RegisterTaskDefinitionOutput::builder().task_definition(task_definition(&arn, &image)).build()
        });
        let st = state.clone();
        let update = mock!(Client::update_service).then_compute_output(move |r| {
            let mut s = st.lock().unwrap();
            let td = s.tds.iter().position(|(arn, _)| Some(arn.as_str()) == r.task_definition()).expect("known td");
            for d in s.deps.iter_mut().filter(|d| d.state == ServiceDeploymentStatus::InProgress) {
                d.state = ServiceDeploymentStatus::Stopped;
            }
            let source = s.revisions.iter().rposition(|(_, t)| *t == s.current_td).unwrap_or(0);
            let n = s.revisions.len();
            s.revisions.push((format!("arn:aws:ecs:us-east-1:1:service-revision/shop/api/{n}"), td));
            s.clock += 60;
            let dep = Dep {
                arn: format!("arn:aws:ecs:us-east-1:1:service-deployment/shop/api/{n}"),
                target: n,
                source,
                phase: 0,
                state: ServiceDeploymentStatus::InProgress,
                created: s.clock,
            };
            s.deps.push(dep);
            s.current_td = td;
            UpdateServiceOutput::builder().service(s.service()).build()
        });
        let st = state.clone();
        let describe = mock!(Client::describe_service_deployments).then_compute_output(move |r| {
            let mut s = st.lock().unwrap();
            let mut out = DescribeServiceDeploymentsOutput::builder();
            for arn in r.service_deployment_arns() {
                match s.describe(arn) {
                    Some(d) => out = out.service_deployments(d),
                    None => out = out.failures(Failure::builder().arn(arn).reason("MISSING").build()),
                }
            }
            out.build()
        });
        let st = state.clone();
        let decide = mock!(Client::continue_service_deployment).then_compute_output(move |r| {
            let mut s = st.lock().unwrap();
            let current_td = s.current_td;
            let mut back_to = None;
            if let Some(d) = s.deps.iter_mut().find(|d| Some(d.arn.as_str()) == r.service_deployment_arn()) {
                let waiting = format!("{}/hook-{}", d.arn, d.phase);
                if d.state == ServiceDeploymentStatus::InProgress && r.hook_id() == Some(waiting.as_str()) {
                    if r.action() == Some(&DeploymentLifecycleHookAction::Rollback) {
                        d.state = ServiceDeploymentStatus::RollbackInProgress;
                        back_to = Some(d.source);
                    } else {
                        d.phase += 1;
                    }
                }
            }
            if let Some(source) = back_to {
                s.current_td = s.revisions[source].1;
            }
            let _ = current_td;
            ContinueServiceDeploymentOutput::builder().build()
        });
        let st = state.clone();
        let stop = mock!(Client::stop_service_deployment).then_compute_output(move |r| {
            let mut s = st.lock().unwrap();
            let mut back_to = None;
            if let Some(d) = s.deps.iter_mut().find(|d| Some(d.arn.as_str()) == r.service_deployment_arn())
                && d.state == ServiceDeploymentStatus::InProgress
            {
                d.state = ServiceDeploymentStatus::StopRequested;
                back_to = Some(d.source);
            }
            if let Some(source) = back_to {
                s.current_td = s.revisions[source].1;
            }
            StopServiceDeploymentOutput::builder().build()
        });
        let st = state.clone();
        let list = mock!(Client::list_service_deployments).then_compute_output(move |r| {
            let s = st.lock().unwrap();
            let briefs = s
                .deps
                .iter()
                .filter(|d| r.status().is_empty() || r.status().contains(&d.state))
                .map(|d| {
                    ServiceDeploymentBrief::builder()
                        .service_deployment_arn(&d.arn)
                        .target_service_revision_arn(&s.revisions[d.target].0)
                        .status(d.state.clone())
                        .created_at(DateTime::from_secs(d.created))
                        .build()
                })
                .collect();
            ListServiceDeploymentsOutput::builder().set_service_deployments(Some(briefs)).build()
        });
        let st = state;
        let revisions = mock!(Client::describe_service_revisions).then_compute_output(move |r| {
            let s = st.lock().unwrap();
            let found = s
                .revisions
                .iter()
                .filter(|(arn, _)| r.service_revision_arns().contains(arn))
                .map(|(arn, td)| revision(arn, &s.tds[*td].0, &s.tds[*td].1, TG_BLUE, Some(TG_GREEN)))
                .collect();
            DescribeServiceRevisionsOutput::builder().set_service_revisions(Some(found)).build()
        });
        mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            [&services, &td, &register, &update, &describe, &decide, &stop, &list, &revisions]
        )
    }
}

struct MockedEcs {
    deployer: Arc<EcsManagedDeployer>,
}

#[async_trait::async_trait]
impl sendy_cd::conformance::ManagedDeployerHarness for MockedEcs {
    fn managed(&self) -> Arc<dyn ManagedDeployer> {
        self.deployer.clone()
    }
    fn images(&self) -> (ImageRef, ImageRef) {
        (ImageRef::parse("shop/api:v1").unwrap(), ImageRef::parse("shop/api:v2").unwrap())
    }
    async fn advance(&self, _rollout: &Rollout) -> sendy_cd::Result<()> {
        Ok(())
    }
    fn patience(&self) -> sendy_cd::conformance::Patience {
        sendy_cd::conformance::Patience::default()
    }
}

/// The conformance check every managed deployer passes, on `EcsManagedDeployer` against a stateful
/// ECS behind aws-smithy-mocks (the emulator has none of these APIs).
#[tokio::test(start_paused = true)]
async fn the_ecs_managed_deployer_conforms() {
    let deployer = Arc::new(deployer(fake::client()));
    sendy_cd::conformance::managed_deployer(&MockedEcs { deployer }).await;
}
