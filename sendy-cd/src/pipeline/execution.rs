//! One execution, as explicit steps: each is recorded before its AWS-facing call and after it.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Inner, Strategy};
use crate::builder::{BuildStatus, BuiltImage};
use crate::deployer::{DeployedRevision, RollbackTarget, RolloutStatus};
use crate::dns::ChangeStatus;
use crate::error::{Error, Result};
use crate::events::{Event, EventKind};
use crate::model::{BuildId, Id, ImageRef, Revision, ServiceUrl, Stage, TrafficSplit};
use crate::record::{
    ExecutionKind, ExecutionRecord, Outcome, Recovery, StageOutcome, StageRecord, Step, StepOutcome, StepRecord,
    VerificationRecord,
};
use crate::stack::{Plan, StackChange, StackPlan, StackStatus};
use crate::wait::{Check, Wait};

/// Runs `$body` (an expression using `$exec`) as stage `$stage`: recorded and emitted at its start and end.
macro_rules! staged {
    ($exec:ident, $stage:expr, $env:expr, $body:expr) => {{
        $exec.begin_stage($stage, $env, None);
        let result = $body.await;
        $exec.end_stage(&result);
        result
    }};
}

/// How many times undoing (sending traffic back, rolling a service back) is tried, whatever the error,
/// before the record says it failed: undoing is the last line of defence, so it outlasts errors that
/// would fail a forward step.
const RESTORE_ATTEMPTS: u32 = 5;

/// Runs one execution to its end and returns its record.
pub(super) async fn execute(
    inner: &Inner,
    kind: ExecutionKind,
    revision: Option<Revision>,
    prebuilt: Option<BuiltImage>,
    switch_to: Option<usize>,
    cancel: CancellationToken,
) -> Result<ExecutionRecord> {
    let mut exec = Execution::start(inner, kind.clone(), revision.clone(), cancel);
    let result = match (&kind, &revision, switch_to) {
        (ExecutionKind::SwitchBack, _, Some(to)) => exec.switch_back(to).await,
        (ExecutionKind::SwitchBack, _, None) => {
            Err(Error::InvalidConfig("switch_back needs the environment to return to".into()))
        }
        (_, Some(revision), _) => exec.deploy(revision, prebuilt).await,
        (_, None, _) => Err(Error::InvalidConfig("a deployment needs a revision".into())),
    };
    let outcome = match result {
        Ok(()) => Outcome::Succeeded,
        Err(error) => {
            let failed_stage = exec.last_stage;
            // Undoing is never cancelled: it is what makes cancelling safe.
            exec.cancel = CancellationToken::new();
            let recovery = exec.recover().await;
            match error {
                Error::Cancelled => Outcome::Cancelled { stage: failed_stage, recovery },
                Error::StageFailed { stage, reason } => Outcome::Failed { stage, reason, recovery },
                other => Outcome::Failed {
                    stage: failed_stage.unwrap_or(Stage::Source),
                    reason: other.to_string(),
                    recovery,
                },
            }
        }
    };
    if inner.cfg.dns.is_some()
        && let Ok(split) = exec.read_weights().await
    {
        exec.update(|r| r.traffic_after = Some(split));
    }
    Ok(exec.finish(outcome))
}

/// Polls the source and deploys each new revision once.
pub(super) async fn watch(inner: &Inner, cancel: &CancellationToken) -> Result<Vec<ExecutionRecord>> {
    let Some(source) = inner.cfg.source.clone() else {
        return Err(Error::InvalidConfig("watch needs a source".into()));
    };
    let mut records = vec![];
    let mut live_checked = false;
    loop {
        let latest = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            r = inner.cfg.retry.retry("read source", || source.latest(&inner.cfg.branch)) => r,
        };
        match latest {
            Ok((revision, _)) => {
                let seen =
                    inner.history().iter().any(|r| r.revision.as_ref().is_some_and(|x| x.commit == revision.commit));
                let live = if seen || live_checked { false } else { live_runs(inner, &revision).await };
                live_checked = true;
                if !seen && !live {
                    let record =
                        execute(inner, ExecutionKind::Deploy, Some(revision), None, None, cancel.clone()).await?;
                    records.push(record);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the source; trying again at the next tick"),
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(inner.cfg.watch_interval) => {}
        }
    }
    Ok(records)
}

/// Whether the live environment already runs `revision` (its image is tagged with the commit id).
async fn live_runs(inner: &Inner, revision: &Revision) -> bool {
    let live = match &inner.cfg.dns {
        Some(dns) => match inner.cfg.retry.retry("read weights", || dns.weights()).await {
            Ok((split, _)) => inner.cfg.environments.iter().max_by_key(|e| split.weight(&e.dns_target)),
            Err(_) => None,
        },
        None => inner.cfg.environments.first(),
    };
    let Some(live) = live else { return false };
    match inner.cfg.retry.retry("read revisions", || live.deployer.revisions()).await {
        Ok((revs, _)) => revs.current.is_some_and(|c| c.image.tag() == Some(revision.commit.as_str())),
        Err(_) => false,
    }
}

/// A cheap handle to emit events of one execution from inside waits.
#[derive(Clone)]
struct Emitter<'a> {
    inner: &'a Inner,
    id: Id,
    start: Instant,
}

impl Emitter<'_> {
    fn emit(&self, kind: EventKind) {
        let elapsed_ms = millis(self.start.elapsed());
        self.inner.events.publish(&Event { execution: self.id.clone(), elapsed_ms, kind });
    }
}

/// Emits a progress event when the message changes.
#[derive(Clone)]
struct Progress<'a> {
    emitter: Emitter<'a>,
    stage: Stage,
    last: std::sync::Arc<Mutex<String>>,
}

impl<'a> Progress<'a> {
    fn new(emitter: Emitter<'a>, stage: Stage) -> Self {
        Progress { emitter, stage, last: std::sync::Arc::default() }
    }

    fn report(&self, message: String) {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last != message {
            last.clone_from(&message);
            drop(last);
            self.emitter.emit(EventKind::StageProgress { stage: self.stage, message });
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

struct Execution<'a> {
    inner: &'a Inner,
    index: usize,
    id: Id,
    start: Instant,
    cancel: CancellationToken,
    last_stage: Option<Stage>,
    open_stage: Option<usize>,
    finished: bool,
    // What recovery needs to know.
    target: Option<usize>,
    previous: Option<usize>,
    traffic_before: Option<TrafficSplit>,
    /// A weight change was attempted (it may have been applied even if the call failed).
    traffic_moved: bool,
    /// A weight change was accepted.
    traffic_applied: bool,
    build_in_flight: Option<BuildId>,
    /// A stack update that was applied (or may have been: its answer may be lost) and whose end was
    /// not seen: all-at-once recovery waits for it before deciding what the live service runs.
    stack_in_flight: Option<(usize, StackPlan)>,
    /// The live environment and the revision it ran before anything changed, read first.
    live_revision: Option<(usize, Option<DeployedRevision>)>,
    /// All-at-once: the live environment's service may have changed; roll it back to the revision it
    /// ran before on failure.
    live_changed: bool,
    rolled_back_by_backend: bool,
}

impl<'a> Execution<'a> {
    fn start(inner: &'a Inner, kind: ExecutionKind, revision: Option<Revision>, cancel: CancellationToken) -> Self {
        let n = inner.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let suffix = revision.as_ref().map_or("switch-back", |r| r.commit.short());
        let id = Id::parse(format!("exec-{n}-{suffix}")).expect("a valid execution id");
        let record = ExecutionRecord {
            schema_version: ExecutionRecord::SCHEMA_VERSION,
            id: id.clone(),
            kind,
            revision: revision.clone(),
            strategy: inner.cfg.strategy.name().into(),
            started_at: jiff::Timestamp::now(),
            duration_ms: None,
            target: None,
            previous: None,
            live_revision: None,
            image: None,
            traffic_before: None,
            traffic_after: None,
            stages: vec![],
            steps: vec![],
            verifications: vec![],
            outcome: Outcome::Running,
        };
        let index = {
            let mut history = inner.history();
            history.push(record);
            history.len() - 1
        };
        let exec = Execution {
            inner,
            index,
            id,
            start: Instant::now(),
            cancel,
            last_stage: None,
            open_stage: None,
            finished: false,
            target: None,
            previous: None,
            traffic_before: None,
            traffic_moved: false,
            traffic_applied: false,
            build_in_flight: None,
            stack_in_flight: None,
            live_revision: None,
            live_changed: false,
            rolled_back_by_backend: false,
        };
        exec.emitter().emit(EventKind::ExecutionStarted { revision, strategy: inner.cfg.strategy.name().into() });
        exec
    }

    fn emitter(&self) -> Emitter<'a> {
        Emitter { inner: self.inner, id: self.id.clone(), start: self.start }
    }

    fn now_ms(&self) -> u64 {
        millis(self.start.elapsed())
    }

    /// Changes the record in the pipeline's history, where it is kept from the first step on.
    fn update(&self, f: impl FnOnce(&mut ExecutionRecord)) {
        f(&mut self.inner.history()[self.index]);
    }

    fn env_name(&self, env: Option<usize>) -> Option<crate::model::EnvironmentName> {
        env.map(|e| self.inner.cfg.environments[e].name.clone())
    }

    fn begin_stage(&mut self, stage: Stage, env: Option<usize>, detail: Option<String>) {
        let environment = self.env_name(env);
        let started_ms = self.now_ms();
        let mut at = 0;
        self.update(|r| {
            r.stages.push(StageRecord {
                stage,
                environment: environment.clone(),
                started_ms,
                finished_ms: None,
                outcome: StageOutcome::Running,
                detail,
            });
            at = r.stages.len() - 1;
        });
        self.open_stage = Some(at);
        self.last_stage = Some(stage);
        self.emitter().emit(EventKind::StageStarted { stage, environment });
    }

    fn end_stage<T>(&mut self, result: &Result<T>) {
        let Some(at) = self.open_stage.take() else { return };
        let outcome = match result {
            Ok(_) => StageOutcome::Succeeded,
            Err(Error::Cancelled) => StageOutcome::Cancelled,
            Err(Error::StageFailed { reason, .. }) => StageOutcome::Failed { reason: reason.clone() },
            Err(e) => StageOutcome::Failed { reason: e.to_string() },
        };
        let finished_ms = self.now_ms();
        let mut finished = None;
        self.update(|r| {
            let s = &mut r.stages[at];
            s.finished_ms = Some(finished_ms);
            s.outcome = outcome.clone();
            finished = Some((s.stage, s.environment.clone(), finished_ms - s.started_ms));
        });
        if let Some((stage, environment, duration_ms)) = finished {
            self.emitter().emit(EventKind::StageFinished { stage, environment, duration_ms, outcome });
        }
    }

    fn set_stage_detail(&self, detail: String) {
        if let Some(at) = self.open_stage {
            self.update(|r| r.stages[at].detail = Some(detail));
        }
    }

    /// Runs one step: records it, makes its call (cancellable), records how it ended.
    /// `call` yields the value and the number of calls it made.
    async fn step<T>(
        &mut self,
        step: Step,
        stage: Stage,
        env: Option<usize>,
        detail: Option<String>,
        call: impl Future<Output = Result<(T, u32)>>,
        describe: impl FnOnce(&T) -> Option<String>,
    ) -> Result<T> {
        self.last_stage = Some(stage);
        let started_ms = self.now_ms();
        let environment = self.env_name(env);
        let mut at = 0;
        self.update(|r| {
            r.steps.push(StepRecord {
                step,
                stage,
                environment,
                started_ms,
                finished_ms: None,
                outcome: StepOutcome::Started,
                detail: detail.clone(),
                calls: 0,
            });
            at = r.steps.len() - 1;
        });
        self.emitter().emit(EventKind::StepStarted { step, stage });
        let began = Instant::now();
        let cancel = self.cancel.clone();
        let result = tokio::select! {
            biased;
            () = cancel.cancelled() => Err(Error::Cancelled),
            r = call => r,
        };
        let (outcome, calls, detail) = match &result {
            Ok((value, calls)) => (StepOutcome::Done, *calls, describe(value).or(detail)),
            Err(Error::Cancelled) => (StepOutcome::Cancelled, 0, detail),
            Err(e) => (StepOutcome::Failed { reason: e.to_string() }, 0, detail),
        };
        if matches!(outcome, StepOutcome::Done)
            && matches!(step, Step::WaitBuild | Step::WaitStack | Step::WaitRollout | Step::WaitDnsChange)
        {
            self.inner.learn(step, began.elapsed());
        }
        let finished_ms = self.now_ms();
        self.update(|r| {
            let s = &mut r.steps[at];
            s.finished_ms = Some(finished_ms);
            s.outcome = outcome.clone();
            s.detail.clone_from(&detail);
            s.calls = calls;
        });
        self.emitter().emit(EventKind::StepFinished { step, stage, outcome });
        result.map(|(v, _)| v)
    }

    /// Polls `check` until it reports a final status, as one recorded step (see [`step`](Self::step)):
    /// the wait is paced by what the pipeline learned of `step`'s usual duration and ends at
    /// `deadline`; `check` reports progress through the [`Progress`] it is given (a stage progress
    /// event when the message changes); the step records the number of status calls. The one place
    /// the pipeline waits for a backend.
    #[allow(clippy::too_many_arguments)]
    async fn wait_step<T, C, Fut>(
        &mut self,
        step: Step,
        stage: Stage,
        env: Option<usize>,
        detail: String,
        what: &str,
        deadline: Duration,
        check: C,
        describe: impl FnOnce(&T) -> Option<String>,
    ) -> Result<T>
    where
        C: Fn(Progress<'a>) -> Fut,
        Fut: Future<Output = Result<Check<T>>>,
    {
        let inner = self.inner;
        let progress = Progress::new(self.emitter(), stage);
        let wait = Wait::new(&inner.cfg.poll, what, deadline).expected(inner.expected(step));
        let check = &check;
        let progress = &progress;
        self.step(
            step,
            stage,
            env,
            Some(detail),
            async move {
                let (value, stats) = wait.until(|| check(progress.clone())).await?;
                Ok((value, stats.calls))
            },
            describe,
        )
        .await
    }

    fn finish(mut self, outcome: Outcome) -> ExecutionRecord {
        self.finished = true;
        let duration_ms = self.now_ms();
        self.update(|r| {
            r.outcome = outcome.clone();
            r.duration_ms = Some(duration_ms);
        });
        self.emitter().emit(EventKind::ExecutionFinished { outcome, duration_ms });
        self.inner.history()[self.index].clone()
    }

    // ---- the flows -------------------------------------------------------------------------------

    async fn deploy(&mut self, revision: &Revision, prebuilt: Option<BuiltImage>) -> Result<()> {
        let (target, previous) = self.choose_environments().await?;
        // What the live environment runs, read before anything can change it: where all-at-once
        // rolls back to (a stack update may roll the service out before the rollout stage does).
        let live = previous.unwrap_or(target);
        let live_revision = self.read_revisions(live).await?;
        if let Some(built) = &prebuilt
            && live_revision.as_ref().is_some_and(|r| r.image == built.image)
        {
            // Redeploying what the live environment runs already changes nothing.
            let name = self.env_name(Some(live));
            self.update(|r| {
                r.image = Some(built.clone());
                r.target = name;
                r.previous = None;
            });
            return Ok(());
        }
        let built = match prebuilt {
            Some(built) => built,
            None => staged!(self, Stage::Build, None, self.build_stage(revision))?,
        };
        self.update(|r| r.image = Some(built.clone()));
        let image = built.image;
        let url = staged!(self, Stage::Stack, Some(target), self.stack_stage(&image))?;
        staged!(self, Stage::Rollout, Some(target), self.rollout_stage(&image))?;
        match self.inner.cfg.strategy.clone() {
            Strategy::AllAtOnce => {
                self.verify(target, &url, "after rollout").await?;
            }
            Strategy::BlueGreen => {
                let previous = previous.expect("blue/green always has a previous environment");
                self.verify(target, &url, "before traffic").await?;
                self.ensure_weights_unchanged().await?;
                let split = self.split(target, previous, 100)?;
                self.shift(split, "switch", Duration::ZERO).await?;
                self.verify(target, &url, "after switch").await?;
            }
            Strategy::Canary(canary) => {
                let previous = previous.expect("a canary always has a previous environment");
                self.verify(target, &url, "before traffic").await?;
                self.ensure_weights_unchanged().await?;
                for percent in canary.steps {
                    let split = self.split(target, previous, percent)?;
                    let bake = if percent < 100 { canary.bake } else { Duration::ZERO };
                    self.shift(split, &format!("canary {percent}%"), bake).await?;
                    self.verify(target, &url, &format!("canary {percent}%")).await?;
                }
            }
        }
        Ok(())
    }

    /// Sends all traffic to environment `to` (chosen by the pipeline from its history, its revision
    /// checked), after verifying it. Traffic already all on `to` is left as it is: switching back twice
    /// ends where switching back once did.
    async fn switch_back(&mut self, to: usize) -> Result<()> {
        let weights = self.read_weights().await?;
        let envs = &self.inner.cfg.environments;
        // The environment with the most traffic other than `to`: where traffic goes back on failure.
        let from = (0..envs.len())
            .filter(|e| *e != to && weights.weight(&envs[*e].dns_target) > 0)
            .max_by_key(|e| weights.weight(&envs[*e].dns_target));
        self.traffic_before = Some(weights.clone());
        self.target = Some(to);
        self.previous = from;
        let (target, prev) = (self.env_name(Some(to)), self.env_name(from));
        self.update(|r| {
            r.traffic_before = Some(weights.clone());
            r.target = target;
            r.previous = prev;
        });
        let url = staged!(self, Stage::Stack, Some(to), self.outputs_stage())?;
        self.verify(to, &url, "before switching back").await?;
        if weights.weight(&envs[to].dns_target) == 100 {
            return Ok(());
        }
        let split = self.split_all(to)?;
        self.shift(split, "switch back", Duration::ZERO).await?;
        self.verify(to, &url, "after switching back").await?;
        Ok(())
    }

    /// Reads what `env`'s service runs now (the first step of a deployment, before anything changes).
    async fn read_revisions(&mut self, env: usize) -> Result<Option<DeployedRevision>> {
        let inner = self.inner;
        let deployer = &inner.cfg.environments[env].deployer;
        let revisions = self
            .step(
                Step::ReadRevisions,
                Stage::Rollout,
                Some(env),
                None,
                inner.cfg.retry.retry("read revisions", || deployer.revisions()),
                |r| r.current.as_ref().map(|c| format!("current {} ({})", c.revision, c.image)),
            )
            .await?;
        let current = revisions.current;
        self.live_revision = Some((env, current.clone()));
        self.update(|r| r.live_revision.clone_from(&current));
        Ok(current)
    }

    /// Picks the environment to deploy to, and the one that has the traffic now.
    async fn choose_environments(&mut self) -> Result<(usize, Option<usize>)> {
        let envs = &self.inner.cfg.environments;
        let (target, previous) = if self.inner.cfg.dns.is_none() {
            (0, None)
        } else {
            let weights = self.read_weights().await?;
            if let Some(missing) = envs.iter().find(|e| !weights.contains(&e.dns_target)) {
                return Err(Error::StageFailed {
                    stage: Stage::Traffic,
                    reason: format!(
                        "the weighted record has no set identifier {} (environment {})",
                        missing.dns_target, missing.name
                    ),
                });
            }
            let live =
                (0..envs.len()).max_by_key(|e| weights.weight(&envs[*e].dns_target)).expect("at least one environment");
            self.traffic_before = Some(weights.clone());
            self.update(|r| r.traffic_before = Some(weights.clone()));
            match self.inner.cfg.strategy {
                Strategy::AllAtOnce => (live, None),
                Strategy::BlueGreen | Strategy::Canary(_) => {
                    let idle = (0..envs.len()).find(|e| *e != live && weights.weight(&envs[*e].dns_target) == 0);
                    let Some(idle) = idle else {
                        return Err(Error::StageFailed {
                            stage: Stage::Traffic,
                            reason: format!("no idle environment (weight 0): the weights are {weights}"),
                        });
                    };
                    (idle, Some(live))
                }
            }
        };
        self.target = Some(target);
        self.previous = previous;
        let (t, p) = (self.env_name(Some(target)), self.env_name(previous));
        self.update(|r| {
            r.target = t;
            r.previous = p;
        });
        Ok((target, previous))
    }

    async fn read_weights(&mut self) -> Result<TrafficSplit> {
        self.read_weights_in(Stage::Traffic).await
    }

    async fn read_weights_in(&mut self, stage: Stage) -> Result<TrafficSplit> {
        let inner = self.inner;
        let dns = inner.cfg.dns.as_ref().ok_or_else(|| Error::InvalidConfig("no DNS switch".into()))?;
        self.step(Step::ReadWeights, stage, None, None, inner.cfg.retry.retry("read weights", || dns.weights()), |w| {
            Some(w.to_string())
        })
        .await
    }

    /// Fails if someone else changed the weights since the execution read them.
    async fn ensure_weights_unchanged(&mut self) -> Result<()> {
        let now = self.read_weights().await?;
        if Some(&now) != self.traffic_before.as_ref() {
            return Err(Error::StageFailed {
                stage: Stage::Traffic,
                reason: format!(
                    "the weights changed while deploying (were {}, are {now}); not switching",
                    self.traffic_before.as_ref().map(ToString::to_string).unwrap_or_default()
                ),
            });
        }
        Ok(())
    }

    /// `percent` of the traffic to `target`, the rest to `previous`, none to other environments.
    fn split(&self, target: usize, previous: usize, percent: u8) -> Result<TrafficSplit> {
        let envs = &self.inner.cfg.environments;
        let weight = |e: usize| {
            if e == target {
                percent
            } else if e == previous {
                100 - percent
            } else {
                0
            }
        };
        Ok(TrafficSplit::new((0..envs.len()).map(|e| (envs[e].dns_target.clone(), weight(e))))?)
    }

    /// All the traffic to `to`, none to the other environments.
    fn split_all(&self, to: usize) -> Result<TrafficSplit> {
        let envs = &self.inner.cfg.environments;
        Ok(TrafficSplit::new(
            envs.iter().enumerate().map(|(e, env)| (env.dns_target.clone(), if e == to { 100 } else { 0 })),
        )?)
    }

    async fn verify(&mut self, env: usize, url: &ServiceUrl, phase: &str) -> Result<()> {
        staged!(self, Stage::Verify, Some(env), self.verify_stage(url, phase))
    }

    async fn shift(&mut self, split: TrafficSplit, label: &str, bake: Duration) -> Result<()> {
        let target = self.target;
        staged!(self, Stage::Traffic, target, self.shift_stage(split, label, bake))
    }

    /// Sets `split` and waits until it is applied (and, if `wait_ttl`, one TTL more).
    async fn set_weights(
        &mut self,
        stage: Stage,
        split: &TrafficSplit,
        wait_ttl: bool,
        recovering: bool,
    ) -> Result<()> {
        let inner = self.inner;
        let dns = inner.cfg.dns.as_ref().ok_or_else(|| Error::InvalidConfig("no DNS switch".into()))?;
        let retry = if recovering { &inner.cfg.recovery_retry } else { &inner.cfg.retry };
        // Counted as moved before the call: a call that times out may still have been applied.
        self.traffic_moved = true;
        let change = self
            .step(
                Step::SetWeights,
                stage,
                self.target,
                Some(split.to_string()),
                retry.retry("set weights", || dns.set_weights(split)),
                |c| Some(format!("{split} (change {c})")),
            )
            .await?;
        if !recovering {
            self.traffic_applied = true;
        }
        self.emitter().emit(EventKind::TrafficShifted { weights: split.clone() });
        let change_ref = &change;
        let target = self.target;
        self.wait_step(
            Step::WaitDnsChange,
            stage,
            target,
            change.to_string(),
            "DNS change",
            inner.cfg.deadlines.traffic,
            |progress| async move {
                Ok(match dns.change_status(change_ref).await? {
                    ChangeStatus::Applied => Check::Ready(()),
                    ChangeStatus::Pending => {
                        progress.report(format!("change {change_ref} pending"));
                        Check::Pending
                    }
                })
            },
            |()| None,
        )
        .await?;
        if wait_ttl {
            let ttl = dns.ttl();
            self.pause(Step::WaitTtl, stage, ttl, format!("{ttl:?}")).await?;
        }
        Ok(())
    }

    /// Waits `duration` on tokio's clock, recorded as `step` (cancellable like any step).
    async fn pause(&mut self, step: Step, stage: Stage, duration: Duration, detail: String) -> Result<()> {
        let target = self.target;
        let sleep = async move {
            tokio::time::sleep(duration).await;
            Ok(((), 0))
        };
        self.step(step, stage, target, Some(detail), sleep, |()| None).await
    }

    // ---- undoing -----------------------------------------------------------------------------------

    /// Undoes what users could see of a failed or cancelled execution.
    async fn recover(&mut self) -> Recovery {
        let mut recovery = Recovery::NotNeeded;
        if let Some(build) = self.build_in_flight.take() {
            let builder = &self.inner.cfg.builder;
            let retry = &self.inner.cfg.recovery_retry;
            self.begin_stage(Stage::Rollback, None, Some(format!("stop build {build}")));
            let r = self
                .step(
                    Step::StopBuild,
                    Stage::Rollback,
                    None,
                    Some(build.to_string()),
                    retry.retry("stop build", || builder.stop(&build)),
                    |()| None,
                )
                .await;
            self.end_stage(&r);
        }
        if self.traffic_moved {
            let before = self.traffic_before.clone().expect("traffic moves only after the weights were read");
            let to = self.env_name(self.previous.or(self.target));
            let previous = self.previous;
            self.begin_stage(Stage::Rollback, previous, Some(format!("restore {before}")));
            let mut result = Err(Error::Backend("not attempted".into()));
            for _ in 0..RESTORE_ATTEMPTS {
                if let Ok(now) = self.read_weights_in(Stage::Rollback).await
                    && now == before
                {
                    result = Ok(());
                    break;
                }
                result = self.set_weights(Stage::Rollback, &before, false, true).await;
                if result.is_ok() {
                    break;
                }
            }
            self.end_stage(&result);
            recovery = match (result, to) {
                (Ok(()), _) if !self.traffic_applied => Recovery::NotNeeded,
                (Ok(()), Some(to)) => Recovery::TrafficRestored { to },
                (Ok(()), None) => Recovery::Failed { reason: "weights restored, but no environment is named".into() },
                (Err(e), _) => Recovery::Failed { reason: format!("could not send traffic back ({before}): {e}") },
            };
        } else if self.live_changed {
            if let Some((env, plan)) = self.stack_in_flight.take() {
                // The update goes on without us: the service may change when it ends. Wait for that
                // end before reading what the service runs (it rolls back if it failed).
                self.begin_stage(Stage::Rollback, Some(env), Some(format!("wait for stack update {}", plan.id)));
                let r = self.settle_stack(env, &plan).await;
                self.end_stage(&r);
            }
            recovery = self.restore_live_service().await;
        }
        recovery
    }

    /// Waits until the update `plan` started on `env`'s stack is over, however it ended, trying again
    /// (whatever the error) up to [`RESTORE_ATTEMPTS`] times.
    async fn settle_stack(&mut self, env: usize, plan: &StackPlan) -> Result<()> {
        let inner = self.inner;
        let stack = &inner.cfg.environments[env].stack;
        let mut result = Err(Error::Backend("not attempted".into()));
        for _ in 0..RESTORE_ATTEMPTS {
            result = self
                .wait_step(
                    Step::WaitStack,
                    Stage::Rollback,
                    Some(env),
                    plan.id.to_string(),
                    "stack update",
                    inner.cfg.deadlines.stack,
                    |_| async move {
                        let status = stack.status(plan).await?;
                        Ok(if status.is_final() { Check::Ready(status) } else { Check::Pending })
                    },
                    |s| Some(format!("{s:?}")),
                )
                .await
                .map(|_| ());
            if result.is_ok() {
                break;
            }
        }
        result
    }

    /// All-at-once: puts the live service back on the revision it ran before the execution, unless
    /// it runs it already (the stack update rolled back, or the circuit breaker rolled the rollout back).
    async fn restore_live_service(&mut self) -> Recovery {
        let Some((env, before)) = self.live_revision.clone() else {
            return Recovery::Failed { reason: "the live service's revision was never read".into() };
        };
        let Some(before) = before else {
            return Recovery::Failed { reason: "the live service has no earlier revision to roll back to".into() };
        };
        let inner = self.inner;
        let deployer = &inner.cfg.environments[env].deployer;
        let now = self
            .step(
                Step::ReadRevisions,
                Stage::Rollback,
                Some(env),
                None,
                inner.cfg.recovery_retry.retry("read revisions", || deployer.revisions()),
                |r| r.current.as_ref().map(|c| format!("current {} ({})", c.revision, c.image)),
            )
            .await;
        match now {
            Ok(now) if now.current.as_ref().is_some_and(|c| c.revision == before.revision) => {
                return if self.rolled_back_by_backend {
                    Recovery::ServiceRolledBack { revision: before.revision }
                } else {
                    Recovery::NotNeeded
                };
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not read the live service's revision; rolling back anyway"),
        }
        let revision = before.revision;
        self.begin_stage(Stage::Rollback, Some(env), Some(format!("roll back to {revision} ({})", before.image)));
        let r = self.rollback_service(env, &revision).await;
        self.end_stage(&r);
        match r {
            Ok(()) => Recovery::ServiceRolledBack { revision },
            Err(e) => Recovery::Failed { reason: format!("could not roll the service back to {revision}: {e}") },
        }
    }

    /// Rolls `env`'s service back to `revision` and waits for it, trying again (re-polling the same
    /// rollback deployment once one is started) up to [`RESTORE_ATTEMPTS`] times.
    async fn rollback_service(&mut self, env: usize, revision: &str) -> Result<()> {
        let inner = self.inner;
        let deployer = &inner.cfg.environments[env].deployer;
        let target = RollbackTarget::Revision(revision.to_owned());
        let mut rollout = None;
        let mut result = Err(Error::Backend("not attempted".into()));
        for _ in 0..RESTORE_ATTEMPTS {
            let current = match rollout.clone() {
                Some(r) => r,
                None => {
                    let started = self
                        .step(
                            Step::RollbackService,
                            Stage::Rollback,
                            Some(env),
                            Some(revision.to_owned()),
                            inner.cfg.recovery_retry.retry("roll back", || deployer.rollback(&target)),
                            |r| Some(format!("deployment {}", r.deployment_id)),
                        )
                        .await;
                    match started {
                        Ok(r) => {
                            rollout = Some(r.clone());
                            r
                        }
                        Err(e) => {
                            result = Err(e);
                            continue;
                        }
                    }
                }
            };
            result = match self.wait_rollout(Stage::Rollback, env, &current).await {
                Ok(RolloutStatus::Completed { .. }) => return Ok(()),
                Ok(other) => {
                    // The rollback itself failed or was replaced: start another.
                    rollout = None;
                    Err(Error::StageFailed { stage: Stage::Rollback, reason: describe_rollout(&other) })
                }
                Err(e) => Err(e),
            };
        }
        result
    }

    async fn wait_rollout(
        &mut self,
        stage: Stage,
        env: usize,
        rollout: &crate::model::Rollout,
    ) -> Result<RolloutStatus> {
        let inner = self.inner;
        let deployer = &inner.cfg.environments[env].deployer;
        self.wait_step(
            Step::WaitRollout,
            stage,
            Some(env),
            rollout.deployment_id.to_string(),
            "rollout",
            inner.cfg.deadlines.rollout,
            |progress| async move {
                let status = deployer.status(rollout).await?;
                if let RolloutStatus::InProgress { running, desired, failed } = &status {
                    progress.report(format!("{running}/{desired} tasks running, {failed} failed"));
                }
                Ok(if status.is_final() { Check::Ready(status) } else { Check::Pending })
            },
            |s| Some(describe_rollout(s)),
        )
        .await
    }
}

impl Drop for Execution<'_> {
    /// An execution whose future was dropped is closed in the record as cancelled, nothing undone.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let now = self.now_ms();
        let recovery = if self.traffic_moved {
            Recovery::Failed {
                reason: "abandoned (its future was dropped) after traffic moved; weights left as they were".into(),
            }
        } else {
            Recovery::NotNeeded
        };
        let outcome = Outcome::Cancelled { stage: self.last_stage, recovery };
        self.update(|r| {
            for s in r.stages.iter_mut().filter(|s| s.finished_ms.is_none()) {
                s.finished_ms = Some(now);
                s.outcome = StageOutcome::Cancelled;
            }
            for s in r.steps.iter_mut().filter(|s| s.finished_ms.is_none()) {
                s.finished_ms = Some(now);
                s.outcome = StepOutcome::Cancelled;
            }
            r.outcome = outcome.clone();
            r.duration_ms = Some(now);
        });
        self.emitter().emit(EventKind::ExecutionFinished { outcome, duration_ms: now });
    }
}

fn describe_rollout(status: &RolloutStatus) -> String {
    match status {
        RolloutStatus::InProgress { running, desired, failed } => {
            format!("in progress: {running}/{desired} running, {failed} failed")
        }
        RolloutStatus::Completed { running, desired } => format!("completed: {running}/{desired} running"),
        RolloutStatus::Failed { reason, rolled_back: true, .. } => format!("{reason} (rolled back)"),
        RolloutStatus::Failed { reason, .. } => reason.clone(),
        RolloutStatus::Superseded { by } => format!("superseded by deployment {by}"),
    }
}

// ---- stages --------------------------------------------------------------------------------------------

impl Execution<'_> {
    async fn build_stage(&mut self, revision: &Revision) -> Result<BuiltImage> {
        let exec = self;
        let inner = exec.inner;
        let builder = &inner.cfg.builder;
        let build = exec
            .step(
                Step::StartBuild,
                Stage::Build,
                None,
                Some(revision.commit.to_string()),
                inner.cfg.retry.retry("start build", || builder.start(revision)),
                |b| Some(b.to_string()),
            )
            .await?;
        exec.build_in_flight = Some(build.clone());
        exec.set_stage_detail(format!("build {build}"));
        let build_ref = &build;
        let status = exec
            .wait_step(
                Step::WaitBuild,
                Stage::Build,
                None,
                build.to_string(),
                "build",
                inner.cfg.deadlines.build,
                |progress| async move {
                    let status = builder.status(build_ref).await?;
                    match &status {
                        BuildStatus::Queued => progress.report("QUEUED".into()),
                        BuildStatus::InProgress { phase } => progress.report(phase.clone()),
                        _ => {}
                    }
                    Ok(if status.is_final() { Check::Ready(status) } else { Check::Pending })
                },
                |s| match s {
                    BuildStatus::Succeeded(b) => Some(b.image.to_string()),
                    _ => None,
                },
            )
            .await?;
        exec.build_in_flight = None;
        match status {
            BuildStatus::Succeeded(built) => {
                exec.set_stage_detail(format!("{} by build {}", built.image, built.build));
                Ok(built)
            }
            BuildStatus::Failed { phase, reason } => Err(Error::StageFailed {
                stage: Stage::Build,
                reason: format!("build {build} failed in {phase}: {reason}"),
            }),
            BuildStatus::Stopped => {
                Err(Error::StageFailed { stage: Stage::Build, reason: format!("build {build} was stopped") })
            }
            other => Err(Error::Backend(format!("build {build} reported a non-final status as final: {other:?}"))),
        }
    }

    async fn stack_stage(&mut self, image: &ImageRef) -> Result<ServiceUrl> {
        let exec = self;
        let inner = exec.inner;
        let env_index = exec.target.expect("a target is chosen before the stack stage");
        let env = &inner.cfg.environments[env_index];
        let mut parameters = env.parameters.clone();
        if let Some(key) = &env.image_parameter {
            parameters.insert(key.clone(), image.to_string());
        }
        let change = StackChange { parameters, template: None };
        let plan = exec
            .step(
                Step::PlanStack,
                Stage::Stack,
                Some(env_index),
                Some(env.stack_name.to_string()),
                inner.cfg.retry.retry("plan stack", || env.stack.plan(&env.stack_name, &change)),
                |p| {
                    Some(match p {
                        Plan::NoChanges => "no changes".into(),
                        Plan::Ready(plan) => {
                            let changes: Vec<String> =
                                plan.changes.iter().map(|c| format!("{:?} {}", c.action, c.logical_id)).collect();
                            format!("plan {}: {}", plan.id, changes.join(", "))
                        }
                    })
                },
            )
            .await?;
        match plan {
            Plan::NoChanges => exec.set_stage_detail(format!("{}: nothing to change", env.stack_name)),
            Plan::Ready(plan) => {
                exec.set_stage_detail(format!("{}: {} resource changes", env.stack_name, plan.changes.len()));
                if matches!(inner.cfg.strategy, Strategy::AllAtOnce) {
                    // Applying the stack may roll the live service out (an image parameter does):
                    // from here on a failure rolls it back to the revision read first.
                    exec.live_changed = true;
                }
                // Counted before the call: an apply whose answer was lost may still have started.
                exec.stack_in_flight = Some((env_index, plan.clone()));
                exec.step(
                    Step::ApplyStack,
                    Stage::Stack,
                    Some(env_index),
                    Some(plan.id.to_string()),
                    inner.cfg.retry.retry("apply stack", || env.stack.apply(&plan)),
                    |()| None,
                )
                .await?;
                let plan_ref = &plan;
                let status = exec
                    .wait_step(
                        Step::WaitStack,
                        Stage::Stack,
                        Some(env_index),
                        plan.id.to_string(),
                        "stack update",
                        inner.cfg.deadlines.stack,
                        |progress| async move {
                            let status = env.stack.status(plan_ref).await?;
                            if let StackStatus::InProgress { status } = &status {
                                progress.report(status.clone());
                            }
                            Ok(if status.is_final() { Check::Ready(status) } else { Check::Pending })
                        },
                        |s| Some(format!("{s:?}")),
                    )
                    .await?;
                exec.stack_in_flight = None;
                let failed = |resource: Option<String>, reason: String, what: &str| Error::StageFailed {
                    stage: Stage::Stack,
                    reason: format!(
                        "{} {what}: {}{reason}",
                        env.stack_name,
                        resource.map(|r| format!("{r}: ")).unwrap_or_default()
                    ),
                };
                match status {
                    StackStatus::Complete => {}
                    StackStatus::RolledBack { resource, reason } => {
                        return Err(failed(resource, reason, "rolled back"));
                    }
                    StackStatus::Failed { resource, reason } => return Err(failed(resource, reason, "failed")),
                    other => {
                        return Err(Error::Backend(format!("stack reported a non-final status as final: {other:?}")));
                    }
                }
            }
        }
        exec.outputs_stage().await
    }

    /// Reads the target environment's service URL from its stack outputs.
    async fn outputs_stage(&mut self) -> Result<ServiceUrl> {
        let exec = self;
        let inner = exec.inner;
        let env_index = exec.target.expect("a target is chosen first");
        let env = &inner.cfg.environments[env_index];
        let outputs = exec
            .step(
                Step::ReadOutputs,
                Stage::Stack,
                Some(env_index),
                Some(env.stack_name.to_string()),
                inner.cfg.retry.retry("read outputs", || env.stack.outputs(&env.stack_name)),
                |o| o.get(&env.url_output).map(str::to_owned),
            )
            .await?;
        outputs
            .service_url(&env.url_output)
            .map_err(|e| Error::StageFailed { stage: Stage::Stack, reason: format!("{}: {e}", env.stack_name) })
    }

    async fn rollout_stage(&mut self, image: &ImageRef) -> Result<()> {
        let exec = self;
        let inner = exec.inner;
        let env_index = exec.target.expect("a target is chosen before the rollout");
        let env = &inner.cfg.environments[env_index];
        if matches!(inner.cfg.strategy, Strategy::AllAtOnce) {
            // From here on the live service changes: a failure rolls it back to the revision read first.
            exec.live_changed = true;
        }
        let rollout = exec
            .step(
                Step::Deploy,
                Stage::Rollout,
                Some(env_index),
                Some(image.to_string()),
                inner.cfg.retry.retry("deploy", || env.deployer.deploy(image)),
                |r| Some(format!("deployment {}", r.deployment_id)),
            )
            .await?;
        exec.set_stage_detail(format!("deployment {} of {image}", rollout.deployment_id));
        match exec.wait_rollout(Stage::Rollout, env_index, &rollout).await? {
            RolloutStatus::Completed { .. } => Ok(()),
            other => {
                if matches!(other, RolloutStatus::Failed { rolled_back: true, .. }) {
                    exec.rolled_back_by_backend = true;
                }
                Err(Error::StageFailed {
                    stage: Stage::Rollout,
                    reason: format!(
                        "deployment {} on {}: {}",
                        rollout.deployment_id,
                        env.name,
                        describe_rollout(&other)
                    ),
                })
            }
        }
    }

    async fn verify_stage(&mut self, url: &ServiceUrl, phase: &str) -> Result<()> {
        let exec = self;
        let inner = exec.inner;
        let env_index = exec.target.expect("a target is chosen before verifying");
        let env = &inner.cfg.environments[env_index];
        exec.set_stage_detail(format!("{} {}", phase, url));
        let check = &inner.cfg.health;
        let (passed, report) = exec
            .step(
                Step::Verify,
                Stage::Verify,
                Some(env_index),
                Some(format!("{} {url}", phase)),
                async move {
                    let (passed, report) =
                        check.measure(env.verifier.as_ref(), url, inner.cfg.deadlines.verify).await?;
                    let probes = report.probes;
                    Ok(((passed, report), probes))
                },
                |(passed, r)| {
                    Some(format!(
                        "{} ({}/{} probes ok)",
                        if *passed { "passed" } else { "failed" },
                        r.successes,
                        r.probes
                    ))
                },
            )
            .await?;
        let failure = (!passed).then(|| report.failure_summary(url));
        let record = VerificationRecord { environment: env.name.clone(), phase: phase.to_owned(), report, passed };
        exec.update(|r| r.verifications.push(record));
        match failure {
            None => Ok(()),
            Some(reason) => {
                Err(Error::StageFailed { stage: Stage::Verify, reason: format!("{} ({}): {reason}", env.name, phase) })
            }
        }
    }

    /// Moves the weights to `split`, waits until applied and one TTL, then bakes for `bake`.
    async fn shift_stage(&mut self, split: TrafficSplit, label: &str, bake: Duration) -> Result<()> {
        self.set_stage_detail(format!("{label}: {split}"));
        self.set_weights(Stage::Traffic, &split, true, false).await?;
        if !bake.is_zero() {
            self.pause(Step::Bake, Stage::Traffic, bake, format!("{label} for {bake:?}")).await?;
        }
        Ok(())
    }
}
