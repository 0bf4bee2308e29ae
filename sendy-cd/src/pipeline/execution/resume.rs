//! Settling executions a process left unfinished (killed, crashed, paused past its lease): the
//! journal in the store says what each was doing; what users could see of it is undone through the
//! handles it holds, never by doing a step again.

use super::*;
use crate::model::EnvironmentName;
use crate::stack::PlanKind;
use crate::store::Holder;

/// Settles every unfinished execution of the pipeline the store holds, oldest first. Runs under the
/// lease: an execution still running elsewhere holds it, so whatever is unfinished here was left.
/// Which way resume settles a deployment left unfinished.
#[derive(Clone, Copy, Debug)]
pub(in crate::pipeline) enum Direction<'a> {
    /// Undo what users could see ([`Pipeline::switch_back`](crate::Pipeline::switch_back), or
    /// [`resume_forward(false)`](crate::PipelineBuilder::resume_forward)).
    Backward,
    /// Go on from where it stood ([`Pipeline::resume`](crate::Pipeline::resume), `watch`).
    Forward,
    /// Go on if it deploys this commit; one of another commit is superseded by the execution about
    /// to start and is settled backward (`run`, `redeploy`).
    ForwardIf(&'a crate::model::CommitId),
}

/// Settles every unfinished execution the store holds, in `direction` where it can go that way.
pub(in crate::pipeline) async fn resume(
    inner: &Inner,
    lease: &LeaseGuard,
    direction: Direction<'_>,
) -> Result<Vec<ExecutionRecord>> {
    let unfinished = inner.cfg.store.unfinished(&inner.cfg.name).await?;
    let mut settled = vec![];
    for record in unfinished {
        settled.push(settle(inner, lease, record, direction).await?);
    }
    Ok(settled)
}

fn env_index(inner: &Inner, name: Option<&EnvironmentName>) -> Option<usize> {
    let name = name?;
    inner.cfg.environments.iter().position(|e| &e.name == name)
}

/// What an interrupted execution had done, read from its journal, for resuming it forward: nothing
/// in it is done again.
#[derive(Default)]
pub(in crate::pipeline) struct Carry {
    /// The revision the live environment ran, if the interrupted execution read it.
    pub(super) live_revision: Option<Option<DeployedRevision>>,
    /// The image its build produced.
    pub(super) built: Option<BuiltImage>,
    /// A build it started whose end it did not see: followed, never started again.
    pub(super) build: Option<BuildId>,
    /// It announced a build start whose answer it never saw: the build is looked for before one is
    /// started (with the same key).
    pub(super) build_unanswered: bool,
    /// When the interrupted execution started: a build of its commit started since is its build.
    pub(super) started_at: jiff::Timestamp,
    /// The target's stack update it applied (or may have) whose end it did not see: waited for.
    pub(super) stack: Option<StackPlan>,
    /// The target's stack needs nothing more (no changes, or its update was seen complete): its
    /// outputs are read.
    pub(super) stack_settled: bool,
    /// The target's service URL, once its stack stage succeeded.
    pub(super) url: Option<ServiceUrl>,
    /// Whether the target's rollout completed.
    pub(super) rolled_out: bool,
    /// A rollout it started whose end it did not see: followed.
    pub(super) rollout: Option<crate::model::Rollout>,
    /// ECS-managed: the deployment it started, whatever stage it reached: followed, its paused hooks
    /// decided again.
    pub(super) managed_rollout: Option<crate::model::Rollout>,
}

fn carry(record: &ExecutionRecord, journal: &Journal) -> Carry {
    let done = |s: &&StepRecord, step: Step, stage: Stage| {
        s.step == step && s.stage == stage && s.outcome == StepOutcome::Done
    };
    let succeeded =
        |stage: Stage| record.stages.iter().any(|s| s.stage == stage && s.outcome == StageOutcome::Succeeded);
    let live_revision = record
        .steps
        .iter()
        .any(|s| done(&s, Step::ReadRevisions, Stage::Rollout))
        .then(|| record.live_revision.clone());
    let built = if succeeded(Stage::Build) { record.image.clone() } else { None };
    // The build it started, unless the build stage's end is on record: followed to its end again
    // (one status read when it had ended) rather than started again.
    let build = if built.is_none() { started_build(record) } else { None };
    let url = succeeded(Stage::Stack)
        .then(|| record.steps.iter().rev().find(|s| done(s, Step::ReadOutputs, Stage::Stack)))
        .flatten()
        .and_then(|s| s.detail.as_deref())
        .and_then(|d| ServiceUrl::parse(d).ok());
    let rolled_out = succeeded(Stage::Rollout);
    // A rollout whose start answered with its deployment and whose end was not seen.
    let rollout = match (&record.image, record.steps.iter().rposition(|s| done(&s, Step::Deploy, Stage::Rollout))) {
        (Some(built), Some(at)) if !rolled_out => record.steps[at]
            .detail
            .as_deref()
            .and_then(|d| d.strip_prefix("deployment "))
            .and_then(|id| Id::parse(id).ok())
            .map(|deployment_id| crate::model::Rollout { deployment_id, image: built.image.clone() }),
        _ => None,
    };
    let managed_rollout = managed_rollout(record);
    Carry {
        managed_rollout,
        live_revision,
        built,
        started_at: record.started_at,
        build,
        build_unanswered: record
            .steps
            .iter()
            .rposition(|s| s.step == Step::StartBuild)
            .is_some_and(|at| record.steps[at].outcome != StepOutcome::Done),
        stack: journal.stack_in_flight.clone().filter(|(env, _)| Some(*env) == journal.target).map(|(_, p)| p),
        stack_settled: stack_settled(record, journal.target.and(record.target.as_ref())),
        url: url.filter(|_| journal.target.is_some()),
        rolled_out,
        rollout,
    }
}

/// The managed deployment `record` started, if its `Deploy` answered.
fn managed_rollout(record: &ExecutionRecord) -> Option<crate::model::Rollout> {
    if record.strategy != "ecs_managed" {
        return None;
    }
    let built = record.image.as_ref()?;
    let at = record.steps.iter().rposition(|s| s.step == Step::Deploy && s.outcome == StepOutcome::Done)?;
    let id = record.steps[at].detail.as_deref()?.strip_prefix("deployment ")?;
    Some(crate::model::Rollout { deployment_id: Id::parse(id).ok()?, image: built.image.clone() })
}

/// The build the last answered `StartBuild` of `record` started.
fn started_build(record: &ExecutionRecord) -> Option<BuildId> {
    let start = record.steps.iter().rev().find(|s| s.step == Step::StartBuild && s.outcome == StepOutcome::Done)?;
    BuildId::parse(start.detail.as_deref()?).ok()
}

/// Whether the target's stack needs nothing more: its plan found no changes, or the update applied
/// last was seen complete (its stage's end may not be on record).
fn stack_settled(record: &ExecutionRecord, target: Option<&crate::model::EnvironmentName>) -> bool {
    let Some(target) = target else { return false };
    let on_target = |s: &&StepRecord| {
        s.environment.as_ref() == Some(target)
            && s.stage == Stage::Stack
            && matches!(s.step, Step::PlanStack | Step::ApplyStack | Step::WaitStack)
    };
    let done = |s: &&StepRecord| s.outcome == StepOutcome::Done;
    let last = record.steps.iter().rfind(on_target);
    match last {
        Some(s) if s.step == Step::PlanStack => done(&s) && s.detail.as_deref() == Some("no changes"),
        Some(s) if s.step == Step::WaitStack => done(&s) && s.detail.as_deref() == Some("Complete"),
        _ => false,
    }
}

/// What the journal of `record` says was in flight.
struct Journal {
    target: Option<usize>,
    previous: Option<usize>,
    traffic_moved: bool,
    traffic_applied: bool,
    build_in_flight: Option<BuildId>,
    stack_in_flight: Option<(usize, StackPlan)>,
    live_changed: bool,
    stage: Option<Stage>,
}

fn read_journal(inner: &Inner, record: &ExecutionRecord) -> Journal {
    let target = env_index(inner, record.target.as_ref());
    let previous = env_index(inner, record.previous.as_ref());
    let is = |s: &StepRecord, step: Step| s.step == step;
    let traffic: Vec<_> =
        record.steps.iter().filter(|s| is(s, Step::SetWeights) && s.stage == Stage::Traffic).collect();
    // A build whose start answered with its id and whose end was not seen.
    let build_in_flight = record
        .steps
        .iter()
        .rposition(|s| is(s, Step::StartBuild) && s.outcome == StepOutcome::Done)
        .filter(|at| !record.steps[*at..].iter().any(|s| is(s, Step::WaitBuild) && s.outcome == StepOutcome::Done))
        .and_then(|at| record.steps[at].detail.as_deref().and_then(|d| BuildId::parse(d).ok()));
    // A stack update that was applied (or may have been) and whose end was not seen.
    let stack_in_flight = record
        .steps
        .iter()
        .rposition(|s| is(s, Step::ApplyStack))
        .filter(|at| !record.steps[*at..].iter().any(|s| is(s, Step::WaitStack) && s.outcome == StepOutcome::Done))
        .and_then(|at| {
            let step = &record.steps[at];
            let env = env_index(inner, step.environment.as_ref())?;
            let id = Id::parse(step.detail.as_deref()?).ok()?;
            let stack = inner.cfg.environments[env].stack_name.clone();
            Some((env, StackPlan { id, stack, kind: PlanKind::Update, changes: vec![] }))
        });
    let all_at_once = record.strategy == Strategy::AllAtOnce.name();
    let live_changed = all_at_once && record.steps.iter().any(|s| is(s, Step::ApplyStack) || is(s, Step::Deploy));
    Journal {
        target,
        previous,
        traffic_moved: !traffic.is_empty(),
        traffic_applied: traffic.iter().any(|s| s.outcome == StepOutcome::Done),
        build_in_flight,
        stack_in_flight,
        live_changed,
        stage: record.steps.last().map(|s| s.stage),
    }
}

/// Settles one left execution: closes what it left open, undoes what users could see (weights back,
/// the live service back, the orphaned build stopped), and records who did it.
async fn settle(
    inner: &Inner,
    lease: &LeaseGuard,
    record: ExecutionRecord,
    direction: Direction<'_>,
) -> Result<ExecutionRecord> {
    let journal = read_journal(inner, &record);
    let superseded = match direction {
        Direction::ForwardIf(commit) => record.revision.as_ref().is_some_and(|r| &r.commit != commit).then_some(commit),
        _ => None,
    };
    let forward = matches!(direction, Direction::Forward | Direction::ForwardIf(_))
        && superseded.is_none()
        && can_go_forward(inner, &record, &journal);
    let carry = forward.then(|| carry(&record, &journal));
    let (record_revision, kind, image) = (record.revision.clone(), record.kind.clone(), record.image.clone());
    let holder = Holder::this_process("resume");
    let open: Vec<String> = record
        .steps
        .iter()
        .filter(|s| s.finished_ms.is_none())
        .map(|s| format!("{:?} ({})", s.step, s.detail.as_deref().unwrap_or("-")))
        .collect();
    let resumed_by = format!(
        "{holder}: it stood at {}; {}",
        if open.is_empty() { "a step boundary".to_owned() } else { open.join(", ") },
        match (forward, superseded) {
            (true, _) => "resumed forward from there".to_owned(),
            (false, Some(commit)) => {
                format!("settled backward (what users could see undone): superseded by a deployment of {commit}")
            }
            (false, None) => "settled backward (what users could see undone)".to_owned(),
        }
    );
    tracing::info!(execution = %record.id, %resumed_by, "settling an execution left unfinished");
    // Where the interrupted execution's clock stood, so that what resume records continues its times.
    let elapsed = inner.cfg.clock.now().duration_since(record.started_at).unsigned_abs();
    let start = Instant::now().checked_sub(elapsed).unwrap_or_else(Instant::now);
    let traffic_before = record.traffic_before.clone();
    let live_revision = journal.target.filter(|_| journal.live_changed).map(|t| (t, record.live_revision.clone()));
    let id = record.id.clone();
    let managed_in_flight = managed_rollout(&record);
    inner.remember(record);
    let mut exec = Execution {
        inner,
        lease,
        id,
        start,
        cancel: CancellationToken::new(),
        last_stage: journal.stage,
        open_stage: None,
        finished: false,
        target: journal.target,
        previous: journal.previous,
        traffic_before,
        traffic_moved: journal.traffic_moved,
        traffic_applied: journal.traffic_applied,
        build_in_flight: journal.build_in_flight,
        stack_in_flight: journal.stack_in_flight,
        live_revision,
        live_changed: journal.live_changed,
        rolled_back_by_backend: false,
        managed_in_flight,
        managed_went_through: false,
        carry,
    };
    let now = exec.now_ms();
    exec.update(|r| {
        r.cancel_open(now);
        r.resumed_by = Some(resumed_by.clone());
    });
    exec.persist().await?;
    if forward {
        let revision = record_revision.expect("forward only with a revision");
        // A redeployment goes on with the image it chose; a deployment whose own build did not end
        // takes the image another execution built from the commit, if one did: never a second build.
        let prebuilt = match (kind, image) {
            (ExecutionKind::Redeploy, image) => image,
            (_, Some(_)) => None,
            (_, None) if exec.carry.as_ref().is_some_and(|c| c.build.is_none()) => {
                inner.built(&revision.commit).await?.map(|(_, image)| image)
            }
            (_, None) => None,
        };
        let result = exec.deploy(&revision, prebuilt).await;
        if let Err(error @ Error::LeaseLost { .. }) = result {
            exec.finished = true;
            return Err(error);
        }
        let outcome = exec.conclude(result).await;
        return Ok(exec.finish(outcome).await);
    }
    let recovery = if exec.traffic_moved && exec.traffic_before.is_none() {
        Recovery::Failed { reason: "traffic moved but the journal holds no weights from before".into() }
    } else {
        exec.recover().await
    };
    if inner.cfg.dns.is_some()
        && let Ok(split) = exec.read_weights().await
    {
        exec.update(|r| r.traffic_after = Some(split));
    }
    Ok(exec.finish(Outcome::Interrupted { stage: journal.stage, recovery }).await)
}

/// Whether `record` can be resumed forward by this pipeline: a deployment of a revision, run with
/// the strategy this pipeline has, on environments it still has.
fn can_go_forward(inner: &Inner, record: &ExecutionRecord, journal: &Journal) -> bool {
    let envs_known =
        record.target.is_none() == journal.target.is_none() && record.previous.is_none() == journal.previous.is_none();
    let strategy_needs_previous = !matches!(inner.cfg.strategy, Strategy::AllAtOnce | Strategy::EcsManaged(_));
    matches!(record.kind, ExecutionKind::Deploy | ExecutionKind::Redeploy)
        && record.revision.is_some()
        // A redeployment never builds: it goes on only with the image it had chosen.
        && (record.kind == ExecutionKind::Deploy || record.image.is_some())
        && record.strategy == inner.cfg.strategy.name()
        && envs_known
        && (journal.target.is_none() || journal.previous.is_some() == strategy_needs_previous)
        // Weights that moved can be judged only against the weights from before.
        && (!journal.traffic_moved || record.traffic_before.is_some())
}
