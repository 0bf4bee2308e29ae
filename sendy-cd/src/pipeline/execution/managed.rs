//! ECS-managed traffic ([`Strategy::EcsManaged`]): the backend shifts the traffic; the pipeline pins
//! the service deployment, follows its lifecycle stages and decides each `PAUSE` hook with its checks.

use std::sync::Arc;

use super::*;
use crate::deployer::{HookAction, LifecycleStage, ManagedDeployer, ManagedState, ManagedStatus, PausedHook};
use crate::pipeline::EcsManaged;
use crate::record::{HookDecision, ManagedRecord};

impl Execution<'_> {
    fn managed_deployer(&self) -> Result<(usize, Arc<dyn ManagedDeployer>)> {
        let env = self.target.expect("a target is chosen before the rollout");
        let deployer = self.inner.cfg.environments[env]
            .managed
            .clone()
            .ok_or_else(|| Error::InvalidConfig("ECS-managed traffic needs a managed deployer".into()))?;
        Ok((env, deployer))
    }

    /// Deploys `image` with the backend's own traffic shifting, or follows `pinned` (the deployment
    /// an interrupted execution started), deciding each paused hook.
    pub(super) async fn managed_flow(
        &mut self,
        cfg: &EcsManaged,
        image: &ImageRef,
        url: &ServiceUrl,
        pinned: Option<crate::model::Rollout>,
    ) -> Result<()> {
        let (env, deployer) = self.managed_deployer()?;
        let rollout = match pinned {
            Some(rollout) => rollout,
            None => {
                let inner = self.inner;
                let d = deployer.clone();
                staged!(
                    self,
                    Stage::Rollout,
                    Some(env),
                    self.step(
                        Step::Deploy,
                        Stage::Rollout,
                        Some(env),
                        Some(image.to_string()),
                        inner.cfg.retry.retry("deploy", || d.deploy(image)),
                        |r| Some(format!("deployment {}", r.deployment_id)),
                    )
                )?
            }
        };
        self.managed_in_flight = Some(rollout.clone());
        let deployment = rollout.deployment_id.clone();
        self.update(|r| {
            if r.managed.as_ref().is_none_or(|m| m.deployment != deployment) {
                r.managed = Some(ManagedRecord {
                    deployment: deployment.clone(),
                    revisions_before: vec![],
                    revision_after: None,
                    stages: vec![],
                    hooks: vec![],
                    state: None,
                    reason: None,
                });
            }
        });
        let mut stage = Stage::Rollout;
        // A check that failed while ECS did not wait for its decision (a hook's timeout action).
        let mut failed_check: Option<Error> = None;
        loop {
            let status = staged!(self, stage, Some(env), self.follow_managed(stage, &rollout, false))?;
            stage = Stage::Traffic;
            if status.state.is_final() {
                self.managed_in_flight = None;
                if status.state == ManagedState::Successful {
                    return match failed_check {
                        None => Ok(()),
                        Some(failed) => {
                            // ECS went on without the decision: the new revision has the traffic
                            // though it failed its checks. Recovery rolls it back.
                            self.managed_went_through = true;
                            Err(failed)
                        }
                    };
                }
                self.rolled_back_by_backend = status.state != ManagedState::RollbackFailed;
                return Err(Error::StageFailed {
                    stage: Stage::Rollout,
                    reason: format!(
                        "ECS deployment {}: {}{}{}",
                        rollout.deployment_id,
                        status.state,
                        status.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default(),
                        failed_check.map(|e| format!(" (and {e})")).unwrap_or_default()
                    ),
                });
            }
            let Some(hook) = status.paused.clone() else { continue };
            let percent = status.production_percent.map_or(0, |p| p.clamp(0.0, 100.0).round() as u8);
            let check = match self.check_at_hook(cfg, env, url, &hook, &status, percent).await {
                Ok(passed) => Ok(passed),
                // A check that says no rolls back; anything else (cancelled, the lease lost, a
                // backend that kept failing) ends the execution, whose recovery stops the deployment.
                Err(e @ Error::StageFailed { .. }) => Err(e),
                Err(other) => return Err(other),
            };
            // ECS may have acted while the check ran (a hook's timeout): only a hook still waiting
            // is decided.
            let now = staged!(self, Stage::Traffic, Some(env), self.follow_managed(Stage::Traffic, &rollout, false))?;
            let waiting = match now.paused {
                Some(h) if h.id == hook.id => h,
                // ECS continued on its own to a later hook: a failed check rolls back there.
                Some(h) if check.is_err() => h,
                _ => {
                    // Followed again at the top of the loop: a later hook to check, or the end.
                    if let Err(e) = check {
                        failed_check = Some(e);
                    }
                    continue;
                }
            };
            let (action, because) = match &check {
                Ok(passed) => (HookAction::Continue, passed.clone()),
                Err(e) => (HookAction::Rollback, e.to_string()),
            };
            let decided = staged!(
                self,
                Stage::Traffic,
                Some(env),
                self.decide_hook(&rollout, &waiting, action, percent, because)
            );
            decided?;
            if let Err(failed) = check {
                // ECS rolls back: follow it to its end, so that the record says where the service is.
                let end =
                    staged!(self, Stage::Rollback, Some(env), self.follow_managed(Stage::Rollback, &rollout, true));
                if let Ok(end) = end
                    && end.state.is_final()
                {
                    self.managed_in_flight = None;
                    self.rolled_back_by_backend = end.state != ManagedState::RollbackFailed;
                }
                return Err(failed);
            }
        }
    }

    /// The check a paused hook waits for: `Ok` with what passed, or the failure.
    async fn check_at_hook(
        &mut self,
        cfg: &EcsManaged,
        env: usize,
        url: &ServiceUrl,
        hook: &PausedHook,
        status: &ManagedStatus,
        percent: u8,
    ) -> Result<String> {
        match &hook.stage {
            LifecycleStage::PostTestTrafficShift => match &cfg.test_url_output {
                Some(output) => {
                    let test_url = staged!(self, Stage::Verify, Some(env), self.read_output(env, output))?;
                    self.verify(env, &test_url, "test listener").await?;
                    Ok(format!("the test listener {test_url} passed its checks"))
                }
                None => Ok("no test listener to check".into()),
            },
            LifecycleStage::PreProductionTrafficShift if percent > 0 => {
                let phase = format!("production {percent}%");
                if let Some(analysis) = &cfg.analysis {
                    let (Some(canary), Some(baseline)) = (status.target_slot.clone(), status.source_slot.clone())
                    else {
                        return Err(Error::StageFailed {
                            stage: Stage::Traffic,
                            reason: "the managed deployer does not name the target groups of the two revisions: \
                                     nothing to analyse"
                                .into(),
                        });
                    };
                    staged!(
                        self,
                        Stage::Traffic,
                        Some(env),
                        self.analyze_between(env, analysis, canary, baseline, phase.clone())
                    )?;
                }
                self.verify(env, url, &phase).await?;
                Ok(match &cfg.analysis {
                    Some(_) => format!("{phase}: the analysis passed and the service URL passed its checks"),
                    None => format!("{phase}: the service URL passed its checks"),
                })
            }
            LifecycleStage::PreProductionTrafficShift => Ok("no production traffic yet: nothing to judge".into()),
            LifecycleStage::PostProductionTrafficShift => {
                self.verify(env, url, "all production traffic").await?;
                Ok("all production traffic: the service URL passed its checks".into())
            }
            other => Ok(format!("no check at {other}")),
        }
    }

    /// Reads stack output `output` of environment `env` as a URL.
    async fn read_output(&mut self, env: usize, output: &str) -> Result<ServiceUrl> {
        let inner = self.inner;
        let e = &inner.cfg.environments[env];
        let outputs = self
            .step(
                Step::ReadOutputs,
                Stage::Verify,
                Some(env),
                Some(output.to_owned()),
                inner.cfg.retry.retry("read outputs", || e.stack.outputs(&e.stack_name)),
                |_| None,
            )
            .await?;
        outputs
            .service_url(output)
            .map_err(|err| Error::StageFailed { stage: Stage::Verify, reason: format!("{}: {err}", e.stack_name) })
    }

    async fn decide_hook(
        &mut self,
        rollout: &crate::model::Rollout,
        hook: &PausedHook,
        action: HookAction,
        percent: u8,
        because: String,
    ) -> Result<()> {
        let (env, deployer) = self.managed_deployer()?;
        let inner = self.inner;
        self.set_stage_detail(format!("{} hook: {action}", hook.stage));
        self.step(
            Step::DecideHook,
            Stage::Traffic,
            Some(env),
            Some(format!("{} {action}", hook.stage)),
            // A decision whose answer was lost is not sent again once the hook waits no more (ECS
            // refuses a decision for a hook that is not awaiting one).
            inner.cfg.retry.retry_reconciled(
                "decide hook",
                || deployer.decide(rollout, &hook.id, action),
                || async {
                    let now = deployer.progress(rollout).await?;
                    Ok((now.paused.as_ref().map(|h| h.id.as_str()) != Some(hook.id.as_str())).then_some(()))
                },
            ),
            |()| None,
        )
        .await?;
        self.emitter().emit(EventKind::HookDecided {
            environment: inner.cfg.environments[env].name.clone(),
            stage: hook.stage.clone(),
            production_percent: percent,
            action,
            because: because.clone(),
        });
        let decision = HookDecision { stage: hook.stage.clone(), production_percent: percent, action, because };
        self.update(|r| {
            if let Some(m) = r.managed.as_mut() {
                m.hooks.push(decision);
            }
        });
        Ok(())
    }

    /// Waits until `rollout` pauses at a hook or ends (only ends, with `to_end`), recording each
    /// lifecycle stage seen.
    async fn follow_managed(
        &mut self,
        stage: Stage,
        rollout: &crate::model::Rollout,
        to_end: bool,
    ) -> Result<ManagedStatus> {
        let (env, deployer) = self.managed_deployer()?;
        let inner = self.inner;
        let started = self.start;
        let seen: std::sync::Mutex<Vec<(LifecycleStage, u64)>> = std::sync::Mutex::new(vec![]);
        let last: std::sync::Mutex<Option<ManagedStatus>> = std::sync::Mutex::new(None);
        // The stage the record has already: not announced again by another wait.
        let known = self.record().and_then(|r| r.managed).and_then(|m| m.stages.last().map(|(s, _)| s.clone()));
        let known = &known;
        let (seen_ref, last_ref, d) = (&seen, &last, &deployer);
        let emitter = self.emitter();
        let (emitter, environment) = (&emitter, &inner.cfg.environments[env].name);
        let result = self
            .wait_step(
                Step::WaitRollout,
                stage,
                Some(env),
                rollout.deployment_id.to_string(),
                "managed deployment",
                inner.cfg.deadlines.rollout,
                |progress| async move {
                    let status = d.progress(rollout).await?;
                    if let Some(st) = &status.stage {
                        let mut seen = seen_ref.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        let previous = seen.last().map(|(s, _)| s).or(known.as_ref());
                        if previous != Some(st) {
                            seen.push((st.clone(), step::millis(started.elapsed())));
                            emitter.emit(EventKind::ManagedStage {
                                environment: environment.clone(),
                                deployment: rollout.deployment_id.clone(),
                                stage: st.clone(),
                                production_percent: status.production_percent,
                            });
                        }
                    }
                    progress.report(describe_managed(&status));
                    *last_ref.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(status.clone());
                    let done = status.state.is_final() || (!to_end && status.paused.is_some());
                    Ok(if done { Check::Ready(status) } else { Check::Pending })
                },
                |s| Some(describe_managed(s)),
            )
            .await;
        let seen = seen.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        let last = last.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.update(|r| {
            if let Some(m) = r.managed.as_mut() {
                for (st, at) in seen {
                    if m.stages.last().is_none_or(|(s, _)| *s != st) {
                        m.stages.push((st, at));
                    }
                }
                if let Some(last) = &last {
                    m.state = Some(last.state.clone());
                    m.reason.clone_from(&last.reason);
                    if last.target_revision.is_some() {
                        m.revision_after.clone_from(&last.target_revision);
                    }
                    if !last.source_revisions.is_empty() {
                        m.revisions_before.clone_from(&last.source_revisions);
                    }
                }
            }
        });
        result
    }

    /// Recovery of an ECS-managed deployment: a deployment still under way is stopped (rolling back)
    /// and followed to its end.
    pub(super) async fn recover_managed(&mut self) -> Recovery {
        // The revision the deployment replaced, as the record has it (following the deployment
        // fills it in).
        let replaced = |exec: &Self| {
            exec.record()
                .and_then(|r| r.managed)
                .and_then(|m| m.revisions_before.first().cloned())
                .unwrap_or_else(|| "the revision it replaced".to_owned())
        };
        let before = replaced(self);
        if self.managed_went_through && self.managed_in_flight.is_none() {
            return self.roll_back_managed(&before).await;
        }
        let Some(rollout) = self.managed_in_flight.take() else {
            return if self.rolled_back_by_backend {
                Recovery::ServiceRolledBack { revision: before }
            } else {
                Recovery::NotNeeded
            };
        };
        let Ok((env, deployer)) = self.managed_deployer() else {
            return Recovery::Failed { reason: "no managed deployer".into() };
        };
        let inner = self.inner;
        self.begin_stage(Stage::Rollback, Some(env), Some(format!("stop deployment {}", rollout.deployment_id)));
        let mut result = Err(Error::Backend("not attempted".into()));
        for _ in 0..RESTORE_ATTEMPTS {
            let d = deployer.clone();
            let r = &rollout;
            result = self
                .step(
                    Step::StopDeployment,
                    Stage::Rollback,
                    Some(env),
                    Some(rollout.deployment_id.to_string()),
                    inner.cfg.recovery_retry.retry("stop deployment", || d.stop(r)),
                    |()| None,
                )
                .await
                .map(|()| None);
            if result.is_err() {
                continue;
            }
            result = self.follow_managed(Stage::Rollback, &rollout, true).await.map(Some);
            if result.is_ok() {
                break;
            }
        }
        self.end_stage(&result);
        let before = replaced(self);
        match result {
            Ok(Some(end)) => match end.state {
                ManagedState::RollbackSuccessful | ManagedState::Stopped => {
                    Recovery::ServiceRolledBack { revision: before }
                }
                // It ended before the stop (ECS went on while no one decided, or the process died
                // after the last decision): the old revision is deployed again.
                ManagedState::Successful => match end.source_revisions.first() {
                    Some(source) => {
                        let source = source.clone();
                        self.roll_back_managed(&source).await
                    }
                    None => self.roll_back_managed(&before).await,
                },
                other => Recovery::Failed {
                    reason: format!(
                        "deployment {} ended {other}{}",
                        rollout.deployment_id,
                        end.reason.map(|r| format!(": {r}")).unwrap_or_default()
                    ),
                },
            },
            Ok(None) => Recovery::Failed { reason: "the stopped deployment was not followed".into() },
            Err(e) => Recovery::Failed {
                reason: format!("could not stop deployment {} and see it roll back: {e}", rollout.deployment_id),
            },
        }
    }
}

impl Execution<'_> {
    /// Puts managed service back on service revision `before` with a managed deployment of it,
    /// continuing each of its paused hooks (it is the revision that served before).
    async fn roll_back_managed(&mut self, before: &str) -> Recovery {
        let Ok((env, deployer)) = self.managed_deployer() else {
            return Recovery::Failed { reason: "no managed deployer".into() };
        };
        let inner = self.inner;
        self.begin_stage(Stage::Rollback, Some(env), Some(format!("roll back to {before}")));
        let d = deployer.clone();
        let started = self
            .step(
                Step::RollbackService,
                Stage::Rollback,
                Some(env),
                Some(before.to_owned()),
                inner.cfg.recovery_retry.retry("roll back", || d.roll_back_to(before)),
                |r| Some(format!("deployment {}", r.deployment_id)),
            )
            .await;
        let result = match started {
            Err(e) => Err(e),
            Ok(rollout) => loop {
                match self.follow_managed(Stage::Rollback, &rollout, false).await {
                    Err(e) => break Err(e),
                    Ok(status) if status.state.is_final() => break Ok(status.state),
                    Ok(status) => {
                        let Some(hook) = status.paused else { continue };
                        let d = deployer.clone();
                        let r = &rollout;
                        let decided = self
                            .step(
                                Step::DecideHook,
                                Stage::Rollback,
                                Some(env),
                                Some(format!("{} {}", hook.stage, HookAction::Continue)),
                                inner
                                    .cfg
                                    .recovery_retry
                                    .retry("decide hook", || d.decide(r, &hook.id, HookAction::Continue)),
                                |()| None,
                            )
                            .await;
                        if let Err(e) = decided {
                            break Err(e);
                        }
                    }
                }
            },
        };
        self.end_stage(&result);
        match result {
            Ok(ManagedState::Successful) => Recovery::ServiceRolledBack { revision: before.to_owned() },
            Ok(other) => Recovery::Failed { reason: format!("the rollback to {before} ended {other}") },
            Err(e) => Recovery::Failed { reason: format!("could not roll back to {before}: {e}") },
        }
    }
}

/// A managed deployment's progress, in words.
pub(super) fn describe_managed(s: &ManagedStatus) -> String {
    let mut out = s.state.to_string();
    if let Some(stage) = &s.stage {
        out.push_str(&format!(" at {stage}"));
    }
    if let Some(p) = s.production_percent {
        out.push_str(&format!(", {p:.0}% of production traffic on the new revision"));
    }
    if let Some(hook) = &s.paused {
        out.push_str(&format!(", paused for a decision ({})", hook.id));
    }
    if let Some(reason) = &s.reason {
        out.push_str(&format!(": {reason}"));
    }
    out
}
