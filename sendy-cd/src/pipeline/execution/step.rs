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
    pub(super) index: usize,
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
}

impl<'a> Execution<'a> {
    pub(super) fn start(
        inner: &'a Inner,
        kind: ExecutionKind,
        revision: Option<Revision>,
        cancel: CancellationToken,
    ) -> Self {
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

    pub(super) fn emitter(&self) -> Emitter<'a> {
        Emitter { inner: self.inner, id: self.id.clone(), start: self.start }
    }

    pub(super) fn now_ms(&self) -> u64 {
        millis(self.start.elapsed())
    }

    /// Changes the record in the pipeline's history, where it is kept from the first step on.
    pub(super) fn update(&self, f: impl FnOnce(&mut ExecutionRecord)) {
        f(&mut self.inner.history()[self.index]);
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

    pub(super) fn finish(mut self, outcome: Outcome) -> ExecutionRecord {
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
