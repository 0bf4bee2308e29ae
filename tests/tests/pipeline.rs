//! The pipeline on the simulated account, on tokio's paused clock: every strategy, a failure at every
//! stage, cancellation, manual rollback, watching a branch, events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sendy_cd::memory::{Account, Behavior, Fault, Health, Injection, Op, SimConfig};
use sendy_cd::{
    Canary, CancellationToken, Error, Event, EventKind, ExecutionKind, ExecutionRecord, JsonLinesSink, Outcome,
    Pipeline, Recovery, SetIdentifier, Stage, StageOutcome, Step, StepOutcome, Strategy,
};
use sendy_cd_tests::{account, account_with, assert_invariants, canary, pipeline, pipeline_builder, serving};

fn id(s: &str) -> SetIdentifier {
    SetIdentifier::parse(s).unwrap()
}

fn stages(record: &ExecutionRecord) -> Vec<Stage> {
    record.stages.iter().map(|s| s.stage).collect()
}

async fn run_checked(account: &Account, pipeline: &Pipeline, revision: sendy_cd::Revision) -> ExecutionRecord {
    let before = serving(account);
    let record = pipeline.run(revision).await.expect("run");
    assert_invariants(account, &record, &before);
    record
}

#[tokio::test(start_paused = true)]
async fn blue_green_deploys_to_the_idle_environment_and_keeps_the_previous_one() {
    let account = account();
    // Told how long stages usually take, the pipeline notices their end within seconds from the first run.
    let pipeline = pipeline_builder(&account, Strategy::BlueGreen)
        .expected_duration(Stage::Build, Duration::from_secs(300))
        .expected_duration(Stage::Stack, Duration::from_secs(180))
        .expected_duration(Stage::Rollout, Duration::from_secs(120))
        .expected_duration(Stage::Traffic, Duration::from_secs(30))
        .build()
        .unwrap();
    let initial = account.serving("blue");

    let first = account.push("main", "Add checkout", "Ada").unwrap();
    let record = run_checked(&account, &pipeline, first.clone()).await;
    assert_eq!(record.outcome, Outcome::Succeeded);
    assert_eq!(record.target.as_ref().unwrap().as_str(), "green");
    assert_eq!(record.previous.as_ref().unwrap().as_str(), "blue");
    assert_eq!(
        stages(&record),
        vec![Stage::Build, Stage::Stack, Stage::Rollout, Stage::Verify, Stage::Traffic, Stage::Verify]
    );
    assert_eq!(account.weights().unwrap().weight(&id("green")), 100);
    assert_eq!(account.serving("blue"), initial, "the previous environment is untouched");
    let image = &record.image.as_ref().unwrap().image;
    assert_eq!(image.tag(), Some(first.commit.as_str()));
    assert!(image.digest().is_some());
    assert_eq!(account.stack_parameters("app-green").unwrap().get("ImageUri"), Some(image.to_string().as_str()));
    assert_eq!(record.verifications.len(), 2);
    assert!(record.verifications.iter().all(|v| v.passed && v.report.successes == 3));

    // Realistic simulated durations: build 5 min, stack 3 min, rollout 2 min, DNS 30 s + TTL 60 s.
    let ms = |stage| record.stage_duration_ms(stage);
    assert!((300_000..303_000).contains(&ms(Stage::Build)), "build {}", ms(Stage::Build));
    assert!((180_000..183_000).contains(&ms(Stage::Stack)), "stack {}", ms(Stage::Stack));
    // The stack update rolls the service out when it ends (as CloudFormation does with the image
    // parameter), so the rollout stage follows a deployment that started as the stack stage noticed
    // the update's end: the two together take the update and the rollout, plus at most one poll.
    let stack_and_rollout = ms(Stage::Stack) + ms(Stage::Rollout);
    assert!((300_000..303_000).contains(&stack_and_rollout), "stack + rollout {stack_and_rollout}");
    assert!(ms(Stage::Rollout) <= 123_000, "rollout {}", ms(Stage::Rollout));
    assert!((90_000..93_000).contains(&ms(Stage::Traffic)), "traffic {}", ms(Stage::Traffic));

    // The second revision goes to blue, the now idle environment.
    let second = account.push("main", "Fix checkout", "Ada").unwrap();
    let record = run_checked(&account, &pipeline, second).await;
    assert_eq!(record.outcome, Outcome::Succeeded);
    assert_eq!(record.target.as_ref().unwrap().as_str(), "blue");
    assert_eq!(account.weights().unwrap().weight(&id("blue")), 100);
    assert_eq!(account.serving("green").unwrap().tag(), Some(first.commit.as_str()));
    assert_eq!(pipeline.history().len(), 2);

    let json = serde_json::to_string(&record).unwrap();
    let back: ExecutionRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, record, "records round-trip through JSON");
}

#[tokio::test(start_paused = true)]
async fn the_pipeline_learns_stage_durations_and_polls_less() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let calls = |r: &ExecutionRecord, step| r.steps.iter().find(|s| s.step == step).map(|s| s.calls).unwrap();
    let first = run_checked(&account, &pipeline, account.push("main", "one", "a").unwrap()).await;
    let second = run_checked(&account, &pipeline, account.push("main", "two", "a").unwrap()).await;
    // Without a hint a 5-minute build is polled on a growing interval; with one, sparsely then densely.
    assert!(calls(&second, Step::WaitBuild) <= 40, "{}", calls(&second, Step::WaitBuild));
    let lag = |r: &ExecutionRecord| r.stage_duration_ms(Stage::Build) - 300_000;
    // Learned, the build ends inside the dense window, where polls are at most 2.5 s + 10 % jitter apart.
    assert!(
        lag(&second) <= 2_760,
        "a learned build is noticed within one dense interval, not {} ms late",
        lag(&second)
    );
    // Unhinted, the first run is noticed at most one polling interval (20 s at most, jittered) late.
    assert!(lag(&first) <= 22_000, "{}", lag(&first));
}

#[tokio::test(start_paused = true)]
async fn all_at_once_updates_the_live_environment_in_place() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::AllAtOnce);
    let weights = account.weights().unwrap();
    let revision = account.push("main", "In place", "Ada").unwrap();
    let record = run_checked(&account, &pipeline, revision.clone()).await;
    assert_eq!(record.outcome, Outcome::Succeeded);
    assert_eq!(record.target.as_ref().unwrap().as_str(), "blue", "the live environment");
    assert_eq!(stages(&record), vec![Stage::Build, Stage::Stack, Stage::Rollout, Stage::Verify]);
    assert_eq!(account.weights().unwrap(), weights, "no DNS change");
    assert_eq!(account.serving("blue").unwrap().tag(), Some(revision.commit.as_str()));
}

#[tokio::test(start_paused = true)]
async fn all_at_once_works_with_a_single_environment_and_no_dns() {
    let account = Account::new();
    account.create_environment("prod").unwrap();
    let pipeline = Pipeline::builder()
        .image_builder(Arc::new(account.image_builder()))
        .environment(account.environment("prod").unwrap())
        .strategy(Strategy::AllAtOnce)
        .build()
        .unwrap();
    let revision = account.push("main", "Solo", "Ada").unwrap();
    let record = pipeline.run(revision.clone()).await.unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded);
    assert!(record.is_complete());
    assert_eq!(account.serving("prod").unwrap().tag(), Some(revision.commit.as_str()));
}

#[tokio::test(start_paused = true)]
async fn canary_moves_traffic_in_steps_with_a_check_at_each() {
    let account = account();
    let pipeline = pipeline(&account, canary());
    let mut events = pipeline.subscribe();
    let record = run_checked(&account, &pipeline, account.push("main", "Canary", "Ada").unwrap()).await;
    assert_eq!(record.outcome, Outcome::Succeeded);
    let mut shifts = vec![];
    while let Some(event) = events.try_recv() {
        if let EventKind::TrafficShifted { weights } = event.kind {
            shifts.push((weights.weight(&id("green")), weights.weight(&id("blue"))));
        }
    }
    assert_eq!(shifts, vec![(10, 90), (50, 50), (100, 0)]);
    let phases: Vec<_> = record.verifications.iter().map(|v| v.phase.as_str()).collect();
    assert_eq!(phases, vec!["before traffic", "canary 10%", "canary 50%", "canary 100%"]);
    assert_eq!(record.steps.iter().filter(|s| s.step == Step::Bake).count(), 2, "bake at 10% and 50%");
}

#[tokio::test(start_paused = true)]
async fn a_failed_build_changes_nothing() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let revision = account.push("main", "Broken build", "Ada").unwrap();
    account.set_behavior(&revision.commit, Behavior::default().build_failure(Some("npm test failed".into())));
    let record = run_checked(&account, &pipeline, revision).await;
    let Outcome::Failed { stage, reason, recovery } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Build);
    assert!(reason.contains("npm test failed") && reason.contains("BUILD"), "{reason}");
    assert_eq!(*recovery, Recovery::NotNeeded);
    assert_eq!(stages(&record), vec![Stage::Build]);
}

#[tokio::test(start_paused = true)]
async fn a_rolled_back_stack_update_changes_nothing() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let params_before = account.stack_parameters("app-green").unwrap();
    let revision = account.push("main", "Bad template", "Ada").unwrap();
    account.set_behavior(&revision.commit, Behavior::default().stack_failure(Some("Invalid memory".into())));
    let record = run_checked(&account, &pipeline, revision).await;
    let Outcome::Failed { stage, reason, recovery } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Stack);
    assert!(reason.contains("rolled back") && reason.contains("TaskDefinition: Invalid memory"), "{reason}");
    assert_eq!(*recovery, Recovery::NotNeeded);
    assert_eq!(account.stack_parameters("app-green").unwrap(), params_before, "the stack rolled back");
}

#[tokio::test(start_paused = true)]
async fn a_circuit_breaker_rollback_is_a_failed_rollout_not_a_success() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let revision = account.push("main", "Crashes on start", "Ada").unwrap();
    account.set_behavior(&revision.commit, Behavior::default().crashing(true));
    let record = run_checked(&account, &pipeline, revision).await;
    let Outcome::Failed { stage, reason, recovery } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Rollout);
    assert!(reason.contains("circuit breaker") && reason.contains("rolled back"), "{reason}");
    assert_eq!(*recovery, Recovery::NotNeeded, "green never had traffic");
    assert_eq!(account.weights().unwrap().weight(&id("blue")), 100);
}

#[tokio::test(start_paused = true)]
async fn a_failed_check_before_traffic_never_moves_traffic() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let revision = account.push("main", "Always 500", "Ada").unwrap();
    account.set_behavior(&revision.commit, Behavior::default().health(Health::Unhealthy));
    let record = run_checked(&account, &pipeline, revision).await;
    let Outcome::Failed { stage, reason, recovery } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Verify);
    assert!(reason.contains("answered 500"), "{reason}");
    assert_eq!(*recovery, Recovery::NotNeeded);
    assert!(!stages(&record).contains(&Stage::Traffic));
    assert!(!record.verifications[0].passed);
    assert_eq!(record.verifications[0].report.failures, 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_check_after_the_switch_sends_all_traffic_back() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let revision = account.push("main", "Fails under load", "Ada").unwrap();
    account.set_behavior(&revision.commit, Behavior::default().health(Health::UnhealthyUnderTraffic));
    let record = run_checked(&account, &pipeline, revision).await;
    let Outcome::Failed { stage, recovery, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Verify);
    assert_eq!(*recovery, Recovery::TrafficRestored { to: "blue".parse().unwrap() });
    assert_eq!(
        stages(&record),
        vec![Stage::Build, Stage::Stack, Stage::Rollout, Stage::Verify, Stage::Traffic, Stage::Verify, Stage::Rollback]
    );
    assert_eq!(account.weights().unwrap().weight(&id("blue")), 100);
    assert_eq!(record.traffic_after.as_ref().unwrap().weight(&id("blue")), 100);
}

#[tokio::test(start_paused = true)]
async fn a_canary_that_fails_at_its_first_step_goes_back_at_once() {
    let account = account();
    let pipeline = pipeline(&account, canary());
    let revision = account.push("main", "Fails under load", "Ada").unwrap();
    account.set_behavior(&revision.commit, Behavior::default().health(Health::UnhealthyUnderTraffic));
    let record = run_checked(&account, &pipeline, revision).await;
    let Outcome::Failed { stage, reason, recovery } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Verify);
    assert!(reason.contains("canary 10%"), "{reason}");
    assert_eq!(*recovery, Recovery::TrafficRestored { to: "blue".parse().unwrap() });
    assert!(record.verifications.iter().all(|v| v.phase != "canary 50%"), "no later step ran");
}

#[tokio::test(start_paused = true)]
async fn a_failed_dns_change_is_undone_or_never_happened() {
    // The weight change is refused once: traffic never moved.
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    account.inject(Injection::new(Op::DnsSetWeights, Fault::Fail).times(1));
    let record = run_checked(&account, &pipeline, account.push("main", "x", "a").unwrap()).await;
    let Outcome::Failed { stage, recovery, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Traffic);
    assert_eq!(*recovery, Recovery::NotNeeded);

    // The change is made but never confirmed applied: it is reverted.
    let account = sendy_cd_tests::account();
    let pipeline = pipeline_builder(&account, Strategy::BlueGreen)
        .poll_policy(sendy_cd::wait::PollPolicy::default().max_consecutive_errors(2))
        .build()
        .unwrap();
    account.inject(Injection::new(Op::DnsChangeStatus, Fault::Hang).times(3));
    let record = run_checked(&account, &pipeline, account.push("main", "y", "a").unwrap()).await;
    let Outcome::Failed { stage, recovery, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Traffic);
    assert_eq!(*recovery, Recovery::TrafficRestored { to: "blue".parse().unwrap() });
}

#[tokio::test(start_paused = true)]
async fn a_stage_past_its_deadline_fails_with_a_timeout() {
    let account = account_with(SimConfig::default().build_duration(Duration::from_secs(7200)));
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let record = run_checked(&account, &pipeline, account.push("main", "slow", "a").unwrap()).await;
    let Outcome::Failed { stage, reason, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Build);
    assert!(reason.contains("did not finish within 3600s"), "{reason}");
    assert!(record.steps.iter().any(|s| s.step == Step::StopBuild), "the build is stopped");
}

#[tokio::test(start_paused = true)]
async fn all_at_once_rolls_the_live_service_back_when_its_check_fails() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::AllAtOnce);
    let initial = account.serving("blue");
    let revision = account.push("main", "Always 500", "Ada").unwrap();
    account.set_behavior(&revision.commit, Behavior::default().health(Health::Unhealthy));
    let record = run_checked(&account, &pipeline, revision).await;
    let Outcome::Failed { stage, recovery, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Verify);
    assert_eq!(*recovery, Recovery::ServiceRolledBack { revision: "app-blue:1".into() });
    assert_eq!(account.serving("blue"), initial);

    let crashing = account.push("main", "Crashes", "Ada").unwrap();
    account.set_behavior(&crashing.commit, Behavior::default().crashing(true));
    let record = run_checked(&account, &pipeline, crashing).await;
    let Outcome::Failed { stage, recovery, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Rollout);
    assert!(matches!(recovery, Recovery::ServiceRolledBack { .. }), "the circuit breaker rolled back: {recovery:?}");
    assert!(!stages(&record).contains(&Stage::Rollback), "nothing more to undo");
}

#[tokio::test(start_paused = true)]
async fn throttling_and_transient_errors_are_retried() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    account.inject(Injection::new(Op::BuildStart, Fault::Throttle).times(2));
    account.inject(Injection::new(Op::BuildStatus, Fault::Throttle).times(4));
    account.inject(Injection::new(Op::Deploy, Fault::Transient).times(1));
    account.inject(Injection::new(Op::RolloutStatus, Fault::Hang).times(1));
    account.inject(Injection::new(Op::Probe, Fault::Transient).times(1));
    let record = run_checked(&account, &pipeline, account.push("main", "x", "a").unwrap()).await;
    assert_eq!(record.outcome, Outcome::Succeeded);
    let step = |s| record.steps.iter().find(|r| r.step == s).unwrap();
    assert_eq!(step(Step::StartBuild).calls, 3, "two throttled attempts, then one that worked");
    assert_eq!(step(Step::Deploy).calls, 2);
    assert_eq!(account.calls(Op::BuildStart), 3);
}

#[tokio::test(start_paused = true)]
async fn a_non_retryable_error_fails_the_stage_at_once() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    account.inject(Injection::new(Op::StackPlan, Fault::Fail));
    let record = run_checked(&account, &pipeline, account.push("main", "x", "a").unwrap()).await;
    let Outcome::Failed { stage, reason, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Stack);
    assert!(reason.contains("injected failure of StackPlan"), "{reason}");
    assert_eq!(account.calls(Op::StackPlan), 1, "not retried");
}

#[tokio::test(start_paused = true)]
async fn cancelling_during_the_build_stops_it() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let before = serving(&account);
    let cancel = CancellationToken::new();
    let task = {
        let (pipeline, cancel) = (pipeline.clone(), cancel.clone());
        let revision = account.push("main", "x", "a").unwrap();
        tokio::spawn(async move { pipeline.run_until_cancelled(revision, &cancel).await })
    };
    tokio::time::sleep(Duration::from_secs(60)).await;
    cancel.cancel();
    let record = task.await.unwrap().unwrap();
    assert_invariants(&account, &record, &before);
    assert_eq!(record.outcome, Outcome::Cancelled { stage: Some(Stage::Build), recovery: Recovery::NotNeeded });
    let stop = record.steps.iter().find(|s| s.step == Step::StopBuild).expect("the build is stopped");
    assert_eq!(stop.outcome, StepOutcome::Done);
    assert_eq!(account.calls(Op::BuildStop), 1);
}

#[tokio::test(start_paused = true)]
async fn cancelling_after_traffic_moved_sends_it_back() {
    let account = account();
    let pipeline = pipeline(&account, canary());
    let before = serving(&account);
    let cancel = CancellationToken::new();
    let mut events = pipeline.subscribe();
    let task = {
        let (pipeline, cancel) = (pipeline.clone(), cancel.clone());
        let revision = account.push("main", "x", "a").unwrap();
        tokio::spawn(async move { pipeline.run_until_cancelled(revision, &cancel).await })
    };
    // Cancel during the first bake, with 10% of the traffic on green.
    while let Some(event) = events.recv().await {
        if matches!(event.kind, EventKind::StepStarted { step: Step::Bake, .. }) {
            break;
        }
    }
    assert_eq!(account.weights().unwrap().weight(&id("green")), 10);
    cancel.cancel();
    let record = task.await.unwrap().unwrap();
    assert_invariants(&account, &record, &before);
    assert_eq!(
        record.outcome,
        Outcome::Cancelled {
            stage: Some(Stage::Traffic),
            recovery: Recovery::TrafficRestored { to: "blue".parse().unwrap() }
        }
    );
    assert_eq!(account.weights().unwrap().weight(&id("green")), 0);
}

/// Dropped during the build: the build is owed a stop, so the record stays unfinished and the next
/// run settles it first (stops the build), then deploys.
#[tokio::test(start_paused = true)]
async fn a_future_dropped_during_the_build_is_settled_by_the_next_run() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let revision = account.push("main", "x", "a").unwrap();
    let dropped = tokio::time::timeout(Duration::from_secs(60), pipeline.run(revision)).await;
    assert!(dropped.is_err(), "still building at 60 s");
    let left = pipeline.last_record().unwrap();
    assert_eq!(left.outcome, Outcome::Running, "left with its undo owed");
    assert_eq!(account.calls(sendy_cd::memory::Op::BuildStop), 0);
    let next = pipeline.run(account.push("main", "y", "a").unwrap()).await.unwrap();
    assert_eq!(next.outcome, Outcome::Succeeded);
    assert_eq!(account.calls(sendy_cd::memory::Op::BuildStop), 1, "the orphaned build was stopped");
    let settled = pipeline.executions(10).await.unwrap().into_iter().find(|r| r.id == left.id).unwrap();
    assert!(settled.is_complete(), "{settled:#?}");
    assert!(
        matches!(settled.outcome, Outcome::Interrupted { stage: Some(Stage::Build), recovery: Recovery::NotNeeded }),
        "{:?}",
        settled.outcome
    );
}

/// Dropped during the build, then run again with the same commit (a CI job restarted): the run
/// resumes the left execution forward, following the build it started (no second build, nothing
/// stopped), and returns that execution's record instead of deploying the commit twice.
#[tokio::test(start_paused = true)]
async fn running_the_same_commit_again_finishes_the_left_execution() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let revision = account.push("main", "x", "a").unwrap();
    let dropped = tokio::time::timeout(Duration::from_secs(60), pipeline.run(revision.clone())).await;
    assert!(dropped.is_err(), "still building at 60 s");
    let left = pipeline.last_record().unwrap();
    let record = pipeline.run(revision).await.unwrap();
    assert_eq!(record.id, left.id, "the left execution, finished; not a new one");
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.outcome);
    assert!(record.resumed_by.as_deref().is_some_and(|r| r.contains("resumed forward")), "{:?}", record.resumed_by);
    assert_eq!(account.builds().len(), 1, "one build of the commit");
    assert_eq!(account.calls(sendy_cd::memory::Op::BuildStop), 0);
    assert_eq!(pipeline.executions(10).await.unwrap().len(), 1);
    assert_eq!(account.weights().unwrap().weight(&id("green")), 100);
}

/// Running a commit the pipeline built before builds nothing: its image is deployed again, which
/// changes nothing while the live environment runs it; after another commit went live, it goes out
/// again (to the idle environment) without a build.
#[tokio::test(start_paused = true)]
async fn running_a_commit_built_before_never_builds_it_again() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let x = account.push("main", "x", "a").unwrap();
    let first = pipeline.run(x.clone()).await.unwrap();
    assert_eq!(first.outcome, Outcome::Succeeded);
    let again = pipeline.run(x.clone()).await.unwrap();
    assert_eq!(again.outcome, Outcome::Succeeded);
    assert!(again.stages.is_empty() || again.stages.iter().all(|s| s.stage != Stage::Build), "{:?}", again.stages);
    assert_eq!(account.builds().len(), 1);
    assert_eq!(account.weights().unwrap().weight(&id("green")), 100, "nothing moved");
    let y = account.push("main", "y", "a").unwrap();
    assert_eq!(pipeline.run(y).await.unwrap().outcome, Outcome::Succeeded);
    let back = pipeline.run(x).await.unwrap();
    assert_eq!(back.outcome, Outcome::Succeeded);
    assert_eq!(back.image.as_ref().map(|i| &i.image), first.image.as_ref().map(|i| &i.image));
    assert_eq!(account.builds().len(), 2, "x once, y once");
    assert_eq!(account.weights().unwrap().weight(&id("green")), 100, "x is live again, on green");
}

/// A canary dropped during its bake at 10 %, resumed: the bake is done again, the check at 10 %
/// runs, and the canary goes on to 100 %. The same with a revision that fails under traffic: the
/// check at 10 % fails and the traffic goes back to blue.
#[tokio::test(start_paused = true)]
async fn a_canary_resumed_mid_bake_checks_its_step_again_and_goes_on_or_goes_back() {
    for health in [Health::Healthy, Health::UnhealthyUnderTraffic] {
        let account = account();
        let strategy = Strategy::Canary(Canary::new([10, 50, 100], Duration::from_secs(300)));
        let pipeline = pipeline(&account, strategy);
        let revision = account.push("main", "canary", "a").unwrap();
        account.set_behavior(&revision.commit, Behavior::default().health(health));
        let before = serving(&account);
        // 800 s in: five minutes of build, three of stack, two of rollout, the switch to 10 % and part
        // of its five-minute bake.
        let dropped = tokio::time::timeout(Duration::from_secs(800), pipeline.run(revision)).await;
        assert!(dropped.is_err());
        assert_eq!(account.weights().unwrap().weight(&id("green")), 10, "dropped at 10 %");
        let settled = pipeline.resume().await.unwrap();
        assert_eq!(settled.len(), 1);
        let record = &settled[0];
        assert_invariants(&account, record, &before);
        let bakes: Vec<_> = record.steps.iter().filter(|s| s.step == Step::Bake).map(|s| s.detail.clone()).collect();
        assert!(bakes.iter().any(|d| d.as_deref().is_some_and(|d| d.contains("10% (resumed)"))), "{bakes:?}");
        let phases: Vec<_> = record.verifications.iter().map(|v| (v.phase.as_str(), v.passed)).collect();
        match health {
            Health::Healthy => {
                assert_eq!(record.outcome, Outcome::Succeeded);
                assert_eq!(
                    phases,
                    [("before traffic", true), ("canary 10%", true), ("canary 50%", true), ("canary 100%", true)]
                );
                assert_eq!(account.weights().unwrap().weight(&id("green")), 100);
            }
            _ => {
                assert!(
                    matches!(&record.outcome, Outcome::Failed { recovery: Recovery::TrafficRestored { to }, .. } if to.as_str() == "blue"),
                    "{:?}",
                    record.outcome
                );
                assert_eq!(phases, [("before traffic", true), ("canary 10%", false)]);
                assert_eq!(account.weights().unwrap().weight(&id("green")), 0);
            }
        }
    }
}

/// Dropped while nothing users could see had changed (the stack update of the idle environment): the
/// record is closed as cancelled.
#[tokio::test(start_paused = true)]
async fn dropping_the_future_closes_the_record() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let revision = account.push("main", "x", "a").unwrap();
    let dropped = tokio::time::timeout(Duration::from_secs(400), pipeline.run(revision)).await;
    assert!(dropped.is_err(), "still running at 400 s");
    let record = pipeline.last_record().unwrap();
    assert!(record.is_complete(), "{record:#?}");
    assert_eq!(record.outcome, Outcome::Cancelled { stage: Some(Stage::Stack), recovery: Recovery::NotNeeded });
    assert!(record.stages.iter().any(|s| s.outcome == StageOutcome::Cancelled));
    // The pipeline is free again.
    let next = pipeline.run(account.push("main", "y", "a").unwrap()).await.unwrap();
    assert_eq!(next.outcome, Outcome::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn executions_never_overlap() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let first = {
        let pipeline = pipeline.clone();
        let revision = account.push("main", "x", "a").unwrap();
        tokio::spawn(async move { pipeline.run(revision).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let err = pipeline.run(account.push("main", "y", "a").unwrap()).await.unwrap_err();
    let Error::LeaseHeld { holder, .. } = &err else { panic!("{err:?}") };
    assert!(holder.contains(&format!("pid {}", std::process::id())) && holder.contains("run"), "{holder}");
    assert_eq!(first.await.unwrap().unwrap().outcome, Outcome::Succeeded);
    // Once it ended, the lease is free.
    let next = pipeline.run(account.push("main", "z", "a").unwrap()).await.unwrap();
    assert_eq!(next.outcome, Outcome::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn weights_changed_by_someone_else_stop_the_switch() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let task = {
        let pipeline = pipeline.clone();
        let revision = account.push("main", "x", "a").unwrap();
        tokio::spawn(async move { pipeline.run(revision).await })
    };
    tokio::time::sleep(Duration::from_secs(60)).await;
    // An operator moves 10% to green by hand during the build.
    use sendy_cd::DnsSwitch;
    let split = sendy_cd::TrafficSplit::new([(id("blue"), 90), (id("green"), 10)]).unwrap();
    account.dns().set_weights(&split).await.unwrap();
    let record = task.await.unwrap().unwrap();
    let Outcome::Failed { stage, reason, recovery } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Traffic);
    assert!(reason.contains("weights changed"), "{reason}");
    assert_eq!(*recovery, Recovery::NotNeeded);
    assert_eq!(account.weights().unwrap(), split, "the operator's weights are left alone");
}

#[tokio::test(start_paused = true)]
async fn switch_back_and_redeploy_are_manual_rollbacks() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let first = account.push("main", "one", "a").unwrap();
    run_checked(&account, &pipeline, first.clone()).await; // green
    let second = account.push("main", "two", "a").unwrap();
    run_checked(&account, &pipeline, second.clone()).await; // blue
    assert_eq!(account.weights().unwrap().weight(&id("blue")), 100);

    let before = serving(&account);
    let record = pipeline.switch_back().await.unwrap();
    assert_invariants(&account, &record, &before);
    assert_eq!(record.kind, ExecutionKind::SwitchBack);
    assert_eq!(record.outcome, Outcome::Succeeded);
    assert_eq!(account.weights().unwrap().weight(&id("green")), 100, "back on green, which runs the first revision");
    assert!(!stages(&record).contains(&Stage::Build));

    // Green runs the first revision and has the traffic: redeploying it changes nothing.
    let record = pipeline.redeploy(&first.commit).await.unwrap();
    assert_eq!(record.kind, ExecutionKind::Redeploy);
    assert_eq!(record.outcome, Outcome::Succeeded);
    assert!(stages(&record).is_empty(), "nothing to do: {:?}", stages(&record));
    assert_eq!(record.target.as_ref().unwrap().as_str(), "green");
    assert_eq!(account.weights().unwrap().weight(&id("green")), 100);

    // Redeploying the second revision (which blue still runs) goes blue/green, without building.
    let record = pipeline.redeploy(&second.commit).await.unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded);
    assert!(!stages(&record).contains(&Stage::Build), "no rebuild");
    assert_eq!(record.target.as_ref().unwrap().as_str(), "blue");
    assert_eq!(account.serving("blue").unwrap().tag(), Some(second.commit.as_str()));
    assert_eq!(account.weights().unwrap().weight(&id("blue")), 100);

    let unknown = sendy_cd::CommitId::parse("f".repeat(40)).unwrap();
    assert!(matches!(pipeline.redeploy(&unknown).await.unwrap_err(), Error::NotFound { .. }));
}

#[tokio::test(start_paused = true)]
async fn switch_back_refuses_an_unhealthy_previous_environment() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    run_checked(&account, &pipeline, account.push("main", "good", "a").unwrap()).await; // green
    // Blue still runs what it ran, but no longer answers its health checks.
    account.inject(Injection::new(Op::Probe, Fault::Fail));
    let before = serving(&account);
    let record = pipeline.switch_back().await.unwrap();
    assert_invariants(&account, &record, &before);
    let Outcome::Failed { stage, recovery, .. } = &record.outcome else { panic!("{:?}", record.outcome) };
    assert_eq!(*stage, Stage::Verify);
    assert_eq!(*recovery, Recovery::NotNeeded);
    assert_eq!(account.weights().unwrap().weight(&id("green")), 100);
}

#[tokio::test(start_paused = true)]
async fn switch_back_refuses_an_environment_whose_revision_changed_since() {
    let account = account();
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let bad = account.push("main", "bad", "a").unwrap();
    account.set_behavior(&bad.commit, Behavior::default().health(Health::UnhealthyUnderTraffic));
    run_checked(&account, &pipeline, account.push("main", "good", "a").unwrap()).await; // green
    // Put another image on idle blue behind the pipeline's back: it was never verified.
    use sendy_cd::Deployer;
    let deployer = account.deployer("blue").unwrap();
    deployer.deploy(&account.image_for(&bad.commit).unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    let weights = account.weights().unwrap();
    let history = pipeline.history().len();
    let err = pipeline.switch_back().await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains("blue"), "{err}");
    assert_eq!(account.weights().unwrap(), weights, "nothing moved");
    assert_eq!(pipeline.history().len(), history, "refused before any execution started");
}

#[tokio::test(start_paused = true)]
async fn watch_deploys_each_new_revision_once() {
    let account = account();
    let pipeline =
        pipeline_builder(&account, Strategy::BlueGreen).watch_interval(Duration::from_secs(30)).build().unwrap();
    let first = account.push("main", "one", "a").unwrap();
    let cancel = CancellationToken::new();
    let task = {
        let (pipeline, cancel) = (pipeline.clone(), cancel.clone());
        tokio::spawn(async move { pipeline.watch(&cancel).await })
    };
    // The first deployment takes about 11 minutes; push the second meanwhile, and a commit on another branch.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let second = account.push("main", "two", "a").unwrap();
    account.push("feature", "not deployed", "a").unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    cancel.cancel();
    let records = task.await.unwrap().unwrap();
    let commits: Vec<_> = records.iter().map(|r| r.revision.as_ref().unwrap().commit.clone()).collect();
    assert_eq!(commits, vec![first.commit, second.commit.clone()]);
    assert!(records.iter().all(|r| r.outcome == Outcome::Succeeded));
    assert_eq!(account.serving("blue").unwrap().tag(), Some(second.commit.as_str()));

    // Watching again deploys nothing: the live environment runs the newest revision.
    let cancel = CancellationToken::new();
    let task = {
        let (pipeline, cancel) = (pipeline.clone(), cancel.clone());
        tokio::spawn(async move { pipeline.watch(&cancel).await })
    };
    tokio::time::sleep(Duration::from_secs(300)).await;
    cancel.cancel();
    assert!(task.await.unwrap().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn events_reach_every_subscriber_and_the_json_lines_file() {
    let account = account();
    let dir = sendy_cd_tests::scratch("events");
    let path = dir.path().join("events.jsonl");
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink_seen = seen.clone();
    let pipeline = pipeline_builder(&account, Strategy::BlueGreen)
        .sink(Arc::new(JsonLinesSink::create(&path).unwrap()))
        .sink(Arc::new(move |e: &Event| sink_seen.lock().unwrap().push(e.clone())))
        .build()
        .unwrap();
    let mut stream = pipeline.subscribe();
    let record = pipeline.run(account.push("main", "x", "a").unwrap()).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let mut streamed = vec![];
    while let Some(e) = stream.try_recv() {
        streamed.push(e);
    }
    assert_eq!(seen, streamed, "every subscriber sees the same events");
    assert!(matches!(seen.first().unwrap().kind, EventKind::ExecutionStarted { .. }));
    assert!(matches!(seen.last().unwrap().kind, EventKind::ExecutionFinished { outcome: Outcome::Succeeded, .. }));
    assert!(seen.windows(2).all(|w| w[0].elapsed_ms <= w[1].elapsed_ms), "in order");
    let progress =
        seen.iter().filter(|e| matches!(e.kind, EventKind::StageProgress { stage: Stage::Build, .. })).count();
    assert!(progress >= 3, "build phases are reported: {progress}");
    let finished: Vec<_> = seen
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StageFinished { stage, duration_ms, .. } => Some((*stage, *duration_ms)),
            _ => None,
        })
        .collect();
    let recorded: Vec<_> = record.stages.iter().map(|s| (s.stage, s.duration_ms().unwrap())).collect();
    assert_eq!(finished, recorded, "stage events agree with the record");

    let lines = std::fs::read_to_string(&path).unwrap();
    let parsed: Vec<Event> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(parsed, seen, "the file holds every event");
}

#[tokio::test(start_paused = true)]
async fn records_compare_against_a_baseline() {
    let account = account_with(SimConfig::default().jitter(0.2).seed(9));
    let pipeline = pipeline(&account, Strategy::BlueGreen);
    let a = pipeline.run(account.push("main", "a", "a").unwrap()).await.unwrap();
    let b = pipeline.run(account.push("main", "b", "a").unwrap()).await.unwrap();
    let comparison = b.compare(&a);
    let build = comparison.iter().find(|m| m.metric == "build duration (ms)").unwrap();
    assert_eq!(build.baseline, a.stage_duration_ms(Stage::Build) as f64);
    assert_eq!(build.current, b.stage_duration_ms(Stage::Build) as f64);
    assert!(build.change_pct.unwrap().abs() > 0.0, "jittered durations differ");
    assert!(comparison.iter().any(|m| m.metric == "health error rate" && m.current == 0.0));
}

#[test]
fn bad_configuration_is_refused_before_any_call() {
    let account = account();
    let invalid =
        |b: sendy_cd::PipelineBuilder| matches!(b.build(), Err(Error::InvalidConfig(_) | Error::InvalidInput(_)));
    assert!(invalid(Pipeline::builder()), "no builder");
    assert!(invalid(Pipeline::builder().image_builder(Arc::new(account.image_builder()))), "no environment");
    assert!(invalid(
        Pipeline::builder()
            .image_builder(Arc::new(account.image_builder()))
            .environment(account.environment("blue").unwrap())
    ));
    assert!(
        invalid(pipeline_builder(&account, Strategy::BlueGreen).environment(account.environment("blue").unwrap())),
        "twice"
    );
    let canary = |steps: Vec<u8>| Strategy::Canary(sendy_cd::Canary::new(steps, Duration::ZERO));
    assert!(invalid(pipeline_builder(&account, canary(vec![50, 10, 100]))));
    assert!(invalid(pipeline_builder(&account, canary(vec![10, 50]))));
    assert!(invalid(pipeline_builder(&account, canary(vec![0, 100]))));
    assert!(invalid(pipeline_builder(&account, Strategy::BlueGreen).branch("bad..branch")));
    let deadlines = sendy_cd::Deadlines::default().build(Duration::ZERO);
    assert!(invalid(pipeline_builder(&account, Strategy::BlueGreen).deadlines(deadlines)));
    let bad_check = sendy_cd::HealthCheck::default().consecutive_successes(0);
    assert!(invalid(pipeline_builder(&account, Strategy::BlueGreen).health_check(bad_check)));
    assert!(sendy_cd::Environment::builder("Blue").build().is_err());
    assert!(matches!(
        sendy_cd::Environment::builder("blue").build(),
        Err(Error::InvalidConfig(m)) if m.contains("no stack")
    ));
    assert_eq!(Op::ALL.iter().map(|op| account.calls(*op)).sum::<u32>(), 0, "nothing was called");
}

/// Every strategy against a failure at every stage: the stage that failed is named, and the
/// invariants hold (nothing users see changed, or all traffic went back).
#[tokio::test(start_paused = true)]
async fn every_strategy_survives_a_failure_at_every_stage() {
    enum Failure {
        Build,
        Stack,
        Rollout,
        CheckBeforeTraffic,
        CheckUnderTraffic,
        DnsChange,
    }
    for strategy in [Strategy::AllAtOnce, Strategy::BlueGreen, canary()] {
        for failure in [
            Failure::Build,
            Failure::Stack,
            Failure::Rollout,
            Failure::CheckBeforeTraffic,
            Failure::CheckUnderTraffic,
            Failure::DnsChange,
        ] {
            let account = account();
            let pipeline = pipeline(&account, strategy.clone());
            let revision = account.push("main", "x", "a").unwrap();
            let mut behavior = Behavior::default();
            let expected = match failure {
                Failure::Build => {
                    behavior.build_failure = Some("boom".into());
                    Some(Stage::Build)
                }
                Failure::Stack => {
                    behavior.stack_failure = Some("boom".into());
                    Some(Stage::Stack)
                }
                Failure::Rollout => {
                    behavior.crashing = true;
                    Some(Stage::Rollout)
                }
                Failure::CheckBeforeTraffic => {
                    behavior.health = Health::Unhealthy;
                    Some(Stage::Verify)
                }
                Failure::CheckUnderTraffic => {
                    behavior.health = Health::UnhealthyUnderTraffic;
                    // All at once updates the live environment: the bug shows at its only check.
                    Some(Stage::Verify)
                }
                Failure::DnsChange => {
                    account.inject(Injection::new(Op::DnsSetWeights, Fault::Fail).times(1));
                    // All at once never changes weights: it succeeds.
                    (strategy != Strategy::AllAtOnce).then_some(Stage::Traffic)
                }
            };
            account.set_behavior(&revision.commit, behavior);
            let record = run_checked(&account, &pipeline, revision).await;
            let name = strategy.name();
            match (expected, &record.outcome) {
                (None, Outcome::Succeeded) => {}
                (Some(stage), Outcome::Failed { stage: failed, .. }) => assert_eq!(*failed, stage, "{name}"),
                (expected, outcome) => panic!("{name}: expected a failure at {expected:?}, got {outcome:?}"),
            }
        }
    }
}
