//! Undoing what users could see of a failed or cancelled execution.

use super::*;

impl<'a> Execution<'a> {
    /// Undoes what users could see of a failed or cancelled execution.
    pub(super) async fn recover(&mut self) -> Recovery {
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
        if matches!(self.inner.cfg.strategy, Strategy::EcsManaged(_)) {
            return self.recover_managed().await;
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
    pub(super) async fn settle_stack(&mut self, env: usize, plan: &StackPlan) -> Result<()> {
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
    pub(super) async fn restore_live_service(&mut self) -> Recovery {
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
    pub(super) async fn rollback_service(&mut self, env: usize, revision: &str) -> Result<()> {
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
}
