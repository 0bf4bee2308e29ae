//! The conformance suite (feature `conformance`): one check per trait contract, run against every
//! backend.
//!
//! Each check is a `pub async fn` taking a *harness*: the backend under test plus the few
//! backend-specific actions the check needs (pushing a commit, naming an existing stack, letting
//! time pass). The in-memory backends pass it on a paused clock; the AWS backends run it against a
//! local emulator. A violated contract panics with a message naming the rule.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::builder::{BuildStatus, Builder};
use crate::deployer::{
    Deployer, HookAction, ManagedDeployer, ManagedState, ManagedStatus, RollbackTarget, RolloutStatus,
};
use crate::dns::{ChangeStatus, DnsSwitch};
use crate::error::{Error, Result};
use crate::model::{
    BranchName, BuildId, CommitId, Id, ImageRef, Revision, Rollout, ServiceUrl, SetIdentifier, StackName, TrafficSplit,
};
use crate::source::Source;
use crate::stack::{Plan, PlanKind, Stack, StackChange, StackPlan, StackStatus};
use crate::verify::{ProbeRequest, Verifier};
use crate::wait::{Check, PollPolicy, Wait};

/// How the checks wait: the harness's pace and patience.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Patience {
    /// How to poll.
    pub poll: PollPolicy,
    /// How long any one wait may take.
    pub deadline: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Patience { poll: PollPolicy::default(), deadline: Duration::from_secs(3600) }
    }
}

/// A [`Source`] under test, and a way to push to it.
#[async_trait]
pub trait SourceHarness: Send + Sync {
    /// The backend.
    fn source(&self) -> Arc<dyn Source>;
    /// Pushes a new commit to `branch` and returns its id.
    async fn push(&self, branch: &BranchName, message: &str) -> Result<CommitId>;
}

/// Checks [`Source`]'s contract.
///
/// # Panics
/// On any violation.
pub async fn source(h: &dyn SourceHarness) {
    let source = h.source();
    let branch = BranchName::parse("conformance").expect("valid");
    let first = h.push(&branch, "first").await.expect("push");
    let seen = source.latest(&branch).await.expect("latest after a push");
    assert_eq!(seen.commit, first, "latest returns the pushed commit");
    assert_eq!(seen.branch, branch, "latest names the branch");
    assert_eq!(seen.message.trim(), "first", "latest carries the commit message");
    let again = source.latest(&branch).await.expect("latest again");
    assert_eq!(again, seen, "two reads with no push in between agree");
    let second = h.push(&branch, "second").await.expect("push");
    assert_eq!(source.latest(&branch).await.expect("latest").commit, second, "latest follows a push");
    let missing = BranchName::parse("no-such-branch-here").expect("valid");
    let err = source.latest(&missing).await.expect_err("an unknown branch is an error");
    assert!(matches!(err, Error::NotFound { .. }), "an unknown branch is NotFound, not {err:?}");
}

/// A [`Builder`] under test, and a revision it can build.
#[async_trait]
pub trait BuilderHarness: Send + Sync {
    /// The backend.
    fn builder(&self) -> Arc<dyn Builder>;
    /// A revision whose build succeeds.
    async fn revision(&self) -> Result<Revision>;
    /// How to wait.
    fn patience(&self) -> Patience;
}

async fn wait_build(builder: &dyn Builder, build: &BuildId, p: &Patience) -> BuildStatus {
    Wait::new(&p.poll, "build", p.deadline)
        .until(|| async {
            let s = builder.status(build).await?;
            Ok(if s.is_final() { Check::Ready(s) } else { Check::Pending })
        })
        .await
        .expect("the build ends within the deadline")
        .0
}

/// Checks [`Builder`]'s contract.
///
/// # Panics
/// On any violation.
pub async fn builder(h: &dyn BuilderHarness) {
    let builder = h.builder();
    let p = h.patience();
    let revision = h.revision().await.expect("a revision");
    let build = builder.start(&revision).await.expect("start");
    let status = wait_build(builder.as_ref(), &build, &p).await;
    let BuildStatus::Succeeded(built) = &status else { panic!("the build succeeds, not {status:?}") };
    assert_eq!(built.commit, revision.commit, "the image is built from the revision");
    assert_eq!(built.build, build, "the image names its build");
    assert_eq!(built.image.tag(), Some(revision.commit.as_str()), "the image is tagged with the full commit id");
    assert_eq!(built.image.digest(), Some(&built.digest), "the image is pinned to its digest");
    assert_eq!(builder.status(&build).await.expect("status"), status, "a final status stays the same");
    builder.stop(&build).await.expect("stopping a finished build is not an error");
    let after = builder.status(&build).await.expect("status");
    assert!(
        after == status || after == BuildStatus::Stopped,
        "stopping a finished build leaves it final, not {after:?}"
    );

    let other = builder.start(&revision).await.expect("start a second build");
    assert_ne!(other, build, "every start is a new build");
    builder.stop(&other).await.expect("stop a running build");
    let stopped = wait_build(builder.as_ref(), &other, &p).await;
    assert!(stopped.is_final(), "a stopped build ends");

    let unknown = BuildId::parse("no-such-project:00000000").expect("valid");
    let err = builder.status(&unknown).await.expect_err("an unknown build is an error");
    assert!(matches!(err, Error::NotFound { .. }), "an unknown build is NotFound, not {err:?}");
}

/// A [`Stack`] under test, with an existing stack and a parameter that can be changed.
#[async_trait]
pub trait StackHarness: Send + Sync {
    /// The backend.
    fn stack(&self) -> Arc<dyn Stack>;
    /// An existing stack whose `ServiceUrl` output is a URL.
    async fn existing(&self) -> Result<StackName>;
    /// A change to it (a parameter to a new value), different on each call.
    fn change(&self, n: u32) -> StackChange;
    /// How to wait.
    fn patience(&self) -> Patience;
}

async fn wait_stack(stack: &dyn Stack, plan: &StackPlan, p: &Patience) -> StackStatus {
    Wait::new(&p.poll, "stack", p.deadline)
        .until(|| async {
            let s = stack.status(plan).await?;
            Ok(if s.is_final() { Check::Ready(s) } else { Check::Pending })
        })
        .await
        .expect("the update ends within the deadline")
        .0
}

/// Checks [`Stack`]'s contract.
///
/// # Panics
/// On any violation.
pub async fn stack(h: &dyn StackHarness) {
    let stack = h.stack();
    let p = h.patience();
    let name = h.existing().await.expect("an existing stack");
    let outputs = stack.outputs(&name).await.expect("outputs");
    outputs.service_url("ServiceUrl").expect("the stack exposes its service URL");

    let change = h.change(1);
    let Plan::Ready(plan) = stack.plan(&name, &change).await.expect("plan") else {
        panic!("a change that changes a parameter is a plan");
    };
    assert_eq!(plan.stack, name, "the plan names its stack");
    assert_eq!(plan.kind, PlanKind::Update, "a plan for an existing stack is an update");
    stack.apply(&plan).await.expect("apply");
    assert_eq!(wait_stack(stack.as_ref(), &plan, &p).await, StackStatus::Complete, "the update completes");
    assert_eq!(
        stack.plan(&name, &change).await.expect("plan again"),
        Plan::NoChanges,
        "an applied change is NoChanges"
    );

    let Plan::Ready(second) = stack.plan(&name, &h.change(2)).await.expect("plan") else {
        panic!("a second change is a plan")
    };
    assert_ne!(second.id, plan.id, "every plan has its own id");
    stack.apply(&second).await.expect("apply");
    assert_eq!(wait_stack(stack.as_ref(), &second, &p).await, StackStatus::Complete, "the second update completes");
    assert_eq!(
        stack.status(&plan).await.expect("status"),
        StackStatus::Complete,
        "status follows its own plan, not the newest"
    );

    let missing = StackName::parse("no-such-stack-here").expect("valid");
    let err = stack.outputs(&missing).await.expect_err("outputs of an unknown stack");
    assert!(matches!(err, Error::NotFound { .. }), "an unknown stack is NotFound, not {err:?}");
    let err = stack.plan(&missing, &StackChange::default()).await.expect_err("creating without a template");
    assert!(
        matches!(err, Error::InvalidConfig(_) | Error::InvalidInput(_)),
        "a create without a template is invalid, not {err:?}"
    );
}

/// A [`Deployer`] under test, with two images it can roll out.
#[async_trait]
pub trait DeployerHarness: Send + Sync {
    /// The backend.
    fn deployer(&self) -> Arc<dyn Deployer>;
    /// Two different images that start and stay healthy.
    fn images(&self) -> (ImageRef, ImageRef);
    /// Lets a started rollout make progress (sleep on the harness's clock, or advance an emulator).
    async fn advance(&self, rollout: &Rollout) -> Result<()>;
    /// How to wait.
    fn patience(&self) -> Patience;
}

async fn wait_rollout(h: &dyn DeployerHarness, deployer: &dyn Deployer, rollout: &Rollout) -> RolloutStatus {
    let p = h.patience();
    Wait::new(&p.poll, "rollout", p.deadline)
        .until(|| async {
            h.advance(rollout).await?;
            let s = deployer.status(rollout).await?;
            Ok(if s.is_final() { Check::Ready(s) } else { Check::Pending })
        })
        .await
        .expect("the rollout ends within the deadline")
        .0
}

/// Checks [`Deployer`]'s contract.
///
/// # Panics
/// On any violation.
pub async fn deployer(h: &dyn DeployerHarness) {
    let deployer = h.deployer();
    let (first, second) = h.images();
    let one = deployer.deploy(&first).await.expect("deploy");
    assert_eq!(one.image, first, "the rollout is of the image given");
    assert!(
        matches!(wait_rollout(h, deployer.as_ref(), &one).await, RolloutStatus::Completed { .. }),
        "the rollout completes"
    );
    let revs = deployer.revisions().await.expect("revisions");
    let current_one = revs.current.clone().expect("a current revision");
    assert_eq!(current_one.image, first, "the current revision runs the image rolled out");

    let two = deployer.deploy(&second).await.expect("deploy");
    assert_ne!(two.deployment_id, one.deployment_id, "every rollout is its own deployment");
    // While the second rolls out, each status is its own deployment's, not the service's newest.
    assert!(
        matches!(deployer.status(&two).await.expect("status"), RolloutStatus::InProgress { .. }),
        "a rollout just started is in progress"
    );
    assert!(
        matches!(deployer.status(&one).await.expect("status"), RolloutStatus::Completed { .. }),
        "the first rollout is still completed while the second rolls out: status is pinned to its deployment"
    );
    assert!(
        matches!(wait_rollout(h, deployer.as_ref(), &two).await, RolloutStatus::Completed { .. }),
        "the second rollout completes"
    );
    let revs = deployer.revisions().await.expect("revisions");
    assert_eq!(revs.current.as_ref().map(|c| &c.image), Some(&second), "current follows the newest rollout");
    assert_eq!(revs.last_good.as_ref(), Some(&current_one), "last good is the previous completed revision");
    assert!(
        matches!(deployer.status(&one).await.expect("status"), RolloutStatus::Completed { .. }),
        "a completed rollout stays completed: status is pinned to its deployment"
    );

    let back = deployer.rollback(&RollbackTarget::LastGood).await.expect("rollback");
    assert_eq!(back.image, first, "rolling back to the last good revision rolls out its image");
    assert!(
        matches!(wait_rollout(h, deployer.as_ref(), &back).await, RolloutStatus::Completed { .. }),
        "the rollback completes"
    );
    assert_eq!(
        deployer.revisions().await.expect("revisions").current.map(|c| c.image),
        Some(first.clone()),
        "rolled back"
    );

    let err = deployer
        .rollback(&RollbackTarget::Revision("no-such-family:999".into()))
        .await
        .expect_err("rolling back to an unknown revision");
    assert!(matches!(err, Error::NotFound { .. }), "an unknown revision is NotFound, not {err:?}");
    let ghost = Rollout { deployment_id: Id::parse("ecs-svc/0000000000000000000").expect("valid"), image: first };
    let err = deployer.status(&ghost).await.expect_err("status of an unknown deployment");
    assert!(matches!(err, Error::NotFound { .. }), "an unknown deployment is NotFound, not {err:?}");
}

/// A [`ManagedDeployer`] under test: a service whose backend shifts traffic, with `PAUSE` hooks.
#[async_trait]
pub trait ManagedDeployerHarness: Send + Sync {
    /// The backend.
    fn managed(&self) -> Arc<dyn ManagedDeployer>;
    /// Two images the service can run, other than the one it runs now.
    fn images(&self) -> (ImageRef, ImageRef);
    /// Lets a deployment make progress.
    async fn advance(&self, rollout: &Rollout) -> Result<()>;
    /// How to wait.
    fn patience(&self) -> Patience;
}

/// Follows `rollout` until it ends, or (with `stop_at_hook`) until a hook waits; each other paused
/// hook is told `CONTINUE`.
async fn follow_managed(
    h: &dyn ManagedDeployerHarness,
    d: &dyn ManagedDeployer,
    rollout: &Rollout,
    stop_at_hook: bool,
) -> ManagedStatus {
    let p = h.patience();
    Wait::new(&p.poll, "managed deployment", p.deadline)
        .until(|| async {
            h.advance(rollout).await?;
            let s = d.progress(rollout).await?;
            if s.state.is_final() || (stop_at_hook && s.paused.is_some()) {
                return Ok(Check::Ready(s));
            }
            if let Some(hook) = &s.paused {
                d.decide(rollout, &hook.id, HookAction::Continue).await?;
            }
            Ok(Check::Pending)
        })
        .await
        .expect("the managed deployment gets there within the deadline")
        .0
}

/// Checks [`ManagedDeployer`]'s contract.
///
/// # Panics
/// On any violation.
pub async fn managed_deployer(h: &dyn ManagedDeployerHarness) {
    let d = h.managed();
    let (first, second) = h.images();
    let one = d.deploy(&first).await.expect("deploy");
    assert_eq!(one.image, first, "the rollout is of the image given");
    let started = d.progress(&one).await.expect("progress");
    assert!(!started.state.is_final(), "a deployment just started is under way: {:?}", started.state);
    assert!(started.target_revision.is_some(), "the deployment names the revision it rolls out");
    let end = follow_managed(h, d.as_ref(), &one, false).await;
    assert_eq!(end.state, ManagedState::Successful, "continued at every hook, the deployment succeeds");
    assert!(matches!(d.status(&one).await.expect("status"), RolloutStatus::Completed { .. }), "success is Completed");
    assert_eq!(d.revisions().await.expect("revisions").current.map(|c| c.image), Some(first.clone()));
    d.decide(&one, "no-such-hook", HookAction::Continue)
        .await
        .expect("deciding a hook that no longer waits is no error");
    d.stop(&one).await.expect("stopping an ended deployment is no error");
    assert_eq!(d.progress(&one).await.expect("progress").state, ManagedState::Successful, "and changes nothing");

    // ROLLBACK at the first hook: the deployment ends rolled back, a failure.
    let two = d.deploy(&second).await.expect("deploy");
    assert_ne!(two.deployment_id, one.deployment_id, "every deployment is its own");
    let at_hook = follow_managed(h, d.as_ref(), &two, true).await;
    let hook = at_hook.paused.expect("the harness's service has PAUSE hooks");
    d.decide(&two, &hook.id, HookAction::Rollback).await.expect("decide");
    let end = follow_managed(h, d.as_ref(), &two, false).await;
    assert_eq!(end.state, ManagedState::RollbackSuccessful, "ROLLBACK at a hook rolls the deployment back");
    assert!(
        matches!(d.status(&two).await.expect("status"), RolloutStatus::Failed { rolled_back: true, .. }),
        "a rolled-back deployment is a failure, never success"
    );
    assert!(
        matches!(d.status(&one).await.expect("status"), RolloutStatus::Completed { .. }),
        "status is pinned to its deployment"
    );

    // A stop rolls back a deployment under way.
    let three = d.deploy(&second).await.expect("deploy");
    d.stop(&three).await.expect("stop");
    let end = follow_managed(h, d.as_ref(), &three, false).await;
    assert!(
        matches!(end.state, ManagedState::RollbackSuccessful | ManagedState::Stopped),
        "a stopped deployment ends rolled back or stopped, not {:?}",
        end.state
    );
    assert!(matches!(d.status(&three).await.expect("status"), RolloutStatus::Failed { .. }), "and is a failure");

    // Any earlier revision, from the history.
    let history = d.history().await.expect("history");
    let earlier = history.iter().find(|r| r.image.as_ref() == Some(&first)).expect("the history has the first image");
    let back = d.roll_back_to(&earlier.arn).await.expect("roll back to an earlier revision");
    assert_eq!(back.image, first, "rolling back rolls out the revision's image");
    let end = follow_managed(h, d.as_ref(), &back, false).await;
    assert_eq!(end.state, ManagedState::Successful, "the rollback deployment succeeds");

    let ghost = Rollout { deployment_id: Id::parse("no-such-deployment").expect("valid"), image: first };
    assert!(matches!(d.progress(&ghost).await, Err(Error::NotFound { .. })), "an unknown deployment is NotFound");
    assert!(matches!(d.roll_back_to("no-such-revision").await, Err(Error::NotFound { .. })), "an unknown revision too");
}

/// A [`DnsSwitch`] under test, whose record has a live and an idle set identifier.
#[async_trait]
pub trait DnsHarness: Send + Sync {
    /// The backend.
    fn dns(&self) -> Arc<dyn DnsSwitch>;
    /// The set identifiers: the first has all the weight, the second none.
    async fn set_identifiers(&self) -> Result<(SetIdentifier, SetIdentifier)>;
    /// How to wait.
    fn patience(&self) -> Patience;
    /// Whether the service behind the backend answers "not found" for an unknown change id (AWS does;
    /// an emulator may not, and then the check is skipped). Default true.
    fn knows_unknown_changes(&self) -> bool {
        true
    }
}

/// Checks [`DnsSwitch`]'s contract.
///
/// # Panics
/// On any violation.
pub async fn dns(h: &dyn DnsHarness) {
    let dns = h.dns();
    let p = h.patience();
    let (live, idle) = h.set_identifiers().await.expect("set identifiers");
    let before = dns.weights().await.expect("weights");
    assert!(before.weight(&live) > 0 && before.weight(&idle) == 0, "the harness's record starts live/idle: {before}");
    assert!(!dns.ttl().is_zero(), "the TTL is positive");

    let split = TrafficSplit::new([(live.clone(), 10), (idle.clone(), 90)]).expect("valid");
    let change = dns.set_weights(&split).await.expect("set weights");
    let (status, _) = Wait::new(&p.poll, "dns change", p.deadline)
        .until(|| async {
            Ok(match dns.change_status(&change).await? {
                ChangeStatus::Applied => Check::Ready(ChangeStatus::Applied),
                ChangeStatus::Pending => Check::Pending,
            })
        })
        .await
        .expect("the change is applied within the deadline");
    assert_eq!(status, ChangeStatus::Applied);
    let after = dns.weights().await.expect("weights");
    assert_eq!((after.weight(&live), after.weight(&idle)), (10, 90), "both weights changed");

    let unknown = SetIdentifier::parse("no-such-set-identifier").expect("valid");
    let bad = TrafficSplit::new([(live.clone(), 100), (unknown, 0)]).expect("valid");
    let err = dns.set_weights(&bad).await.expect_err("an unknown set identifier");
    assert!(
        matches!(err, Error::Conflict(_) | Error::NotFound { .. }),
        "an unknown set identifier is refused, not {err:?}"
    );
    assert_eq!(dns.weights().await.expect("weights"), after, "a refused change changes nothing");

    if h.knows_unknown_changes() {
        let unknown = Id::parse("/change/NOSUCHCHANGE").expect("valid");
        let err = dns.change_status(&unknown).await.expect_err("an unknown change");
        assert!(matches!(err, Error::NotFound { .. }), "an unknown change is NotFound, not {err:?}");
    }
    // Put the record back as it was.
    dns.set_weights(&before).await.expect("restore");
}

/// A [`Verifier`] under test, with a healthy URL and one nobody answers at.
#[async_trait]
pub trait VerifierHarness: Send + Sync {
    /// The backend.
    fn verifier(&self) -> Arc<dyn Verifier>;
    /// A URL that answers 200 on `/health`.
    async fn healthy(&self) -> Result<ServiceUrl>;
    /// A URL nothing answers at.
    fn unreachable(&self) -> ServiceUrl;
}

/// Checks [`Verifier`]'s contract.
///
/// # Panics
/// On any violation.
pub async fn verifier(h: &dyn VerifierHarness) {
    let verifier = h.verifier();
    let request = ProbeRequest { path: "/health".into(), timeout: Duration::from_secs(5) };
    let url = h.healthy().await.expect("a healthy URL");
    let answer = verifier.probe(&url, &request).await.expect("a probe of a healthy URL");
    assert_eq!(answer.status, 200, "a healthy service answers 200");
    assert!(answer.latency <= request.timeout, "the latency is measured");
    let err = verifier.probe(&h.unreachable(), &request).await.expect_err("nobody answers");
    assert!(err.is_retryable(), "no answer is a retryable error, not {err:?}");
}

/// A [`Store`](crate::store::Store) under test, and the clock its leases are measured with.
pub trait StoreHarness: Send + Sync {
    /// The store.
    fn store(&self) -> Arc<dyn crate::store::Store>;
    /// The clock the store was given.
    fn clock(&self) -> &crate::store::ManualClock;
}

fn sample_record(id: &str, commit: char) -> crate::record::ExecutionRecord {
    use crate::record::{ExecutionKind, ExecutionRecord, Step, StepOutcome, StepRecord};
    let revision = Revision {
        commit: CommitId::parse(commit.to_string().repeat(40)).expect("a valid commit id"),
        branch: BranchName::parse("main").expect("a valid branch"),
        message: "a change".into(),
        author: "Ada <ada@example.com>".into(),
        time: jiff::Timestamp::UNIX_EPOCH,
    };
    let mut record = ExecutionRecord::started(
        Id::parse(id).expect("a valid id"),
        ExecutionKind::Deploy,
        Some(revision),
        "blue_green",
    );
    record.started_at = jiff::Timestamp::UNIX_EPOCH;
    record.steps.push(StepRecord {
        step: Step::StartBuild,
        stage: crate::model::Stage::Build,
        environment: None,
        started_ms: 0,
        finished_ms: None,
        outcome: StepOutcome::Started,
        detail: None,
        calls: 0,
    });
    record
}

/// A running record and a finished one that built commit `b…b` (the SQLite migration test's).
#[cfg(all(test, feature = "sqlite"))]
pub(crate) fn sample_record_for_tests() -> (crate::record::ExecutionRecord, crate::record::ExecutionRecord) {
    let running = sample_record("exec-0", 'a');
    let mut built = sample_record("exec-1", 'b');
    built.image = Some(sample_image('b'));
    built.outcome = crate::record::Outcome::Succeeded;
    (running, built)
}

fn sample_image(commit: char) -> crate::builder::BuiltImage {
    let tag = commit.to_string().repeat(40);
    crate::builder::BuiltImage {
        image: crate::model::ImageRef::parse(&format!("registry.example.com/app:{tag}")).expect("image"),
        digest: crate::model::Digest::of(b"manifest"),
        build: crate::model::BuildId::parse("app:1").expect("build"),
        commit: CommitId::parse(tag).expect("commit"),
    }
}

/// The store's contract: records saved and read back newest first, page by page; a save replaces
/// what was saved of that execution; learned durations keep the newest five; pipelines kept apart;
/// one lease holder at a time, fencing tokens that only grow, an expired lease taken over and its old
/// holder refused, acquisitions that never overlap.
pub async fn store(h: &dyn StoreHarness) {
    use crate::record::{Outcome, Step};
    use crate::store::Holder;
    let store = h.store();
    // Records.
    assert_eq!(store.count("p").await.expect("count"), 0, "a new store is empty");
    for n in 1..=7 {
        store.save("p", &sample_record(&format!("exec-{n}"), 'a')).await.expect("save");
    }
    let mut last = sample_record("exec-7", 'a');
    last.outcome = Outcome::Succeeded;
    last.steps[0].finished_ms = Some(5);
    store.save("p", &last).await.expect("save again");
    assert_eq!(store.count("p").await.expect("count"), 7, "saving an execution again replaces it");
    let got = store.execution("p", &Id::parse("exec-7").expect("id")).await.expect("read");
    assert_eq!(got.as_ref(), Some(&last), "an execution reads back as saved last");
    assert_eq!(store.execution("q", &Id::parse("exec-7").expect("id")).await.expect("read"), None, "kept per pipeline");
    let page = store.history("p", 3, None).await.expect("history");
    let ids: Vec<_> = page.records.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids, ["exec-7", "exec-6", "exec-5"], "newest first");
    let mut all = ids.clone();
    let mut next = page.next;
    while let Some(cursor) = next {
        let page = store.history("p", 3, Some(cursor)).await.expect("history");
        all.extend(page.records.iter().map(|r| r.id.to_string()));
        next = page.next;
    }
    let expected: Vec<_> = (1..=7).rev().map(|n| format!("exec-{n}")).collect();
    assert_eq!(all, expected, "pages follow each other, each execution once, and the last says so");
    assert!(store.history("q", 10, None).await.expect("history").records.is_empty(), "kept per pipeline");
    // What resume and `run` ask first: the executions not over yet, oldest first, and the one that
    // built a commit.
    let unfinished: Vec<_> =
        store.unfinished("p").await.expect("unfinished").iter().map(|r| r.id.to_string()).collect();
    let expected: Vec<_> = (1..=6).map(|n| format!("exec-{n}")).collect();
    assert_eq!(unfinished, expected, "every execution still running, oldest first (exec-7 is over)");
    assert!(store.unfinished("q").await.expect("unfinished").is_empty(), "kept per pipeline");
    let commit = CommitId::parse("b".repeat(40)).expect("a commit");
    assert_eq!(store.built("p", &commit).await.expect("built"), None, "nothing built that commit yet");
    let mut built = sample_record("exec-3", 'b');
    built.image = Some(sample_image('b'));
    built.outcome = Outcome::Succeeded;
    store.save("p", &built).await.expect("save");
    assert_eq!(store.built("p", &commit).await.expect("built").as_ref(), Some(&built), "the execution that built it");
    assert_eq!(store.built("q", &commit).await.expect("built"), None, "kept per pipeline");
    let unfinished: Vec<_> =
        store.unfinished("p").await.expect("unfinished").iter().map(|r| r.id.to_string()).collect();
    assert_eq!(
        unfinished,
        ["exec-1", "exec-2", "exec-4", "exec-5", "exec-6"],
        "an execution that ended leaves the list"
    );
    // Learned durations.
    for ms in 1..=7 {
        store.learn("p", Step::WaitBuild, Duration::from_millis(ms)).await.expect("learn");
    }
    store.learn("p", Step::WaitStack, Duration::from_secs(9)).await.expect("learn");
    let learned = store.durations("p").await.expect("durations");
    let builds: Vec<_> = learned[&Step::WaitBuild].iter().map(Duration::as_millis).collect();
    assert_eq!(builds, [3, 4, 5, 6, 7], "the newest five, oldest first");
    assert_eq!(learned[&Step::WaitStack], [Duration::from_secs(9)]);
    assert!(store.durations("q").await.expect("durations").is_empty(), "kept per pipeline");
    // Leases.
    let ttl = Duration::from_secs(60);
    assert!(matches!(
        store.acquire("p", &Holder::this_process("x"), Duration::ZERO).await,
        Err(Error::InvalidConfig(_))
    ));
    let a = Holder { host: "host-a".into(), pid: 1, task: "run".into() };
    let b = Holder { host: "host-b".into(), pid: 2, task: "run".into() };
    let first = store.acquire("p", &a, ttl).await.expect("a free lease is taken");
    match store.acquire("p", &b, ttl).await {
        Err(Error::LeaseHeld { holder, expires_at }) => {
            assert!(holder.contains("host-a") && holder.contains("pid 1"), "the error names the holder: {holder}");
            assert_eq!(expires_at, first.expires_at, "and when its lease ends");
        }
        other => panic!("a held lease is refused to another holder: {other:?}"),
    }
    let other_pipeline = store.acquire("q", &b, ttl).await.expect("leases are per pipeline");
    h.clock().advance(Duration::from_secs(30));
    let renewed = store.renew(&first, ttl).await.expect("the holder renews");
    assert!(renewed.expires_at > first.expires_at && renewed.token == first.token, "renewing extends");
    h.clock().advance(Duration::from_secs(61));
    assert!(
        matches!(store.renew(&renewed, ttl).await, Err(Error::LeaseLost { .. })),
        "an expired lease is not renewed"
    );
    let second = store.acquire("p", &b, ttl).await.expect("an expired lease is taken over");
    assert!(second.token > renewed.token, "fencing tokens only grow");
    assert!(matches!(store.renew(&renewed, ttl).await, Err(Error::LeaseLost { .. })), "the old holder is refused");
    store.release(&renewed).await.expect("releasing a lost lease is nothing");
    assert!(store.acquire("p", &a, ttl).await.is_err(), "and leaves the new holder's lease in place");
    store.release(&second).await.expect("release");
    let third = store.acquire("p", &a, ttl).await.expect("a released lease is free at once");
    assert!(third.token > second.token, "fencing tokens only grow, across releases too");
    store.release(&third).await.expect("release");
    store.release(&other_pipeline).await.expect("release");
    let log = store.acquisitions("p").await.expect("acquisitions");
    let tokens: Vec<_> = log.iter().map(|a| a.token).collect();
    assert_eq!(tokens, [first.token, second.token, third.token], "every acquisition is logged");
    for pair in log.windows(2) {
        assert!(pair[0].ended_at <= pair[1].acquired_at, "holders never overlap: {pair:?}");
        assert!(pair[0].acquired_at <= pair[0].ended_at);
    }
}

setters!(Patience { poll: PollPolicy, deadline: Duration });
