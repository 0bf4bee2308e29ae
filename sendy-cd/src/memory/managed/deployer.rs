//! The simulated managed service as a [`ManagedDeployer`].

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Dep, later, service};
use crate::deployer::{
    DeployedRevision, Deployer, HookAction, LifecycleStage, ManagedDeployer, ManagedState, ManagedStatus, PausedHook,
    RollbackTarget, RolloutStatus, ServiceRevision, ServiceRevisions,
};
use crate::error::{Error, Result};
use crate::memory::{Account, Op, State};
use crate::model::{EnvironmentName, Id, ImageRef, Rollout};

/// A managed service of the simulated account, as a [`ManagedDeployer`]
/// ([`Account::managed_deployer`]).
#[derive(Clone, Debug)]
pub struct MemoryManagedDeployer {
    account: Account,
    env: EnvironmentName,
}

impl MemoryManagedDeployer {
    pub(super) fn new(account: Account, env: EnvironmentName) -> Self {
        MemoryManagedDeployer { account, env }
    }

    fn start(&self, s: &mut State, revision: usize) -> Result<Rollout> {
        let rollout_duration = s.spread(s.cfg.rollout_duration);
        let now = Instant::now();
        let rec = service(s, &self.env)?;
        // A deployment under way is replaced, as ECS stops it for the new one.
        for dep in rec.deployments.iter_mut().filter(|d| !d.state.is_final()) {
            dep.state = ManagedState::Stopped;
            dep.reason = Some("replaced by a newer service deployment".into());
        }
        rec.ids += 1;
        let arn = format!("arn:aws:ecs:us-east-1:123456789012:service-deployment/sim/{}/{}", rec.family, rec.ids);
        let plan = rec.plan(rollout_duration);
        let dep = Dep {
            arn: arn.clone(),
            target: revision,
            source: rec.live,
            target_slot: 1 - rec.live_slot,
            plan,
            index: 0,
            entered: now,
            decided: false,
            hooks: 0,
            state: ManagedState::InProgress,
            reason: None,
            settles_at: None,
        };
        rec.deployments.push(dep);
        Ok(Rollout { deployment_id: Id::parse(arn)?, image: rec.revisions[revision].image.clone() })
    }
}

#[async_trait]
impl Deployer for MemoryManagedDeployer {
    async fn deploy(&self, image: &ImageRef) -> Result<Rollout> {
        let answer = self.account.enter(Op::Deploy).await?;
        let mut s = self.account.lock();
        let now = s.now_timestamp();
        let rec = service(&mut s, &self.env)?;
        // A deployment of this image under way (a retry after a lost answer): pin it.
        if let Some(dep) =
            rec.deployments.last().filter(|d| !d.state.is_final() && rec.revisions[d.target].image == *image)
        {
            let rollout = Rollout { deployment_id: Id::parse(dep.arn.clone())?, image: image.clone() };
            return answer.deliver(Ok(rollout));
        }
        let index = rec.revision(image, now);
        answer.deliver(self.start(&mut s, index))
    }

    async fn status(&self, rollout: &Rollout) -> Result<RolloutStatus> {
        self.account.enter(Op::RolloutStatus).await?;
        let mut s = self.account.lock();
        let desired = s.cfg.desired_count;
        let rec = service(&mut s, &self.env)?;
        let dep = rec.find(rollout.deployment_id.as_str())?;
        Ok(rollout_status(dep, desired))
    }

    async fn revisions(&self) -> Result<ServiceRevisions> {
        self.account.enter(Op::Revisions).await?;
        let mut s = self.account.lock();
        let rec = service(&mut s, &self.env)?;
        let revision = |i: usize| DeployedRevision {
            revision: rec.revisions[i].task_definition.clone(),
            image: rec.revisions[i].image.clone(),
        };
        let current = rec.deployments.last().map_or(rec.live, |d| d.target);
        let good = rec
            .deployments
            .iter()
            .rev()
            .filter(|d| d.state == ManagedState::Successful)
            .map(|d| d.target)
            .chain(std::iter::once(0))
            .find(|r| *r != current);
        Ok(ServiceRevisions { current: Some(revision(current)), last_good: good.map(revision) })
    }

    async fn rollback(&self, to: &RollbackTarget) -> Result<Rollout> {
        let arn = {
            let revisions = self.revisions().await?;
            let mut s = self.account.lock();
            let rec = service(&mut s, &self.env)?;
            let name = match to {
                RollbackTarget::LastGood => revisions
                    .last_good
                    .map(|r| r.revision)
                    .ok_or_else(|| Error::NotFound { kind: "last good revision", id: self.env.to_string().into() })?,
                RollbackTarget::Revision(name) => name.clone(),
            };
            rec.revisions
                .iter()
                .find(|r| r.task_definition == name || r.arn == name)
                .map(|r| r.arn.clone())
                .ok_or_else(|| Error::NotFound { kind: "service revision", id: name.clone().into() })?
        };
        self.roll_back_to(&arn).await
    }
}

fn rollout_status(dep: &Dep, desired: u32) -> RolloutStatus {
    let reason = || dep.reason.clone().unwrap_or_else(|| dep.state.to_string());
    match dep.state {
        ManagedState::Successful => RolloutStatus::Completed { running: desired, desired },
        ManagedState::RollbackSuccessful | ManagedState::Stopped => {
            RolloutStatus::Failed { reason: format!("{}: {}", dep.state, reason()), rolled_back: true, failed: 0 }
        }
        ManagedState::RollbackFailed => {
            RolloutStatus::Failed { reason: format!("{}: {}", dep.state, reason()), rolled_back: false, failed: 0 }
        }
        _ => {
            let running = if dep.index > 1 { desired } else { 0 };
            RolloutStatus::InProgress { running, desired, failed: 0 }
        }
    }
}

#[async_trait]
impl ManagedDeployer for MemoryManagedDeployer {
    async fn progress(&self, rollout: &Rollout) -> Result<ManagedStatus> {
        self.account.enter(Op::ManagedProgress).await?;
        let mut s = self.account.lock();
        let (timeout, action) = s
            .managed
            .get(&self.env)
            .map_or((Duration::ZERO, HookAction::Rollback), |r| (r.cfg.hook_timeout, r.cfg.timeout_action));
        let epoch = s.epoch;
        let rec = service(&mut s, &self.env)?;
        let dep = rec.find(rollout.deployment_id.as_str())?;
        let stage = dep.plan.get(dep.index).map(|p| p.stage.clone());
        let paused = dep.paused().then(|| {
            let expires = later(dep.entered, timeout).saturating_duration_since(epoch.1);
            let mut hook = PausedHook::new(dep.hook_id(), stage.clone().unwrap_or(LifecycleStage::PreScaleUp));
            hook.expires_at = jiff::SignedDuration::try_from(expires).ok().and_then(|d| epoch.0.checked_add(d).ok());
            hook.timeout_action = Some(action);
            hook
        });
        let mut status = ManagedStatus::new(dep.state.clone());
        status.stage = if dep.state == ManagedState::InProgress { stage } else { None };
        status.reason = dep.reason.clone();
        status.paused = paused;
        status.production_percent = Some(f64::from(dep.percent()));
        status.target_revision = Some(rec.revisions[dep.target].arn.clone());
        status.source_revisions = vec![rec.revisions[dep.source].arn.clone()];
        status.target_slot = Some(rec.slots[dep.target_slot].clone());
        status.source_slot = Some(rec.slots[1 - dep.target_slot].clone());
        Ok(status)
    }

    async fn decide(&self, rollout: &Rollout, hook_id: &str, action: HookAction) -> Result<()> {
        let answer = self.account.enter(Op::HookDecide).await?;
        let mut s = self.account.lock();
        let rec = service(&mut s, &self.env)?;
        let t = rec.cfg.stage_time;
        let dep = rec.find_mut(rollout.deployment_id.as_str())?;
        // A hook no longer waiting (decided already, timed out): the state says what happened.
        if dep.paused() && dep.hook_id() == hook_id {
            dep.hooks += 1;
            match action {
                HookAction::Continue => {
                    dep.decided = true;
                    dep.entered = Instant::now();
                }
                HookAction::Rollback => {
                    let stage = dep.plan[dep.index].stage.clone();
                    dep.roll_back(Instant::now(), format!("the {stage} hook answered ROLLBACK"), t);
                }
            }
        }
        answer.deliver(Ok(()))
    }

    async fn stop(&self, rollout: &Rollout) -> Result<()> {
        let answer = self.account.enter(Op::DeploymentStop).await?;
        let mut s = self.account.lock();
        let rec = service(&mut s, &self.env)?;
        let t = rec.cfg.stage_time;
        let dep = rec.find_mut(rollout.deployment_id.as_str())?;
        if dep.state == ManagedState::InProgress {
            dep.state = ManagedState::StopRequested;
            dep.reason = Some("stopped (ROLLBACK) by StopServiceDeployment".into());
            dep.settles_at = Some(later(Instant::now(), t));
        }
        answer.deliver(Ok(()))
    }

    async fn history(&self) -> Result<Vec<ServiceRevision>> {
        self.account.enter(Op::RevisionHistory).await?;
        let mut s = self.account.lock();
        let rec = service(&mut s, &self.env)?;
        Ok(rec
            .revisions
            .iter()
            .rev()
            .map(|r| ServiceRevision {
                arn: r.arn.clone(),
                task_definition: r.task_definition.clone(),
                image: Some(r.image.clone()),
                created_at: Some(r.created),
            })
            .collect())
    }

    async fn roll_back_to(&self, arn: &str) -> Result<Rollout> {
        let answer = self.account.enter(Op::Rollback).await?;
        let mut s = self.account.lock();
        let rec = service(&mut s, &self.env)?;
        let index = rec
            .revisions
            .iter()
            .position(|r| r.arn == arn)
            .ok_or_else(|| Error::NotFound { kind: "service revision", id: arn.to_owned().into() })?;
        // A rollback to that revision under way (a retry after a lost answer): pin it.
        if let Some(dep) = rec.deployments.last().filter(|d| !d.state.is_final() && d.target == index) {
            let rollout =
                Rollout { deployment_id: Id::parse(dep.arn.clone())?, image: rec.revisions[index].image.clone() };
            return answer.deliver(Ok(rollout));
        }
        answer.deliver(self.start(&mut s, index))
    }
}
