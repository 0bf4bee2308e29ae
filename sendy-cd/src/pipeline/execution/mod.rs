//! One execution, as explicit steps: each is recorded before its AWS-facing call and after it.
//!
//! - this file: running an execution, `watch`, and the flow of stages of each kind (deploy, switch
//!   back) with the choice of environments;
//! - [`step`]: the execution, its record, a step with its entries before and after its call, stages,
//!   and `wait_step`, the one helper that waits for a backend;
//! - [`stages`]: build, stack, rollout and verification;
//! - [`traffic`]: reading and moving the weights;
//! - [`recovery`]: undoing what users could see;
//! - [`resume`]: settling executions a process left unfinished, from their journal.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lease::LeaseGuard;
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
    lease: &LeaseGuard,
    kind: ExecutionKind,
    revision: Option<Revision>,
    prebuilt: Option<BuiltImage>,
    switch_to: Option<usize>,
    cancel: CancellationToken,
) -> Result<ExecutionRecord> {
    inner.refresh_learned().await;
    // The execution's own token: cancelled with the caller's, or alone by `Pipeline::cancel_running`.
    let cancel = cancel.child_token();
    let _running = Running::set(inner, cancel.clone());
    let mut exec = Execution::start(inner, lease, kind.clone(), revision.clone(), cancel).await?;
    let result = match (&kind, &revision, switch_to) {
        (ExecutionKind::SwitchBack, _, Some(to)) => exec.switch_back(to).await,
        (ExecutionKind::SwitchBack, _, None) => {
            Err(Error::InvalidConfig("switch_back needs the environment to return to".into()))
        }
        (_, Some(revision), _) => exec.deploy(revision, prebuilt).await,
        (_, None, _) => Err(Error::InvalidConfig("a deployment needs a revision".into())),
    };
    match result {
        // Another holder has the pipeline now: this process changes nothing more, undoing included,
        // and writes nothing more: the new holder settles the execution from its journal.
        Err(error @ Error::LeaseLost { .. }) => {
            exec.finished = true;
            Err(error)
        }
        result => {
            let outcome = exec.conclude(result).await;
            Ok(exec.finish(outcome).await)
        }
    }
}

/// Marks an execution running (its cancellation reachable through `Pipeline::cancel_running`) until
/// dropped.
struct Running<'a>(&'a Inner);

impl<'a> Running<'a> {
    fn set(inner: &'a Inner, token: CancellationToken) -> Self {
        *inner.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token);
        Running(inner)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        *self.0.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

impl Execution<'_> {
    /// How an execution whose flow returned `result` ends: undoing what users could see of a
    /// failure (never cancelled: it is what makes cancelling safe), and the weights it leaves.
    pub(super) async fn conclude(&mut self, result: Result<()>) -> Outcome {
        let outcome = match result {
            Ok(()) => Outcome::Succeeded,
            Err(error) => {
                let failed_stage = self.last_stage;
                self.cancel = CancellationToken::new();
                let recovery = self.recover().await;
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
        if self.inner.cfg.dns.is_some()
            && let Ok(split) = self.read_weights().await
        {
            self.update(|r| r.traffic_after = Some(split));
        }
        outcome
    }
}

pub(super) use resume::{Direction, resume};

/// Polls the source and deploys each new revision once.
pub(super) async fn watch(
    inner: &Inner,
    lease: &LeaseGuard,
    cancel: &CancellationToken,
) -> Result<Vec<ExecutionRecord>> {
    let Some(source) = inner.cfg.source.clone() else {
        return Err(Error::InvalidConfig("watch needs a source".into()));
    };
    // Every commit the pipeline ever deployed, in any process, as the store has them.
    let mut deployed: std::collections::HashSet<_> =
        inner.stored_history(super::SEARCHED).await?.into_iter().filter_map(|r| r.revision.map(|r| r.commit)).collect();
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
                let seen = deployed.contains(&revision.commit);
                let live = if seen || live_checked { false } else { live_runs(inner, &revision).await };
                live_checked = true;
                if !seen && !live {
                    deployed.insert(revision.commit.clone());
                    let record =
                        execute(inner, lease, ExecutionKind::Deploy, Some(revision), None, None, cancel.clone())
                            .await?;
                    records.push(record);
                    // A watcher that lost its lease stops: the new holder watches now.
                    lease.check().await?;
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

impl Execution<'_> {
    /// Deploys `revision` (or `prebuilt`, built earlier) with the pipeline's strategy. Resuming an
    /// interrupted execution (its [`Carry`](resume::Carry) set), it goes on from where that one
    /// stood: a finished stage is not done again, a build, stack update or rollout in flight is
    /// followed to its end, and weights that had moved stay where they are while the verification
    /// that was running is done again.
    pub(super) async fn deploy(&mut self, revision: &Revision, prebuilt: Option<BuiltImage>) -> Result<()> {
        let carry = self.carry.take();
        let resumed = carry.is_some();
        let carry = carry.unwrap_or_default();
        let (target, previous) = match (resumed, self.target) {
            (true, Some(target)) => (target, self.previous),
            _ => self.choose_environments().await?,
        };
        // What the live environment runs, read before anything can change it: where all-at-once
        // rolls back to (a stack update may roll the service out before the rollout stage does).
        let live = previous.unwrap_or(target);
        let live_revision = match (&carry.live_revision, &self.live_revision) {
            (Some(read), _) => read.clone(),
            (None, Some((env, read))) if resumed && *env == live => read.clone(),
            _ => self.read_revisions(live).await?,
        };
        self.live_revision = Some((live, live_revision.clone()));
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
        let built = match (prebuilt, carry.built, carry.build) {
            (Some(built), _, _) | (None, Some(built), _) => built,
            (None, None, Some(build)) => staged!(self, Stage::Build, None, self.follow_build(build))?,
            (None, None, None) if carry.build_unanswered => {
                staged!(self, Stage::Build, None, self.find_or_build(revision, carry.started_at))?
            }
            (None, None, None) => staged!(self, Stage::Build, None, self.build_stage(revision))?,
        };
        self.update(|r| r.image = Some(built.clone()));
        let image = built.image;
        let url = match carry.url {
            Some(url) => url,
            None if carry.stack_settled => staged!(self, Stage::Stack, Some(target), self.outputs_stage())?,
            None => staged!(self, Stage::Stack, Some(target), self.stack_stage(&image, carry.stack))?,
        };
        if let Strategy::EcsManaged(managed) = self.inner.cfg.strategy.clone() {
            return self.managed_flow(&managed, &image, &url, carry.managed_rollout).await;
        }
        match (carry.rolled_out, carry.rollout) {
            (true, _) => {}
            (false, Some(rollout)) => staged!(self, Stage::Rollout, Some(target), self.follow_rollout(rollout))?,
            (false, None) => staged!(self, Stage::Rollout, Some(target), self.rollout_stage(&image))?,
        }
        // Resuming after weights moved: the target's share of the traffic now, if the weights are a
        // split this execution sets (anything else fails, and the traffic goes back).
        let at = match (self.traffic_moved, previous) {
            (true, Some(previous)) => staged!(self, Stage::Traffic, Some(target), self.weights_at(target, previous))?,
            _ => None,
        };
        match self.inner.cfg.strategy.clone() {
            Strategy::AllAtOnce => {
                self.verify(target, &url, "after rollout").await?;
            }
            Strategy::BlueGreen => {
                let previous = previous.expect("blue/green always has a previous environment");
                if let Some(percent) = at.filter(|p| *p != 100) {
                    return Err(Error::StageFailed {
                        stage: Stage::Traffic,
                        reason: format!("resuming: {percent}% on the target, a split blue/green never sets"),
                    });
                }
                if at.is_none() {
                    self.verify(target, &url, "before traffic").await?;
                    self.ensure_weights_unchanged().await?;
                    let split = self.split(target, previous, 100)?;
                    self.shift(split, "switch", Duration::ZERO).await?;
                }
                self.verify(target, &url, "after switch").await?;
            }
            Strategy::EcsManaged(_) => unreachable!("ECS-managed deployments return above"),
            Strategy::Canary(canary) => {
                let previous = previous.expect("a canary always has a previous environment");
                let from = match at {
                    Some(percent) => {
                        // The bake (or analysis) that was under way is done again in full before
                        // its check.
                        if percent < 100 && canary.analysis.is_some() {
                            self.analyze(target, previous, percent).await?;
                        } else if percent < 100 && !canary.bake.is_zero() {
                            let label = format!("canary {percent}% (resumed)");
                            let bake = canary.bake;
                            let target = Some(target);
                            staged!(self, Stage::Traffic, target, self.pause_in_stage(bake, label))?;
                        }
                        self.verify(target, &url, &format!("canary {percent}%")).await?;
                        percent
                    }
                    None => {
                        self.verify(target, &url, "before traffic").await?;
                        self.ensure_weights_unchanged().await?;
                        0
                    }
                };
                for percent in canary.steps.iter().copied().filter(|p| *p > from) {
                    let split = self.split(target, previous, percent)?;
                    // With an analysis, the analysis is the step's bake.
                    let analyzed = percent < 100 && canary.analysis.is_some();
                    let bake = if percent < 100 && !analyzed { canary.bake } else { Duration::ZERO };
                    self.shift(split, &format!("canary {percent}%"), bake).await?;
                    if analyzed {
                        self.analyze(target, previous, percent).await?;
                    }
                    self.verify(target, &url, &format!("canary {percent}%")).await?;
                }
            }
        }
        Ok(())
    }

    /// Resuming after weights moved: `None` if they are as they were before the execution (the
    /// change never applied), the target's percentage if they are a split of target and previous,
    /// an error (the traffic goes back) otherwise.
    async fn weights_at(&mut self, target: usize, previous: usize) -> Result<Option<u8>> {
        let now = self.read_weights().await?;
        if Some(&now) == self.traffic_before.as_ref() {
            return Ok(None);
        }
        let percent = now.weight(&self.inner.cfg.environments[target].dns_target);
        if self.split(target, previous, percent)? == now && percent > 0 {
            self.traffic_applied = true;
            // Resolvers may still answer from before the change: one TTL before checking.
            let ttl = self.inner.cfg.dns.as_ref().map_or(Duration::ZERO, |d| d.ttl());
            self.set_stage_detail(format!("resumed at {now}"));
            self.pause(Step::WaitTtl, Stage::Traffic, ttl, format!("{ttl:?}")).await?;
            return Ok(Some(percent));
        }
        Err(Error::StageFailed {
            stage: Stage::Traffic,
            reason: format!("resuming: the weights are {now}, a split this execution never sets; sending traffic back"),
        })
    }

    async fn pause_in_stage(&mut self, bake: Duration, label: String) -> Result<()> {
        self.set_stage_detail(format!("{label}: baking again"));
        self.bake(bake, format!("{label} for {bake:?}")).await
    }

    /// Sends all traffic to environment `to` (chosen by the pipeline from its history, its revision
    /// checked), after verifying it. Traffic already all on `to` is left as it is: switching back twice
    /// ends where switching back once did.
    pub(super) async fn switch_back(&mut self, to: usize) -> Result<()> {
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

    /// Picks the environment to deploy to, and the one that has the traffic now.
    pub(super) async fn choose_environments(&mut self) -> Result<(usize, Option<usize>)> {
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
                Strategy::AllAtOnce | Strategy::EcsManaged(_) => (live, None),
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
}

// After `staged!`, which the submodules use.
mod managed;
mod recovery;
mod resume;
mod stages;
mod step;
mod traffic;

use stages::describe_rollout;
use step::Execution;
