//! Settling executions a process left unfinished (killed, crashed, paused past its lease): the
//! journal in the store says what each was doing; what users could see of it is undone through the
//! handles it holds, never by doing a step again.

use super::*;
use crate::model::EnvironmentName;
use crate::stack::PlanKind;
use crate::store::Holder;

/// Settles every unfinished execution of the pipeline the store holds, oldest first. Runs under the
/// lease: an execution still running elsewhere holds it, so whatever is unfinished here was left.
pub(in crate::pipeline) async fn resume(inner: &Inner, lease: &LeaseGuard) -> Result<Vec<ExecutionRecord>> {
    let unfinished: Vec<_> =
        inner.stored_history(crate::pipeline::SEARCHED).await?.into_iter().filter(|r| !r.outcome.is_final()).collect();
    let mut settled = vec![];
    for record in unfinished.into_iter().rev() {
        settled.push(settle(inner, lease, record).await?);
    }
    Ok(settled)
}

fn env_index(inner: &Inner, name: Option<&EnvironmentName>) -> Option<usize> {
    let name = name?;
    inner.cfg.environments.iter().position(|e| &e.name == name)
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
async fn settle(inner: &Inner, lease: &LeaseGuard, record: ExecutionRecord) -> Result<ExecutionRecord> {
    let journal = read_journal(inner, &record);
    let holder = Holder::this_process("resume");
    let open: Vec<String> = record
        .steps
        .iter()
        .filter(|s| s.finished_ms.is_none())
        .map(|s| format!("{:?} ({})", s.step, s.detail.as_deref().unwrap_or("-")))
        .collect();
    let resumed_by = format!(
        "{holder}: it stood at {}",
        if open.is_empty() { "a step boundary".to_owned() } else { open.join(", ") }
    );
    tracing::info!(execution = %record.id, %resumed_by, "settling an execution left unfinished");
    // Where the interrupted execution's clock stood, so that what resume records continues its times.
    let elapsed = jiff::Timestamp::now().duration_since(record.started_at).unsigned_abs();
    let start = Instant::now().checked_sub(elapsed).unwrap_or_else(Instant::now);
    let traffic_before = record.traffic_before.clone();
    let live_revision = journal.target.filter(|_| journal.live_changed).map(|t| (t, record.live_revision.clone()));
    let id = record.id.clone();
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
    };
    let now = exec.now_ms();
    exec.update(|r| {
        r.cancel_open(now);
        r.resumed_by = Some(resumed_by.clone());
    });
    exec.persist().await?;
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
