//! The stages that change an environment: build, stack, rollout, verification.

use super::*;

impl<'a> Execution<'a> {
    /// Reads what `env`'s service runs now (the first step of a deployment, before anything changes).
    pub(super) async fn read_revisions(&mut self, env: usize) -> Result<Option<DeployedRevision>> {
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

    pub(super) async fn verify(&mut self, env: usize, url: &ServiceUrl, phase: &str) -> Result<()> {
        staged!(self, Stage::Verify, Some(env), self.verify_stage(url, phase))
    }

    pub(super) async fn build_stage(&mut self, revision: &Revision) -> Result<BuiltImage> {
        let exec = self;
        let inner = exec.inner;
        let builder = &inner.cfg.builder;
        // A retry after an ambiguous failure answers the build the first attempt started.
        let key = exec.build_key();
        let key = &key;
        let build = exec
            .step(
                Step::StartBuild,
                Stage::Build,
                None,
                Some(revision.commit.to_string()),
                inner.cfg.retry.retry("start build", || builder.start_once(revision, key)),
                |b| Some(b.to_string()),
            )
            .await?;
        exec.follow_build(build).await
    }

    /// Resuming an execution that announced a build start and never saw its answer: the build it may
    /// have started is looked for, and followed if found; otherwise a build is started (with the
    /// same key, so a service that still remembers it answers that build).
    pub(super) async fn find_or_build(&mut self, revision: &Revision, since: jiff::Timestamp) -> Result<BuiltImage> {
        let inner = self.inner;
        let builder = &inner.cfg.builder;
        let key = self.build_key();
        let key = &key;
        let found = self
            .step(
                Step::FindBuild,
                Stage::Build,
                None,
                Some(revision.commit.to_string()),
                inner.cfg.retry.retry("find build", || builder.find_started(revision, key, since)),
                |b| Some(b.as_ref().map_or_else(|| "none started".to_owned(), ToString::to_string)),
            )
            .await?;
        match found {
            Some(build) => self.follow_build(build).await,
            None => self.build_stage(revision).await,
        }
    }

    /// The key of this execution's build start.
    fn build_key(&self) -> String {
        format!("{}/{}/start-build", self.inner.cfg.name, self.id)
    }

    /// Waits for build `build` (started by this execution, or by the interrupted one it resumes) to
    /// end: its image, or the stage's failure.
    pub(super) async fn follow_build(&mut self, build: BuildId) -> Result<BuiltImage> {
        let exec = self;
        let inner = exec.inner;
        let builder = &inner.cfg.builder;
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
            other => {
                Err(Error::Backend(format!("build {build} reported a non-final status as final: {other:?}").into()))
            }
        }
    }

    /// Updates the target's stack to run `image`, or (resuming) waits for the update `in_flight`
    /// the interrupted execution applied, then reads the service URL.
    pub(super) async fn stack_stage(&mut self, image: &ImageRef, in_flight: Option<StackPlan>) -> Result<ServiceUrl> {
        let exec = self;
        let inner = exec.inner;
        let env_index = exec.target.expect("a target is chosen before the stack stage");
        let env = &inner.cfg.environments[env_index];
        let mut parameters = env.parameters.clone();
        if let Some(key) = &env.image_parameter {
            parameters.insert(key.clone(), image.to_string());
        }
        let change = StackChange { parameters, template: None };
        let plan = match in_flight {
            Some(plan) => {
                if matches!(inner.cfg.strategy, Strategy::AllAtOnce) {
                    exec.live_changed = true;
                }
                exec.set_stage_detail(format!("{}: resumed, waiting for {}", env.stack_name, plan.id));
                Plan::Ready(plan)
            }
            None => exec.plan_and_apply(env_index, &change).await?,
        };
        if let Plan::Ready(plan) = plan {
            exec.stack_in_flight = Some((env_index, plan.clone()));
            exec.wait_stack(env_index, &plan).await?;
        }
        exec.outputs_stage().await
    }

    /// Plans `change` on `env_index`'s stack and applies the plan, if it changes anything.
    async fn plan_and_apply(&mut self, env_index: usize, change: &StackChange) -> Result<Plan> {
        let exec = self;
        let inner = exec.inner;
        let env = &inner.cfg.environments[env_index];
        // A retry after an ambiguous failure, or a resumed execution, answers the plan made first.
        let key = format!("{}/{}/plan-stack/{}", inner.cfg.name, exec.id, env.name);
        let key = &key;
        let plan = exec
            .step(
                Step::PlanStack,
                Stage::Stack,
                Some(env_index),
                Some(env.stack_name.to_string()),
                inner.cfg.retry.retry("plan stack", || env.stack.plan_once(&env.stack_name, change, key)),
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
            Plan::NoChanges => {
                exec.set_stage_detail(format!("{}: nothing to change", env.stack_name));
                Ok(Plan::NoChanges)
            }
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
                Ok(Plan::Ready(plan))
            }
        }
    }

    /// Waits for the update `plan` of `env_index`'s stack to end; fails the stage unless it completed.
    async fn wait_stack(&mut self, env_index: usize, plan: &StackPlan) -> Result<()> {
        let exec = self;
        let inner = exec.inner;
        let env = &inner.cfg.environments[env_index];
        let plan_ref = plan;
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
                return Err(Error::Backend(format!("stack reported a non-final status as final: {other:?}").into()));
            }
        }
        Ok(())
    }

    /// Reads the target environment's service URL from its stack outputs.
    pub(super) async fn outputs_stage(&mut self) -> Result<ServiceUrl> {
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

    pub(super) async fn rollout_stage(&mut self, image: &ImageRef) -> Result<()> {
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
        exec.follow_rollout(rollout).await
    }

    /// Waits for the target's rollout `rollout` (started by this execution, or by the interrupted one
    /// it resumes) to complete; fails the stage otherwise.
    pub(super) async fn follow_rollout(&mut self, rollout: crate::model::Rollout) -> Result<()> {
        let exec = self;
        let inner = exec.inner;
        let env_index = exec.target.expect("a target is chosen before the rollout");
        let env = &inner.cfg.environments[env_index];
        if matches!(inner.cfg.strategy, Strategy::AllAtOnce) {
            exec.live_changed = true;
        }
        let image = &rollout.image;
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

    pub(super) async fn verify_stage(&mut self, url: &ServiceUrl, phase: &str) -> Result<()> {
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

    pub(super) async fn wait_rollout(
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

pub(super) fn describe_rollout(status: &RolloutStatus) -> String {
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
