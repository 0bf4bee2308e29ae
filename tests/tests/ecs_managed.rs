//! ECS-managed traffic on the simulated account: ECS shifts production traffic between two target
//! groups with the service's own strategy; the pipeline pins the service deployment, follows its
//! lifecycle stages and decides each PAUSE hook with its checks (the test listener, the metric
//! analysis of each production step, the production URL).

use std::sync::Arc;
use std::time::Duration;

use sendy_cd::analysis::{Analysis, Verdict};
use sendy_cd::memory::{Account, Behavior, Health, ManagedConfig, Op, SimConfig, Traffic, TrafficShift};
use sendy_cd::{
    Deployer, EcsManaged, Error, HookAction, ImageRef, LifecycleStage, ManagedDeployer, ManagedState, Outcome,
    Pipeline, PipelineBuilder, Recovery, Stage, Step, Strategy,
};

fn account(cfg: ManagedConfig) -> Account {
    let account = Account::with_config(SimConfig::default()).unwrap();
    account.create_managed_service("shop", cfg).unwrap();
    account
}

fn builder(account: &Account, strategy: EcsManaged) -> PipelineBuilder {
    Pipeline::builder()
        .source(Arc::new(account.source()))
        .image_builder(Arc::new(account.image_builder()))
        .environment(account.managed_environment("shop").unwrap().build().unwrap())
        .strategy(Strategy::EcsManaged(strategy))
        .metrics(account.metrics(200.0).unwrap())
        .seed(5)
}

fn analysed() -> EcsManaged {
    EcsManaged::default().analysis(Analysis::default())
}

fn initial(account: &Account) -> ImageRef {
    account.managed_serving("shop").expect("the initial revision serves")
}

fn hooks(record: &sendy_cd::ExecutionRecord) -> Vec<(LifecycleStage, u8, HookAction)> {
    let managed = record.managed.as_ref().expect("a managed record");
    managed.hooks.iter().map(|h| (h.stage.clone(), h.production_percent, h.action)).collect()
}

#[tokio::test(start_paused = true)]
async fn a_healthy_revision_goes_through_every_stage_with_each_hook_decided_by_the_checks() {
    let account = account(ManagedConfig::default());
    let pipeline = builder(&account, analysed()).build().unwrap();
    let mut events = pipeline.subscribe();
    let good = account.push("main", "Faster search", "Ada").unwrap();
    let before = initial(&account);
    let record = pipeline.run(good.clone()).await.unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded, "{:#?}", record.steps);
    // Each lifecycle stage and each decision is a typed event.
    let (mut stages, mut decided) = (vec![], vec![]);
    while let Some(event) = events.try_recv() {
        match event.kind {
            sendy_cd::EventKind::ManagedStage { stage, .. } => stages.push(stage),
            sendy_cd::EventKind::HookDecided { stage, action, .. } => decided.push((stage, action)),
            _ => {}
        }
    }
    assert!(stages.windows(2).all(|w| w[0] != w[1]), "a stage is announced once when entered: {stages:?}");
    assert_eq!(stages.first(), Some(&LifecycleStage::PreScaleUp), "{stages:?}");
    assert_eq!(decided.len(), 4);
    assert!(decided.iter().all(|(_, a)| *a == HookAction::Continue));
    assert_eq!(account.managed_serving("shop").unwrap().tag(), Some(good.commit.as_str()));
    assert_ne!(account.managed_serving("shop"), Some(before));
    use LifecycleStage::*;
    assert_eq!(
        hooks(&record),
        vec![
            (PostTestTrafficShift, 0, HookAction::Continue),
            (PreProductionTrafficShift, 0, HookAction::Continue),
            (PreProductionTrafficShift, 10, HookAction::Continue),
            (PostProductionTrafficShift, 100, HookAction::Continue),
        ]
    );
    let managed = record.managed.as_ref().unwrap();
    assert_eq!(managed.state, Some(ManagedState::Successful));
    assert!(managed.deployment.as_str().contains("service-deployment"), "pinned by ARN: {}", managed.deployment);
    // The service revisions before and after are named.
    assert_eq!(managed.revisions_before.len(), 1);
    let after = managed.revision_after.as_deref().unwrap();
    assert!(after.contains("service-revision") && !managed.revisions_before.contains(&after.to_owned()));
    // Lifecycle stages as progress, in ECS's order.
    let stages: Vec<_> = managed.stages.iter().map(|(s, _)| s.clone()).collect();
    for expected in [PostTestTrafficShift, PreProductionTrafficShift, PostProductionTrafficShift] {
        assert!(stages.contains(&expected), "{expected} in {stages:?}");
    }
    assert!(managed.stages.windows(2).all(|w| w[0].1 <= w[1].1), "in time order");
    // The canary step was judged against the old revision's target group, at the same time.
    assert_eq!(record.analyses.len(), 1);
    let a = &record.analyses[0];
    assert_eq!(
        (a.environment.as_str(), a.baseline.as_str(), a.phase.as_str()),
        ("shop-green", "shop-blue", "production 10%")
    );
    assert_eq!(a.judgement.verdict, Some(Verdict::Pass));
    // Checked through the test listener, then the production URL.
    let phases: Vec<_> = record.verifications.iter().map(|v| v.phase.as_str()).collect();
    assert_eq!(phases, vec!["test listener", "production 10%", "all production traffic"]);
    assert!(record.steps.iter().filter(|s| s.step == Step::DecideHook).count() == 4);
    // The record keeps all of it through JSON.
    let back: sendy_cd::ExecutionRecord = serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
    assert_eq!(back.managed, record.managed);

    // The next deployment goes the other way: the new revision on the other target group.
    let next = account.push("main", "Next", "Ada").unwrap();
    let record = pipeline.run(next).await.unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded);
    assert_eq!(
        (record.analyses[0].environment.as_str(), record.analyses[0].baseline.as_str()),
        ("shop-blue", "shop-green")
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_revision_is_caught_at_the_first_step_and_rolled_back_by_ecs_at_the_pipelines_rollback() {
    let account = account(ManagedConfig::default());
    let pipeline = builder(&account, analysed()).build().unwrap();
    let slow = account.push("main", "Slow checkout", "Ada").unwrap();
    account.set_behavior(&slow.commit, Behavior::default().traffic(Traffic::default().p99_times(3.0)));
    let before = initial(&account);
    let record = pipeline.run(slow).await.unwrap();
    let Outcome::Failed { stage, reason, recovery } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Traffic);
    assert!(reason.contains("production 10%") && reason.contains("latency p99"), "{reason}");
    let managed = record.managed.as_ref().unwrap();
    assert!(
        matches!(recovery, Recovery::ServiceRolledBack { revision } if *revision == managed.revisions_before[0]),
        "{recovery:?}"
    );
    use LifecycleStage::*;
    assert_eq!(
        hooks(&record),
        vec![
            (PostTestTrafficShift, 0, HookAction::Continue),
            (PreProductionTrafficShift, 0, HookAction::Continue),
            (PreProductionTrafficShift, 10, HookAction::Rollback),
        ]
    );
    assert_eq!(managed.state, Some(ManagedState::RollbackSuccessful), "followed to ECS's end");
    assert_eq!(record.analyses[0].judgement.verdict, Some(Verdict::Fail));
    assert_eq!(account.managed_serving("shop"), Some(before), "all traffic on the old revision");
    assert_eq!(account.calls(Op::DeploymentStop), 0, "ECS rolled back at the hook: nothing to stop");
}

#[tokio::test(start_paused = true)]
async fn a_revision_failing_at_the_test_listener_never_gets_production_traffic() {
    let account = account(ManagedConfig::default());
    let pipeline = builder(&account, analysed()).build().unwrap();
    let broken = account.push("main", "Broken", "Ada").unwrap();
    account.set_behavior(&broken.commit, Behavior::default().health(Health::Unhealthy));
    let before = initial(&account);
    let record = pipeline.run(broken).await.unwrap();
    let Outcome::Failed { stage, reason, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Verify, "{reason}");
    assert!(reason.contains("test listener"), "{reason}");
    assert_eq!(hooks(&record), vec![(LifecycleStage::PostTestTrafficShift, 0, HookAction::Rollback)]);
    assert!(record.analyses.is_empty());
    assert_eq!(account.managed_serving("shop"), Some(before));
}

#[tokio::test(start_paused = true)]
async fn ecs_rollbacks_by_alarm_circuit_breaker_and_hook_timeout_fail_the_execution_truthfully() {
    // An alarm in ALARM during the production shift: ECS rolls back by itself.
    let account = account(ManagedConfig::default().alarms(vec!["shop-5xx".to_owned()]).pause_hooks(vec![]));
    let pipeline = builder(&account, EcsManaged::default()).build().unwrap();
    account.set_alarm("shop-5xx", true);
    let before = initial(&account);
    let record = pipeline.run(account.push("main", "Alarmed", "Ada").unwrap()).await.unwrap();
    let Outcome::Failed { stage, reason, recovery } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Rollout);
    assert!(reason.contains("ROLLBACK_SUCCESSFUL") && reason.contains("shop-5xx"), "{reason}");
    assert!(matches!(recovery, Recovery::ServiceRolledBack { .. }), "{recovery:?}");
    assert_eq!(account.managed_serving("shop"), Some(before.clone()));

    // Tasks that crash: the circuit breaker rolls back before any traffic moved.
    account.set_alarm("shop-5xx", false);
    let crashing = account.push("main", "Crashes", "Ada").unwrap();
    account.set_behavior(&crashing.commit, Behavior::default().crashing(true));
    let record = pipeline.run(crashing).await.unwrap();
    let Outcome::Failed { reason, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert!(reason.contains("circuit breaker"), "{reason}");
    assert_eq!(account.managed_serving("shop"), Some(before.clone()));

    // A hook that times out before the pipeline decides (the analysis outlasts it): ECS's timeout
    // action (ROLLBACK) wins, and the execution says so.
    let account = self::account(ManagedConfig::default().hook_timeout(Duration::from_secs(120)));
    let slow_analysis = EcsManaged::default().analysis(Analysis::default().min_intervals(5));
    let pipeline = builder(&account, slow_analysis).build().unwrap();
    let record = pipeline.run(account.push("main", "Slow to judge", "Ada").unwrap()).await.unwrap();
    let Outcome::Failed { reason, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert!(reason.contains("timed out"), "{reason}");
    assert_eq!(record.managed.as_ref().unwrap().state, Some(ManagedState::RollbackSuccessful));
}

#[tokio::test(start_paused = true)]
async fn cancelling_during_the_deployment_stops_it_and_ecs_rolls_back() {
    let account = account(ManagedConfig::default());
    let pipeline = builder(&account, analysed()).build().unwrap();
    let before = initial(&account);
    let revision = account.push("main", "Cancelled", "Ada").unwrap();
    let cancel = sendy_cd::CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        // Cancel once the deployment is past its test listener check, while ECS shifts traffic.
        tokio::time::sleep(Duration::from_secs(900)).await;
        canceller.cancel();
    });
    let record = pipeline.run_until_cancelled(revision, &cancel).await.unwrap();
    let Outcome::Cancelled { recovery, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert!(matches!(recovery, Recovery::ServiceRolledBack { .. }), "{recovery:?}");
    assert_eq!(account.calls(Op::DeploymentStop), 1);
    assert!(record.steps.iter().any(|s| s.step == Step::StopDeployment));
    assert_eq!(record.managed.as_ref().unwrap().state, Some(ManagedState::Stopped));
    assert_eq!(account.managed_serving("shop"), Some(before));
}

#[tokio::test(start_paused = true)]
async fn linear_and_blue_green_shift_as_configured_and_history_rolls_back_to_any_revision() {
    let cfg = ManagedConfig::default().shift(TrafficShift::Linear { step: 25, bake: Duration::from_secs(120) });
    let account = account(cfg);
    let pipeline = builder(&account, EcsManaged::default()).build().unwrap();
    let record = pipeline.run(account.push("main", "Linear", "Ada").unwrap()).await.unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded);
    let shares: Vec<u8> = hooks(&record)
        .into_iter()
        .filter(|(s, ..)| *s == LifecycleStage::PreProductionTrafficShift)
        .map(|(_, p, _)| p)
        .collect();
    assert_eq!(shares, vec![0, 25, 50, 75]);

    // The history names every revision, newest first; rolling back to the first one is a managed
    // deployment of it, pinned.
    let deployer = account.managed_deployer("shop").unwrap();
    let history = deployer.history().await.unwrap();
    assert_eq!(history.len(), 2);
    let first = history.last().unwrap().clone();
    let rollout = deployer.roll_back_to(&first.arn).await.unwrap();
    assert_eq!(Some(&rollout.image), first.image.as_ref());
    assert_eq!(deployer.roll_back_to(&first.arn).await.unwrap(), rollout, "a retry pins the same deployment");
    let mut status = deployer.progress(&rollout).await.unwrap();
    while !status.state.is_final() {
        if let Some(hook) = &status.paused {
            deployer.decide(&rollout, &hook.id, HookAction::Continue).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
        status = deployer.progress(&rollout).await.unwrap();
    }
    assert_eq!(status.state, ManagedState::Successful);
    assert_eq!(account.managed_serving("shop").as_ref(), first.image.as_ref());
    assert!(matches!(deployer.status(&rollout).await.unwrap(), sendy_cd::RolloutStatus::Completed { .. }));
    let unknown = deployer.roll_back_to("arn:aws:ecs:us-east-1:123456789012:service-revision/nope").await;
    assert!(matches!(unknown, Err(Error::NotFound { .. })));
}

#[tokio::test(start_paused = true)]
async fn bad_configurations_are_refused_before_any_call() {
    let account = account(ManagedConfig::default());
    // Two environments, or a DNS switch: ECS moves the traffic of one service.
    account.create_environment("blue").unwrap();
    let two = builder(&account, EcsManaged::default()).environment(account.environment("blue").unwrap()).build();
    assert!(matches!(two, Err(Error::InvalidConfig(m)) if m.contains("exactly one environment")));
    // An environment without a managed deployer.
    let plain = Pipeline::builder()
        .image_builder(Arc::new(account.image_builder()))
        .environment(account.environment("blue").unwrap())
        .strategy(Strategy::EcsManaged(EcsManaged::default()))
        .build();
    assert!(matches!(plain, Err(Error::InvalidConfig(m)) if m.contains("managed deployer")));
    // A stack that sets the image would start a deployment the pipeline did not pin.
    let env = account.managed_environment("shop").unwrap().image_parameter(Some("ImageUri")).build().unwrap();
    let image_param = Pipeline::builder()
        .image_builder(Arc::new(account.image_builder()))
        .environment(env)
        .strategy(Strategy::EcsManaged(EcsManaged::default()))
        .build();
    assert!(matches!(image_param, Err(Error::InvalidConfig(m)) if m.contains("image_parameter")));
    // An analysis without metrics.
    let no_metrics = Pipeline::builder()
        .image_builder(Arc::new(account.image_builder()))
        .environment(account.managed_environment("shop").unwrap().build().unwrap())
        .strategy(Strategy::EcsManaged(analysed()))
        .build();
    assert!(matches!(no_metrics, Err(Error::InvalidConfig(m)) if m.contains("metric source")));
    // ECS's own rules for the managed service.
    for bad in [
        ManagedConfig::default().shift(TrafficShift::Canary { percent: 0, bake: Duration::ZERO }),
        ManagedConfig::default().shift(TrafficShift::Linear { step: 100, bake: Duration::ZERO }),
        ManagedConfig::default().pause_hooks(vec![LifecycleStage::ProductionTrafficShift]),
        ManagedConfig::default().hook_timeout(Duration::ZERO),
    ] {
        assert!(matches!(account.create_managed_service("other", bad), Err(Error::InvalidConfig(_))));
    }
    assert_eq!(Op::ALL.iter().map(|op| account.calls(*op)).sum::<u32>(), 0, "nothing was called");
}

#[tokio::test(start_paused = true)]
async fn a_check_that_fails_after_ecs_went_on_without_it_still_puts_the_old_revision_back() {
    // The hooks time out after two minutes and ECS then continues: the analysis (five intervals at
    // least) outlasts the hook, ECS shifts everything to the slow revision, and the failed check
    // must still end with the old revision serving.
    let cfg = ManagedConfig::default().hook_timeout(Duration::from_secs(120)).timeout_action(HookAction::Continue);
    let account = account(cfg);
    let pipeline =
        builder(&account, EcsManaged::default().analysis(Analysis::default().min_intervals(5))).build().unwrap();
    let slow = account.push("main", "Slow checkout", "Ada").unwrap();
    account.set_behavior(&slow.commit, Behavior::default().traffic(Traffic::default().p99_times(3.0)));
    let before = initial(&account);
    let record = pipeline.run(slow).await.unwrap();
    let Outcome::Failed { recovery, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert!(matches!(recovery, Recovery::ServiceRolledBack { .. }), "{recovery:?}");
    assert_eq!(account.managed_serving("shop"), Some(before), "{:#?}", record.managed);
}

/// Dropped part-way (the process died): resumed forward, the same service deployment is followed
/// (never a second one) and its paused hooks are decided again by the checks; settled backward, it
/// is stopped and ECS rolls it back.
#[tokio::test(start_paused = true)]
async fn an_interrupted_managed_deployment_is_resumed_on_the_same_deployment_or_stopped() {
    for (forward, slow) in [(true, false), (true, true), (false, false)] {
        let account = account(ManagedConfig::default());
        let pipeline = builder(&account, analysed()).resume_forward(forward).build().unwrap();
        let revision = account.push("main", "Interrupted", "Ada").unwrap();
        if slow {
            account.set_behavior(&revision.commit, Behavior::default().traffic(Traffic::default().p99_times(3.0)));
        }
        let before = initial(&account);
        // Past the build, the stack and the test listener: ECS holds the canary step.
        let dropped = tokio::time::timeout(Duration::from_secs(1000), pipeline.run(revision.clone())).await;
        assert!(dropped.is_err());
        let settled = pipeline.resume().await.unwrap();
        assert_eq!(settled.len(), 1);
        let record = &settled[0];
        let steps: Vec<_> = record.steps.iter().map(|s| (s.step, s.started_ms, s.detail.clone())).collect();
        assert_eq!(account.calls(Op::Deploy), 1, "one service deployment, followed after the resume: {steps:#?}");
        match (forward, slow) {
            (true, false) => {
                assert_eq!(record.outcome, Outcome::Succeeded, "{:#?}", record.steps);
                assert_eq!(account.managed_serving("shop").unwrap().tag(), Some(revision.commit.as_str()));
                let h = hooks(record);
                assert_eq!(h.last().unwrap(), &(LifecycleStage::PostProductionTrafficShift, 100, HookAction::Continue));
            }
            (true, true) => {
                assert!(matches!(&record.outcome, Outcome::Failed { .. }), "{:?}", record.outcome);
                assert_eq!(account.managed_serving("shop"), Some(before));
                assert_eq!(hooks(record).last().unwrap().2, HookAction::Rollback);
            }
            _ => {
                let Outcome::Interrupted { recovery, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
                assert!(matches!(recovery, Recovery::ServiceRolledBack { .. }), "{recovery:?}");
                assert_eq!(account.calls(Op::DeploymentStop), 1);
                assert_eq!(account.managed_serving("shop"), Some(before));
            }
        }
        assert!(record.resumed_by.is_some());
    }
}

/// The crash drill for ECS-managed traffic: a run dies after each of its journal writes in turn (the
/// store refuses every write after that, as a process killed there leaves it); a new pipeline on the
/// same SQLite file resumes it, forward for a healthy revision and for one that fails under
/// production traffic, and backward. Each time: the record complete, one build, at most one service
/// deployment of the revision, no managed deployment left under way, and production traffic only on
/// a revision that passed its checks.
#[tokio::test(start_paused = true)]
async fn a_managed_run_that_dies_at_any_step_is_resumed_by_the_next_process() {
    let mut points = 0;
    for (forward, health) in [(true, Health::Healthy), (true, Health::UnhealthyUnderTraffic), (false, Health::Healthy)]
    {
        let total = managed_die_and_resume(forward, health, usize::MAX).await;
        assert!(total > 20, "{total}");
        for saves in 1..total {
            managed_die_and_resume(forward, health, saves).await;
        }
        points += total - 1;
        eprintln!("ecs_managed forward={forward} {health:?}: died after each of {} journal writes", total - 1);
    }
    eprintln!("kill points: {points}");
}

async fn managed_die_and_resume(forward: bool, health: Health, saves: usize) -> usize {
    use sendy_cd::store::sqlite::SqliteStore;
    use sendy_cd::store::{DyingStore, ManualClock};
    let dir = sendy_cd_tests::scratch("managed-drill");
    let path = dir.path().join("state.db");
    let clock = ManualClock::new(jiff::Timestamp::from_second(2_000_000_000).unwrap());
    let account = account(ManagedConfig::default());
    let before = initial(&account);
    let dying = Arc::new(DyingStore::new(SqliteStore::open_with(&path, Arc::new(clock.clone())).unwrap(), saves));
    let first = builder(&account, analysed()).store(Arc::clone(&dying)).build().unwrap();
    let revision = account.push("main", "a change", "a").unwrap();
    account.set_behavior(&revision.commit, Behavior::default().health(health));
    let mut run = Box::pin(first.run(revision.clone()));
    let ran = loop {
        tokio::select! {
            r = &mut run => break Some(r.unwrap()),
            () = tokio::time::sleep(Duration::from_secs(1)) => if dying.died() { break None; },
        }
    };
    let serves_new = |account: &Account| {
        account.managed_serving("shop").and_then(|i| i.tag().map(str::to_owned)) == Some(revision.commit.to_string())
    };
    if let Some(record) = ran {
        assert_eq!(record.outcome == Outcome::Succeeded, health == Health::Healthy);
        assert_eq!(serves_new(&account), health == Health::Healthy);
        return usize::MAX - dying.writes_left();
    }
    drop(run);
    drop(first);
    tokio::time::sleep(Duration::from_secs(360)).await;
    clock.advance(Duration::from_secs(120));
    let store = SqliteStore::open_with(&path, Arc::new(clock.clone())).unwrap();
    let second = builder(&account, analysed()).store(store).resume_forward(forward).build().unwrap();
    let settled = second.resume().await.unwrap();
    let records = second.executions(10).await.unwrap();
    assert_eq!(records.len(), 1, "{saves}");
    let record = &records[0];
    assert!(record.is_complete(), "{saves}: {record:?}");
    assert!(account.builds().len() <= 1, "{saves}: one build");
    // A deploy whose answer the journal lacks is made again, and pins the deployment the first made.
    let d = account.managed_deployer("shop").unwrap();
    let revisions = d.history().await.unwrap();
    assert!(revisions.len() <= 2, "{saves}: one service revision registered for the commit: {revisions:?}");
    if let Some(m) = &record.managed {
        let rollout =
            sendy_cd::Rollout { deployment_id: m.deployment.clone(), image: revision_image(&account, &revision) };
        assert!(d.progress(&rollout).await.unwrap().state.is_final(), "{saves}: no managed deployment left under way");
    }
    let succeeded = record.outcome == Outcome::Succeeded;
    if settled.is_empty() {
        assert!(record.outcome != Outcome::Running, "{saves}");
    } else if forward {
        assert!(record.resumed_by.as_deref().is_some_and(|r| r.contains("resumed forward")), "{saves}");
        assert_eq!(succeeded, health == Health::Healthy, "{saves}: {:?}", record.outcome);
    } else {
        assert!(matches!(record.outcome, Outcome::Interrupted { .. }), "{saves}: {:?}", record.outcome);
    }
    // Production traffic on the new revision only when the execution succeeded (it passed every
    // check); else the old one serves.
    assert_eq!(serves_new(&account), succeeded, "{saves}: {:?}", record.outcome);
    if !succeeded {
        assert_eq!(account.managed_serving("shop"), Some(before.clone()), "{saves}");
    }
    let next = second.run(account.push("main", "next", "a").unwrap()).await.unwrap();
    assert_eq!(next.outcome, Outcome::Succeeded, "{saves}");
    0
}

fn revision_image(account: &Account, revision: &sendy_cd::Revision) -> ImageRef {
    account.image_for(&revision.commit).unwrap_or_else(|_| ImageRef::parse("app:unbuilt").unwrap())
}

/// A `ContinueServiceDeployment` whose answer was lost (it took effect) is not sent again: the hook
/// waits no more, which the retry reads first (ECS refuses a decision for a hook not awaiting one).
#[tokio::test(start_paused = true)]
async fn a_hook_decision_whose_answer_was_lost_is_not_sent_again() {
    use sendy_cd::memory::{Fault, Injection};
    let account = account(ManagedConfig::default());
    let pipeline = builder(&account, analysed()).build().unwrap();
    account.inject(Injection::new(Op::HookDecide, Fault::LoseAnswer).times(1));
    let record = pipeline.run(account.push("main", "lost answer", "Ada").unwrap()).await.unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.outcome);
    assert_eq!(hooks(&record).len(), 4);
    assert_eq!(account.calls(Op::HookDecide), 4, "one call per hook: the lost one was found applied");
}
