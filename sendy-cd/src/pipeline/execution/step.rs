//! An execution and its steps: each recorded before its call and after it, as events and in the
//! record; stages opened and closed; the one helper that waits for a backend.

use super::*;

/// A cheap handle to emit events of one execution from inside waits.
#[derive(Clone)]
pub(super) struct Emitter<'a> {
    pub(super) inner: &'a Inner,
    pub(super) id: Id,
    pub(super) start: Instant,
}

impl Emitter<'_> {
    pub(super) fn emit(&self, kind: EventKind) {
        let elapsed_ms = millis(self.start.elapsed());
        self.inner.events.publish(&Event { execution: self.id.clone(), elapsed_ms, kind });
    }
}

/// Emits a progress event when the message changes.
#[derive(Clone)]
pub(super) struct Progress<'a> {
    pub(super) emitter: Emitter<'a>,
    pub(super) stage: Stage,
    pub(super) last: std::sync::Arc<Mutex<String>>,
}

impl<'a> Progress<'a> {
    pub(super) fn new(emitter: Emitter<'a>, stage: Stage) -> Self {
        Progress { emitter, stage, last: std::sync::Arc::default() }
    }

    pub(super) fn report(&self, message: String) {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last != message {
            last.clone_from(&message);
            drop(last);
            self.emitter.emit(EventKind::StageProgress { stage: self.stage, message });
        }
    }
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(super) struct Execution<'a> {
    pub(super) inner: &'a Inner,
    pub(super) lease: &'a LeaseGuard,
    pub(super) id: Id,
    pub(super) start: Instant,
    pub(super) cancel: CancellationToken,
    pub(super) last_stage: Option<Stage>,
    pub(super) open_stage: Option<usize>,
    pub(super) finished: bool,
    // What recovery needs to know.
    pub(super) target: Option<usize>,
    pub(super) previous: Option<usize>,
    pub(super) traffic_before: Option<TrafficSplit>,
    /// A weight change was attempted (it may have been applied even if the call failed).
    pub(super) traffic_moved: bool,
    /// A weight change was accepted.
    pub(super) traffic_applied: bool,
    pub(super) build_in_flight: Option<BuildId>,
    /// A stack update that was applied (or may have been: its answer may be lost) and whose end was
    /// not seen: all-at-once recovery waits for it before deciding what the live service runs.
    pub(super) stack_in_flight: Option<(usize, StackPlan)>,
    /// The live environment and the revision it ran before anything changed, read first.
    pub(super) live_revision: Option<(usize, Option<DeployedRevision>)>,
    /// All-at-once: the live environment's service may have changed; roll it back to the revision it
    /// ran before on failure.
    pub(super) live_changed: bool,
    pub(super) rolled_back_by_backend: bool,
    /// What the interrupted execution this one resumes had done already (resume forward).
    pub(super) carry: Option<super::resume::Carry>,
    /// An ECS-managed deployment started and not seen to end: recovery stops it.
    pub(super) managed_in_flight: Option<crate::model::Rollout>,
    /// An ECS-managed deployment that ended successful though a check failed (ECS did not wait):
    /// recovery rolls the service back.
    pub(super) managed_went_through: bool,
}

impl<'a> Execution<'a> {
    /// Opens the execution: numbered after every execution the store holds of this pipeline (taken
    /// under the lease, so unique across processes), and saved before anything else happens.
    pub(super) async fn start(
        inner: &'a Inner,
        lease: &'a LeaseGuard,
        kind: ExecutionKind,
        revision: Option<Revision>,
        cancel: CancellationToken,
    ) -> Result<Self> {
        let stored = inner.cfg.store.count(&inner.cfg.name).await?;
        let n = stored.max(inner.counter.fetch_add(1, Ordering::Relaxed)) + 1;
        inner.counter.store(n, Ordering::Relaxed);
        let suffix = revision.as_ref().map_or("switch-back", |r| r.commit.short());
        let id = Id::parse(format!("exec-{n}-{suffix}"))?;
        let mut record = ExecutionRecord::started(id.clone(), kind, revision.clone(), inner.cfg.strategy.name());
        record.started_at = inner.cfg.clock.now();
        inner.cfg.store.save(&inner.cfg.name, &record).await?;
        inner.remember(record);
        let exec = Execution {
            inner,
            lease,
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
            carry: None,
            managed_in_flight: None,
            managed_went_through: false,
        };
        exec.emitter().emit(EventKind::ExecutionStarted { revision, strategy: inner.cfg.strategy.name().into() });
        Ok(exec)
    }

    pub(super) fn emitter(&self) -> Emitter<'a> {
        Emitter { inner: self.inner, id: self.id.clone(), start: self.start }
    }

    pub(super) fn now_ms(&self) -> u64 {
        millis(self.start.elapsed())
    }

    /// Changes the record in the pipeline's history, where it is kept from the first step on.
    pub(super) fn update(&self, f: impl FnOnce(&mut ExecutionRecord)) {
        let mut history = self.inner.history();
        if let Some(record) = history.iter_mut().rev().find(|r| r.id == self.id) {
            f(record);
        }
    }

    /// The record as it stands.
    pub(super) fn record(&self) -> Option<ExecutionRecord> {
        self.inner.history().iter().rev().find(|r| r.id == self.id).cloned()
    }

    /// Writes the record to the store: durable when this returns.
    pub(super) async fn persist(&self) -> Result<()> {
        match self.record() {
            Some(record) => self.inner.cfg.store.save(&self.inner.cfg.name, &record).await,
            None => Ok(()),
        }
    }

    pub(super) fn env_name(&self, env: Option<usize>) -> Option<crate::model::EnvironmentName> {
        env.map(|e| self.inner.cfg.environments[e].name.clone())
    }

    pub(super) fn begin_stage(&mut self, stage: Stage, env: Option<usize>, detail: Option<String>) {
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

    pub(super) fn end_stage<T>(&mut self, result: &Result<T>) {
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

    pub(super) fn set_stage_detail(&self, detail: String) {
        if let Some(at) = self.open_stage {
            self.update(|r| r.stages[at].detail = Some(detail));
        }
    }

    /// Runs one step: records it, makes its call (cancellable), records how it ended.
    /// `call` yields the value and the number of calls it made.
    pub(super) async fn step<T>(
        &mut self,
        step: Step,
        stage: Stage,
        env: Option<usize>,
        detail: Option<String>,
        call: impl Future<Output = Result<(T, u32)>>,
        describe: impl FnOnce(&T) -> Option<String>,
    ) -> Result<T> {
        self.last_stage = Some(stage);
        // A mutating call is made only by the lease's holder: proven right before it.
        if step.is_mutating() {
            self.lease.check().await?;
        }
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
        // The journal entry is on disk before the call it announces is made. Undoing goes on even
        // when the store cannot be written: it is the last line of defence.
        if let Err(e) = self.persist().await
            && stage != Stage::Rollback
        {
            self.update(|r| {
                let s = &mut r.steps[at];
                s.finished_ms = Some(started_ms);
                s.outcome =
                    StepOutcome::Failed { reason: format!("not started: the journal could not be written: {e}") };
            });
            return Err(e);
        }
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
            self.inner.learn(step, began.elapsed()).await;
        }
        let finished_ms = self.now_ms();
        self.update(|r| {
            let s = &mut r.steps[at];
            s.finished_ms = Some(finished_ms);
            s.outcome = outcome.clone();
            s.detail.clone_from(&detail);
            s.calls = calls;
        });
        let saved = match self.persist().await {
            Err(e) if stage == Stage::Rollback => {
                tracing::error!(execution = %self.id, error = %e, "undoing goes on without the journal");
                Ok(())
            }
            other => other,
        };
        self.emitter().emit(EventKind::StepFinished { step, stage, outcome });
        let value = result.map(|(v, _)| v)?;
        // The call was made: what it produced is in the record in memory even if it is not on disk.
        saved.map(|()| value)
    }

    /// Polls `check` until it reports a final status, as one recorded step (see [`step`](Self::step)):
    /// the wait is paced by what the pipeline learned of `step`'s usual duration and ends at
    /// `deadline`; `check` reports progress through the [`Progress`] it is given (a stage progress
    /// event when the message changes); the step records the number of status calls. The one place
    /// the pipeline waits for a backend.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn wait_step<T, C, Fut>(
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

    /// Waits `duration` on tokio's clock, recorded as `step` (cancellable like any step).
    pub(super) async fn pause(&mut self, step: Step, stage: Stage, duration: Duration, detail: String) -> Result<()> {
        let target = self.target;
        let sleep = async move {
            tokio::time::sleep(duration).await;
            Ok(((), 0))
        };
        self.step(step, stage, target, Some(detail), sleep, |()| None).await
    }

    // ---- undoing -----------------------------------------------------------------------------------

    pub(super) async fn finish(mut self, outcome: Outcome) -> ExecutionRecord {
        self.finished = true;
        let duration_ms = self.now_ms();
        self.update(|r| {
            r.outcome = outcome.clone();
            r.duration_ms = Some(duration_ms);
        });
        if let Err(e) = self.persist().await {
            tracing::error!(execution = %self.id, error = %e, "the final record could not be written to the store");
        }
        self.emitter().emit(EventKind::ExecutionFinished { outcome, duration_ms });
        self.record().unwrap_or_else(|| unreachable_record(&self.id))
    }

    // ---- the flows -------------------------------------------------------------------------------
}

impl Drop for Execution<'_> {
    /// An execution whose future was dropped (a service shutting down, a `select!` that lost) is an
    /// interruption like a crash. When it owes an undo (traffic moved, the live service may have
    /// changed, a build or a managed deployment is under way) it is left unfinished, its journal as it
    /// stands, for [`Pipeline::resume`](crate::Pipeline::resume) to settle (the next `run`, `watch`,
    /// `switch_back` or `redeploy` of the pipeline does it first, in any process). When it owes
    /// nothing it is closed as cancelled.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // A stack update of an idle environment is no undo: users see nothing of it.
        let owed = self.traffic_moved
            || self.live_changed
            || self.build_in_flight.is_some()
            || self.managed_in_flight.is_some();
        if owed {
            tracing::warn!(
                execution = %self.id,
                "dropped with an undo owed: left unfinished for the next execution of the pipeline to settle"
            );
            return;
        }
        let now = self.now_ms();
        let outcome = Outcome::Cancelled { stage: self.last_stage, recovery: Recovery::NotNeeded };
        self.update(|r| {
            r.cancel_open(now);
            r.outcome = outcome.clone();
            r.duration_ms = Some(now);
        });
        // Best effort: the store already holds the journal up to the step that was running, which
        // is what a crash leaves too.
        if let (Some(record), Ok(handle)) = (self.record(), tokio::runtime::Handle::try_current()) {
            let (store, name) = (std::sync::Arc::clone(&self.inner.cfg.store), self.inner.cfg.name.clone());
            let task = handle.spawn(async move {
                let _ = store.save(&name, &record).await;
            });
            self.inner.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(task);
        }
        self.emitter().emit(EventKind::ExecutionFinished { outcome, duration_ms: now });
    }
}

/// A record for an execution this process no longer keeps in memory (only if more than
/// `KEPT_IN_MEMORY` executions ran while this one did, which one lease makes impossible).
fn unreachable_record(id: &Id) -> ExecutionRecord {
    tracing::error!(execution = %id, "the record is no longer in memory");
    ExecutionRecord::started(id.clone(), ExecutionKind::Deploy, None, "")
}
