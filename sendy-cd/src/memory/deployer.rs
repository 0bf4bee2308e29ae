//! The simulated ECS services.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Account, Op, State};
use crate::deployer::{DeployedRevision, Deployer, RollbackTarget, RolloutStatus, ServiceRevisions};
use crate::error::{Error, Result};
use crate::model::{EnvironmentName, Id, ImageRef, Rollout};

pub(crate) struct ServiceRec {
    family: String,
    desired: u32,
    revisions: Vec<DeployedRevision>,
    deployments: Vec<Dep>,
    ids: u32,
}

struct Dep {
    id: String,
    revision: usize,
    started: Instant,
    duration: Duration,
    crashing: bool,
    superseded_by: Option<String>,
    failed: Option<Failure>,
}

struct Failure {
    rolled_back_to: Option<String>,
}

impl Dep {
    fn completed(&self, now: Instant) -> bool {
        self.failed.is_none()
            && self.superseded_by.is_none()
            && !self.crashing
            && now >= super::later(self.started, self.duration)
    }

    fn is_final(&self, now: Instant) -> bool {
        self.failed.is_some() || self.superseded_by.is_some() || self.completed(now)
    }
}

/// ECS's circuit breaker: a deployment fails once this many of its tasks failed (half the desired
/// count, at least 3 and at most 200).
fn circuit_breaker_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(3, 200)
}

impl ServiceRec {
    /// Registers a revision of `image` (or finds the newest one registered) and returns its index.
    fn revision_of(&mut self, image: &ImageRef) -> usize {
        let revision = format!("{}:{}", self.family, self.revisions.len() + 1);
        self.revisions.push(DeployedRevision { revision, image: image.clone() });
        self.revisions.len() - 1
    }

    /// The newest deployment, if it rolls out (or rolled out) exactly `image` and was neither
    /// replaced nor failed: what a stack update started.
    /// How many deployments the service has had.
    pub(crate) fn deployment_count(&self) -> usize {
        self.deployments.len()
    }

    fn pinnable(&self, image: &ImageRef) -> Option<&Dep> {
        self.deployments
            .last()
            .filter(|d| &self.revisions[d.revision].image == image && d.failed.is_none() && d.superseded_by.is_none())
    }

    pub(crate) fn with_initial(env: &EnvironmentName, image: ImageRef, desired: u32) -> Self {
        let family = format!("app-{env}");
        let id = format!("ecs-svc/{family}-1");
        ServiceRec {
            ids: 1,
            revisions: vec![DeployedRevision { revision: format!("{family}:1"), image }],
            family,
            desired: desired.max(1),
            deployments: vec![Dep {
                id,
                revision: 0,
                started: Instant::now(),
                duration: Duration::ZERO,
                crashing: false,
                superseded_by: None,
                failed: None,
            }],
        }
    }

    fn next_id(&mut self) -> String {
        self.ids += 1;
        format!("ecs-svc/{}-{}", self.family, self.ids)
    }

    fn task_interval(&self, dep: &Dep) -> Duration {
        dep.duration / self.desired
    }

    /// Trips the circuit breaker of a crashing newest deployment whose time has come, starting the
    /// rollback deployment the breaker creates.
    fn refresh(&mut self, rollout: Duration, now: Instant) {
        let threshold = circuit_breaker_threshold(self.desired);
        loop {
            let Some(newest) = self.deployments.last() else { return };
            if !newest.crashing || newest.failed.is_some() || newest.superseded_by.is_some() {
                return;
            }
            let fails_at = super::later(newest.started, self.task_interval(newest).saturating_mul(threshold));
            if now < fails_at {
                return;
            }
            let last_good = self.deployments.iter().rev().find(|d| d.completed(fails_at)).map(|d| d.revision);
            let rolled_back_to = last_good.map(|r| self.revisions[r].revision.clone());
            let Some(newest) = self.deployments.last_mut() else { return };
            newest.failed = Some(Failure { rolled_back_to });
            if let Some(revision) = last_good {
                let id = self.next_id();
                self.deployments.push(Dep {
                    id,
                    revision,
                    started: fails_at,
                    duration: rollout,
                    crashing: false,
                    superseded_by: None,
                    failed: None,
                });
            }
        }
    }

    /// Starts a deployment of revision `revision` at `now`, replacing any unfinished one; returns its id.
    fn start(&mut self, revision: usize, duration: Duration, crashing: bool, now: Instant) -> String {
        let id = self.next_id();
        for dep in self.deployments.iter_mut() {
            if !dep.is_final(now) {
                dep.superseded_by = Some(id.clone());
            }
        }
        self.deployments.push(Dep {
            id: id.clone(),
            revision,
            started: now,
            duration,
            crashing,
            superseded_by: None,
            failed: None,
        });
        id
    }

    fn revisions_now(&self, now: Instant) -> ServiceRevisions {
        let current = self.deployments.last().map(|d| self.revisions[d.revision].clone());
        let last_good = self
            .deployments
            .iter()
            .rev()
            .filter(|d| d.completed(now))
            .map(|d| &self.revisions[d.revision])
            .find(|r| Some(&r.revision) != current.as_ref().map(|c| &c.revision))
            .cloned();
        ServiceRevisions { current, last_good }
    }
}

/// Starts a deployment of `image` on environment `env`'s service at `at`: what a stack update that
/// changed the service's image does.
pub(crate) fn roll_out(s: &mut State, env: &EnvironmentName, image: ImageRef, at: Instant) {
    let base = s.cfg.rollout_duration;
    let duration = s.spread(base);
    let crashing = s.behavior_of(&image).crashing;
    let rollout = s.cfg.rollout_duration;
    let Some(rec) = s.services.get_mut(env) else { return };
    rec.refresh(rollout, at);
    let index = rec.revision_of(&image);
    rec.start(index, duration, crashing, at);
}

/// Brings environment `env`'s service up to now and returns it.
fn service<'a>(s: &'a mut State, env: &EnvironmentName) -> Result<&'a mut ServiceRec> {
    // A stack update that ended since may have started a deployment.
    super::stack::refresh(s);
    let rollout = s.cfg.rollout_duration;
    let rec = s.services.get_mut(env).ok_or_else(|| Error::NotFound { kind: "service", id: env.to_string().into() })?;
    rec.refresh(rollout, Instant::now());
    Ok(rec)
}

/// The image of `env`'s newest completed deployment.
pub(crate) fn serving(s: &mut State, env: &EnvironmentName) -> Option<ImageRef> {
    let now = Instant::now();
    let rec = service(s, env).ok()?;
    rec.deployments.iter().rev().find(|d| d.completed(now)).map(|d| rec.revisions[d.revision].image.clone())
}

impl Account {
    /// How long deployment `deployment` of environment `env` takes to complete: the truth a pipeline's
    /// detection lag is measured against. `None` if unknown.
    pub fn rollout_duration(&self, env: &str, deployment: &Id) -> Option<Duration> {
        let env = EnvironmentName::parse(env).ok()?;
        let s = self.lock();
        s.services.get(&env)?.deployments.iter().find(|d| d.id == deployment.as_str()).map(|d| d.duration)
    }
}

/// One environment's service, as a [`Deployer`]: a rollout starts the desired tasks one after another
/// over [`SimConfig::rollout_duration`](super::SimConfig::rollout_duration). Tasks of a
/// [`crashing`](super::Behavior::crashing) revision fail instead, and when half the desired count (at
/// least 3) failed, the circuit breaker fails the deployment and rolls back to the last completed one.
#[derive(Clone, Debug)]
pub struct MemoryDeployer {
    account: Account,
    env: EnvironmentName,
}

impl MemoryDeployer {
    pub(crate) fn new(account: Account, env: EnvironmentName) -> Self {
        MemoryDeployer { account, env }
    }

    fn start(&self, s: &mut State, revision: usize) -> Result<Rollout> {
        let base = s.cfg.rollout_duration;
        let duration = s.spread(base);
        let now = Instant::now();
        let image = service(s, &self.env)?.revisions[revision].image.clone();
        let crashing = s.behavior_of(&image).crashing;
        let rec = service(s, &self.env)?;
        let id = rec.start(revision, duration, crashing, now);
        Ok(Rollout { deployment_id: Id::parse(id)?, image })
    }
}

#[async_trait]
impl Deployer for MemoryDeployer {
    async fn deploy(&self, image: &ImageRef) -> Result<Rollout> {
        let answer = self.account.enter(Op::Deploy).await?;
        let mut s = self.account.lock();
        let rec = service(&mut s, &self.env)?;
        // A stack update already rolls this image out: pin its deployment rather than start another.
        if let Some(dep) = rec.pinnable(image) {
            return answer.deliver(Ok(Rollout { deployment_id: Id::parse(dep.id.clone())?, image: image.clone() }));
        }
        let index = rec.revision_of(image);
        answer.deliver(self.start(&mut s, index))
    }

    async fn status(&self, rollout: &Rollout) -> Result<RolloutStatus> {
        self.account.enter(Op::RolloutStatus).await?;
        let mut s = self.account.lock();
        let now = Instant::now();
        let rec = service(&mut s, &self.env)?;
        let threshold = circuit_breaker_threshold(rec.desired);
        let dep = rec
            .deployments
            .iter()
            .find(|d| d.id == rollout.deployment_id.as_str())
            .ok_or_else(|| Error::NotFound { kind: "deployment", id: rollout.deployment_id.to_string().into() })?;
        let elapsed = now.saturating_duration_since(dep.started);
        let interval = rec.task_interval(dep);
        let started_tasks = if interval.is_zero() {
            rec.desired
        } else {
            u32::try_from(elapsed.as_nanos() / interval.as_nanos()).unwrap_or(u32::MAX).min(rec.desired)
        };
        Ok(if let Some(failure) = &dep.failed {
            RolloutStatus::Failed {
                reason: match &failure.rolled_back_to {
                    Some(to) => format!(
                        "ECS deployment circuit breaker: {threshold} tasks failed to start; rolled back to {to}"
                    ),
                    None => format!("ECS deployment circuit breaker: {threshold} tasks failed to start"),
                },
                rolled_back: failure.rolled_back_to.is_some(),
                failed: threshold,
            }
        } else if let Some(by) = &dep.superseded_by {
            RolloutStatus::Superseded { by: Id::parse(by.clone())? }
        } else if dep.completed(now) {
            RolloutStatus::Completed { running: rec.desired, desired: rec.desired }
        } else if dep.crashing {
            let failed = if interval.is_zero() {
                0
            } else {
                u32::try_from(elapsed.as_nanos() / interval.as_nanos()).unwrap_or(u32::MAX)
            };
            RolloutStatus::InProgress { running: 0, desired: rec.desired, failed }
        } else {
            RolloutStatus::InProgress { running: started_tasks, desired: rec.desired, failed: 0 }
        })
    }

    async fn revisions(&self) -> Result<ServiceRevisions> {
        self.account.enter(Op::Revisions).await?;
        let mut s = self.account.lock();
        let now = Instant::now();
        Ok(service(&mut s, &self.env)?.revisions_now(now))
    }

    async fn rollback(&self, to: &RollbackTarget) -> Result<Rollout> {
        let answer = self.account.enter(Op::Rollback).await?;
        let mut s = self.account.lock();
        let now = Instant::now();
        let rec = service(&mut s, &self.env)?;
        let name = match to {
            RollbackTarget::LastGood => rec
                .revisions_now(now)
                .last_good
                .map(|r| r.revision)
                .ok_or_else(|| Error::NotFound { kind: "last good revision", id: self.env.to_string().into() })?,
            RollbackTarget::Revision(name) => name.clone(),
        };
        let index = rec
            .revisions
            .iter()
            .position(|r| r.revision == name)
            .ok_or_else(|| Error::NotFound { kind: "revision", id: name.clone().into() })?;
        // A rollback to that revision already under way (a retry after a lost answer): pin it.
        if let Some(dep) =
            rec.deployments.last().filter(|d| d.revision == index && d.failed.is_none() && d.superseded_by.is_none())
        {
            let image = rec.revisions[index].image.clone();
            return answer.deliver(Ok(Rollout { deployment_id: Id::parse(dep.id.clone())?, image }));
        }
        answer.deliver(self.start(&mut s, index))
    }
}
