//! The stack deployer's composition: a stack update that reaches the service is followed through the
//! service's own deployment; one that rolls back first is a failed rollout; no change goes straight to
//! the service.

use std::sync::Arc;

use sendy_cd::mock::{MockDeployer, MockStack};
use sendy_cd::{
    DeployedRevision, Deployer, Error, Id, ImageRef, Plan, PlanKind, Rollout, RolloutStatus, ServiceRevisions,
    StackDeployer, StackName, StackPlan, StackStatus, Stage,
};

fn image(tag: &str) -> ImageRef {
    ImageRef::parse(&format!("shop/api:{tag}")).unwrap()
}

fn plan() -> StackPlan {
    StackPlan {
        id: Id::parse("cs-1").unwrap(),
        stack: StackName::parse("app-green").unwrap(),
        kind: PlanKind::Update,
        changes: vec![],
    }
}

fn running(tag: &str) -> ServiceRevisions {
    ServiceRevisions {
        current: Some(DeployedRevision { revision: format!("app-green:{tag}"), image: image(tag) }),
        last_good: None,
    }
}

fn stack_that(statuses: Vec<StackStatus>) -> MockStack {
    let mut stack = MockStack::new();
    stack
        .expect_plan()
        .withf(|name, change| name.as_str() == "app-green" && change.parameters.get("ImageUri") == Some("shop/api:v2"))
        .times(1)
        .returning(|_, _| Ok(Plan::Ready(plan())));
    stack.expect_apply().times(1).returning(|_| Ok(()));
    let mut n = 0;
    stack.expect_status().returning(move |_| {
        n += 1;
        Ok(statuses[(n - 1).min(statuses.len() - 1)].clone())
    });
    stack
}

#[tokio::test(start_paused = true)]
async fn a_stack_update_is_followed_through_the_deployment_it_created() {
    // Two reads while deploy waits for the service, one more while the service is done: then complete.
    let stack = stack_that(vec![
        StackStatus::InProgress { status: "UPDATE_IN_PROGRESS".into() },
        StackStatus::InProgress { status: "UPDATE_IN_PROGRESS".into() },
        StackStatus::InProgress { status: "UPDATE_IN_PROGRESS".into() },
        StackStatus::Complete,
    ]);
    let mut service = MockDeployer::new();
    let mut reads = 0;
    service.expect_revisions().returning(move || {
        reads += 1;
        Ok(running(if reads < 3 { "v1" } else { "v2" }))
    });
    service
        .expect_deploy()
        .withf(|i| i.tag() == Some("v2"))
        .times(1)
        .returning(|i| Ok(Rollout { deployment_id: Id::parse("ecs-svc/2").unwrap(), image: i.clone() }));
    service.expect_status().returning(|_| Ok(RolloutStatus::Completed { running: 2, desired: 2 }));

    let deployer = StackDeployer::new(Arc::new(stack), "app-green", Arc::new(service)).unwrap();
    let rollout = deployer.deploy(&image("v2")).await.unwrap();
    assert_eq!(rollout.deployment_id.as_str(), "ecs-svc/2");
    // The service is done, the stack not yet: still in progress.
    assert!(matches!(deployer.status(&rollout).await.unwrap(), RolloutStatus::InProgress { .. }));
    assert_eq!(deployer.status(&rollout).await.unwrap(), RolloutStatus::Completed { running: 2, desired: 2 });
}

#[tokio::test(start_paused = true)]
async fn a_stack_that_rolls_back_before_the_service_changes_is_a_failed_rollout() {
    let stack = stack_that(vec![
        StackStatus::InProgress { status: "UPDATE_IN_PROGRESS".into() },
        StackStatus::RolledBack { resource: Some("TaskDefinition".into()), reason: "Invalid memory".into() },
    ]);
    let mut service = MockDeployer::new();
    service.expect_revisions().returning(|| Ok(running("v1")));
    service.expect_deploy().never();
    let deployer = StackDeployer::new(Arc::new(stack), "app-green", Arc::new(service)).unwrap();
    let err = deployer.deploy(&image("v2")).await.unwrap_err();
    assert!(
        matches!(&err, Error::StageFailed { stage: Stage::Rollout, reason } if reason.contains("rolled back") && reason.contains("TaskDefinition: Invalid memory")),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn no_change_to_the_stack_goes_straight_to_the_service() {
    let mut stack = MockStack::new();
    stack.expect_plan().times(1).returning(|_, _| Ok(Plan::NoChanges));
    stack.expect_apply().never();
    let mut service = MockDeployer::new();
    service
        .expect_deploy()
        .times(1)
        .returning(|i| Ok(Rollout { deployment_id: Id::parse("ecs-svc/7").unwrap(), image: i.clone() }));
    service.expect_status().returning(|_| Ok(RolloutStatus::Completed { running: 1, desired: 1 }));
    let deployer = StackDeployer::new(Arc::new(stack), "app-green", Arc::new(service)).unwrap();
    let rollout = deployer.deploy(&image("v2")).await.unwrap();
    assert_eq!(rollout.deployment_id.as_str(), "ecs-svc/7");
    assert_eq!(deployer.status(&rollout).await.unwrap(), RolloutStatus::Completed { running: 1, desired: 1 });
}
