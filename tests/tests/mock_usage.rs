//! How a user's own test suite uses the `mock` feature: assert exactly which calls a pipeline makes.
//! Here: when the build fails, nothing changes the stack, the service or the DNS weights (the
//! pipeline only reads what the live service runs, first, and the weights).

use std::sync::Arc;

use sendy_cd::mock::{MockBuilder, MockDeployer, MockDnsSwitch, MockStack, MockVerifier};
use sendy_cd::{
    BranchName, BuildId, BuildStatus, CommitId, Environment, Outcome, Pipeline, Recovery, Revision, SetIdentifier,
    Stage, TrafficSplit,
};

fn split() -> TrafficSplit {
    TrafficSplit::new([(SetIdentifier::parse("blue").unwrap(), 100), (SetIdentifier::parse("green").unwrap(), 0)])
        .unwrap()
}

fn untouched_environment(name: &str) -> Environment {
    let mut stack = MockStack::new();
    stack.expect_plan().never();
    stack.expect_apply().never();
    let mut deployer = MockDeployer::new();
    // Read once, before anything changes, for the environment with the traffic.
    deployer.expect_revisions().times(..=1).returning(|| Ok(sendy_cd::ServiceRevisions::default()));
    deployer.expect_deploy().never();
    deployer.expect_rollback().never();
    Environment::builder(name)
        .stack(Arc::new(stack), &format!("app-{name}"))
        .deployer(Arc::new(deployer))
        .verifier(Arc::new(MockVerifier::new()))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_failed_build_never_touches_the_environments() {
    let mut builder = MockBuilder::new();
    builder
        .expect_start_once()
        .withf(|_, key| key.ends_with("/start-build"))
        .times(1)
        .returning(|_, _| Ok(BuildId::parse("app:build-1").unwrap()));
    let mut polls = 0;
    builder.expect_status().returning(move |_| {
        polls += 1;
        Ok(if polls < 3 {
            BuildStatus::InProgress { phase: "BUILD".into() }
        } else {
            BuildStatus::Failed { phase: "BUILD".into(), reason: "exit status 1".into() }
        })
    });
    builder.expect_stop().never();

    let mut dns = MockDnsSwitch::new();
    dns.expect_weights().returning(|| Ok(split()));
    dns.expect_set_weights().never();

    let pipeline = Pipeline::builder()
        .image_builder(Arc::new(builder))
        .environment(untouched_environment("blue"))
        .environment(untouched_environment("green"))
        .dns(Arc::new(dns))
        .build()
        .unwrap();
    let commit = CommitId::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
    let record = pipeline.run(Revision::new(commit, BranchName::default())).await.unwrap();
    let Outcome::Failed { stage, reason, recovery } = record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(stage, Stage::Build);
    assert!(reason.contains("exit status 1"), "{reason}");
    assert_eq!(recovery, Recovery::NotNeeded);
    // The mocks' `never()` and `times(1)` expectations are checked when the pipeline drops them.
}
