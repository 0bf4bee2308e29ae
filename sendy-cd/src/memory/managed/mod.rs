//! The simulated ECS-managed deployments: a service behind a load balancer whose own deployment
//! strategy (`BLUE_GREEN`, `LINEAR`, `CANARY`) shifts production traffic between two target groups,
//! through ECS's lifecycle stages, with `PAUSE` hooks, a bake, alarm and circuit-breaker rollbacks.

mod deployer;

use std::time::Duration;

use tokio::time::Instant;

pub use deployer::MemoryManagedDeployer;

use super::{Account, Health, State, later};
use crate::deployer::{HookAction, LifecycleStage, ManagedState};
use crate::error::{Error, Result};
use crate::model::{EnvironmentName, ImageRef, StackName, StackOutputs, StackParameters};

/// How a managed service moves production traffic (ECS's `deploymentConfiguration.strategy`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TrafficShift {
    /// All production traffic at once (`BLUE_GREEN`).
    BlueGreen,
    /// `step` percent more at each step, each baked for `bake` (`LINEAR`).
    Linear {
        /// Percent per step.
        step: u8,
        /// Bake of each step.
        bake: Duration,
    },
    /// `percent` first, baked for `bake`, then the rest (`CANARY`).
    Canary {
        /// The canary's share.
        percent: u8,
        /// Its bake.
        bake: Duration,
    },
}

impl TrafficShift {
    /// The production shares of the new revision, step by step, ending at 100.
    fn steps(&self) -> Vec<(u8, Duration)> {
        match self {
            TrafficShift::BlueGreen => vec![(100, Duration::ZERO)],
            TrafficShift::Linear { step, bake } => {
                let step = (*step).max(1);
                let mut out: Vec<(u8, Duration)> =
                    (1..).map(|i| step.saturating_mul(i)).take_while(|p| *p < 100).map(|p| (p, *bake)).collect();
                out.push((100, Duration::ZERO));
                out
            }
            TrafficShift::Canary { percent, bake } => vec![(*percent, *bake), (100, Duration::ZERO)],
        }
    }
}

/// A simulated managed service's deployment configuration.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ManagedConfig {
    /// How traffic moves. Default a 10 % canary baked 5 min.
    pub shift: TrafficShift,
    /// ECS's `bakeTimeInMinutes`: both revisions kept after all traffic moved. Default 5 min.
    pub bake: Duration,
    /// The stages with a `PAUSE` hook. Default `POST_TEST_TRAFFIC_SHIFT`,
    /// `PRE_PRODUCTION_TRAFFIC_SHIFT` and `POST_PRODUCTION_TRAFFIC_SHIFT`: every decision is the
    /// pipeline's.
    pub pause_hooks: Vec<LifecycleStage>,
    /// How long a hook waits for a decision. Default 24 h (ECS's default).
    pub hook_timeout: Duration,
    /// What happens then. Default roll back (ECS's default).
    pub timeout_action: HookAction,
    /// Alarms that roll the deployment back when in `ALARM` during the production shift and the
    /// bake ([`Account::set_alarm`]). Default none.
    pub alarms: Vec<String>,
    /// How long each of the other stages takes. Default 10 s.
    pub stage_time: Duration,
}

impl Default for ManagedConfig {
    fn default() -> Self {
        ManagedConfig {
            shift: TrafficShift::Canary { percent: 10, bake: Duration::from_secs(300) },
            bake: Duration::from_secs(300),
            pause_hooks: vec![
                LifecycleStage::PostTestTrafficShift,
                LifecycleStage::PreProductionTrafficShift,
                LifecycleStage::PostProductionTrafficShift,
            ],
            hook_timeout: Duration::from_secs(24 * 3600),
            timeout_action: HookAction::Rollback,
            alarms: vec![],
            stage_time: Duration::from_secs(10),
        }
    }
}

impl ManagedConfig {
    /// Checks the configuration as ECS would: shares in `1..=99`, no `PAUSE` hook at
    /// `TEST_TRAFFIC_SHIFT` or `PRODUCTION_TRAFFIC_SHIFT`, durations at most
    /// [`MAX_SIM_DURATION`](super::MAX_SIM_DURATION), a hook timeout above zero.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming what is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidConfig(format!("managed service: {m}")));
        match &self.shift {
            TrafficShift::Linear { step, .. } if !(1..=99).contains(step) => {
                return bad(format!("linear step {step}% is not in 1..=99"));
            }
            TrafficShift::Canary { percent, .. } if !(1..=99).contains(percent) => {
                return bad(format!("canary share {percent}% is not in 1..=99"));
            }
            _ => {}
        }
        if let Some(stage) = self.pause_hooks.iter().find(|s| {
            matches!(
                s,
                LifecycleStage::TestTrafficShift | LifecycleStage::ProductionTrafficShift | LifecycleStage::Other(_)
            )
        }) {
            return bad(format!("a PAUSE hook cannot be at {stage}"));
        }
        let bakes = match &self.shift {
            TrafficShift::BlueGreen => Duration::ZERO,
            TrafficShift::Linear { bake, .. } | TrafficShift::Canary { bake, .. } => *bake,
        };
        for (what, d) in [
            ("bake", self.bake),
            ("step bake", bakes),
            ("hook timeout", self.hook_timeout),
            ("stage time", self.stage_time),
        ] {
            if d > super::MAX_SIM_DURATION {
                return bad(format!("{what} {d:?} is longer than a year"));
            }
        }
        if self.hook_timeout.is_zero() {
            return bad("the hook timeout is zero".into());
        }
        Ok(())
    }
}

setters!(ManagedConfig {
    shift: TrafficShift,
    bake: Duration,
    #[into]
    pause_hooks: Vec<LifecycleStage>,
    hook_timeout: Duration,
    timeout_action: HookAction,
    #[into]
    alarms: Vec<String>,
    stage_time: Duration,
});

struct Phase {
    stage: LifecycleStage,
    duration: Duration,
    /// The new revision's production share during the phase.
    percent: u8,
    /// Whether test traffic is on the new revision during the phase.
    test: bool,
    hook: bool,
}

struct RevRec {
    arn: String,
    task_definition: String,
    image: ImageRef,
    created: jiff::Timestamp,
}

struct Dep {
    arn: String,
    target: usize,
    source: usize,
    /// The slot (target group) of the new revision: the other one than the live slot at its start.
    target_slot: usize,
    plan: Vec<Phase>,
    index: usize,
    entered: Instant,
    decided: bool,
    hooks: u32,
    state: ManagedState,
    reason: Option<String>,
    /// When a rollback or stop under way ends.
    settles_at: Option<Instant>,
}

impl Dep {
    fn percent(&self) -> u8 {
        match self.state {
            ManagedState::InProgress => self.plan.get(self.index).map_or(100, |p| p.percent),
            ManagedState::Successful => 100,
            _ => 0,
        }
    }

    fn test(&self) -> bool {
        self.state == ManagedState::InProgress && self.plan.get(self.index).is_some_and(|p| p.test)
    }

    fn paused(&self) -> bool {
        self.state == ManagedState::InProgress && !self.decided && self.plan.get(self.index).is_some_and(|p| p.hook)
    }

    fn hook_id(&self) -> String {
        format!("{}/hook-{}", self.arn, self.hooks)
    }

    fn roll_back(&mut self, at: Instant, reason: String, stage_time: Duration) {
        self.state = ManagedState::RollbackInProgress;
        self.reason = Some(reason);
        self.settles_at = Some(later(at, stage_time));
    }
}

pub(crate) struct ManagedRec {
    cfg: ManagedConfig,
    family: String,
    slots: [EnvironmentName; 2],
    revisions: Vec<RevRec>,
    live: usize,
    live_slot: usize,
    deployments: Vec<Dep>,
    ids: u32,
}

impl ManagedRec {
    fn plan(&self, rollout: Duration) -> Vec<Phase> {
        let t = self.cfg.stage_time;
        let hook = |s: &LifecycleStage| self.cfg.pause_hooks.contains(s);
        let phase = |stage: LifecycleStage, duration: Duration, percent: u8, test: bool| Phase {
            hook: hook(&stage),
            stage,
            duration,
            percent,
            test,
        };
        let mut plan = vec![
            phase(LifecycleStage::PreScaleUp, t, 0, false),
            phase(LifecycleStage::ScaleUp, rollout, 0, false),
            phase(LifecycleStage::PostScaleUp, t, 0, false),
            phase(LifecycleStage::TestTrafficShift, t, 0, true),
            phase(LifecycleStage::PostTestTrafficShift, t, 0, true),
        ];
        let mut before = 0;
        for (percent, bake) in self.cfg.shift.steps() {
            plan.push(phase(LifecycleStage::PreProductionTrafficShift, t, before, true));
            plan.push(phase(LifecycleStage::ProductionTrafficShift, t.saturating_add(bake), percent, true));
            before = percent;
        }
        plan.push(phase(LifecycleStage::PostProductionTrafficShift, t, 100, true));
        plan.push(phase(LifecycleStage::BakeTime, self.cfg.bake, 100, true));
        plan.push(phase(LifecycleStage::CleanUp, t, 100, false));
        plan
    }

    /// Brings every deployment up to `now`.
    fn refresh(&mut self, now: Instant, firing: &std::collections::BTreeSet<String>, crashing: &[bool]) {
        let t = self.cfg.stage_time;
        let (timeout, action) = (self.cfg.hook_timeout, self.cfg.timeout_action);
        let alarm = self.cfg.alarms.iter().find(|a| firing.contains(*a)).cloned();
        let mut finished = None;
        for dep in &mut self.deployments {
            loop {
                match dep.state {
                    ManagedState::InProgress => {}
                    ManagedState::RollbackInProgress | ManagedState::StopRequested => {
                        if dep.settles_at.is_some_and(|at| now >= at) {
                            dep.state = if dep.state == ManagedState::StopRequested {
                                ManagedState::Stopped
                            } else {
                                ManagedState::RollbackSuccessful
                            };
                        }
                        break;
                    }
                    _ => break,
                }
                let Some(phase) = dep.plan.get(dep.index) else {
                    dep.state = ManagedState::Successful;
                    finished = Some((dep.target, dep.target_slot));
                    break;
                };
                if phase.hook && !dep.decided {
                    let expires = later(dep.entered, timeout);
                    if now < expires {
                        break;
                    }
                    dep.hooks += 1;
                    match action {
                        HookAction::Continue => {
                            dep.decided = true;
                            dep.entered = expires;
                            continue;
                        }
                        HookAction::Rollback => {
                            let reason = format!("the {} hook timed out: ROLLBACK", phase.stage);
                            dep.roll_back(expires, reason, t);
                            continue;
                        }
                    }
                }
                if phase.stage == LifecycleStage::ScaleUp && crashing.get(dep.target).copied().unwrap_or(false) {
                    let fails = later(dep.entered, phase.duration / 2);
                    if now < fails {
                        break;
                    }
                    let reason = "ECS deployment circuit breaker: tasks failed to start".to_owned();
                    dep.roll_back(fails, reason, t);
                    continue;
                }
                let shifting = dep.plan[..=dep.index].iter().any(|p| p.percent > 0);
                if shifting && let Some(name) = &alarm {
                    dep.roll_back(now, format!("CloudWatch alarm {name} is in ALARM"), t);
                    continue;
                }
                let ends = later(dep.entered, phase.duration);
                if now < ends {
                    break;
                }
                dep.index += 1;
                dep.entered = ends;
                dep.decided = false;
            }
        }
        if let Some((revision, slot)) = finished {
            self.live = revision;
            self.live_slot = slot;
        }
    }

    fn find(&self, arn: &str) -> Result<&Dep> {
        self.deployments
            .iter()
            .find(|d| d.arn == arn)
            .ok_or_else(|| Error::NotFound { kind: "service deployment", id: arn.to_owned().into() })
    }

    fn find_mut(&mut self, arn: &str) -> Result<&mut Dep> {
        self.deployments
            .iter_mut()
            .find(|d| d.arn == arn)
            .ok_or_else(|| Error::NotFound { kind: "service deployment", id: arn.to_owned().into() })
    }

    /// Who serves on `slot` now, and with which share of production traffic.
    fn on_slot(&self, slot: usize) -> (Option<&RevRec>, u8) {
        if let Some(dep) =
            self.deployments.last().filter(|d| !d.state.is_final() || d.state == ManagedState::Successful)
        {
            let p = dep.percent();
            if dep.state != ManagedState::Successful {
                return if slot == dep.target_slot {
                    (Some(&self.revisions[dep.target]), p)
                } else {
                    (Some(&self.revisions[dep.source]), 100 - p)
                };
            }
        }
        if slot == self.live_slot { (Some(&self.revisions[self.live]), 100) } else { (None, 0) }
    }

    fn revision(&mut self, image: &ImageRef, now: jiff::Timestamp) -> usize {
        let n = self.revisions.len() + 1;
        self.revisions.push(RevRec {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:service-revision/sim/{}/{n}", self.family),
            task_definition: format!("{}:{n}", self.family),
            image: image.clone(),
            created: now,
        });
        self.revisions.len() - 1
    }
}

/// Creates managed service `name` (see [`Account::create_managed_service`]).
pub(crate) fn create(s: &mut State, env: &EnvironmentName, cfg: ManagedConfig) -> Result<()> {
    cfg.validate()?;
    let stack_name = StackName::parse(format!("app-{env}"))?;
    if s.managed.contains_key(env) || s.services.contains_key(env) || s.stacks.contains_key(&stack_name) {
        return Err(Error::Conflict(format!("environment {env} exists already").into()));
    }
    let slots = [EnvironmentName::parse(format!("{env}-blue"))?, EnvironmentName::parse(format!("{env}-green"))?];
    let image = s.image("initial")?;
    let host = format!("{env}.{}", s.cfg.domain);
    let test_host = format!("test.{env}.{}", s.cfg.domain);
    let outputs = StackOutputs::from_pairs([
        ("ServiceUrl".to_owned(), format!("http://{host}/")),
        ("TestUrl".to_owned(), format!("http://{test_host}:8080/")),
        ("ClusterName".to_owned(), format!("app-{env}")),
        ("ServiceName".to_owned(), env.to_string()),
    ]);
    let parameters = StackParameters::parse([("DesiredCount", s.cfg.desired_count.to_string())])?;
    s.stacks.insert(
        stack_name,
        super::stack::StackRec::new(parameters, "simulated managed service template".into(), outputs),
    );
    let now = s.now_timestamp();
    let mut rec = ManagedRec {
        cfg,
        family: format!("app-{env}"),
        slots,
        revisions: vec![],
        live: 0,
        live_slot: 0,
        deployments: vec![],
        ids: 0,
    };
    rec.revision(&image, now);
    s.managed.insert(env.clone(), rec);
    s.managed_endpoints.insert(host, (env.clone(), false));
    s.managed_endpoints.insert(test_host, (env.clone(), true));
    Ok(())
}

/// Brings managed service `env` up to now and returns it.
fn service<'a>(s: &'a mut State, env: &EnvironmentName) -> Result<&'a mut ManagedRec> {
    let firing = s.firing.clone();
    let crashing: Vec<bool> = match s.managed.get(env) {
        Some(rec) => rec
            .revisions
            .iter()
            .map(|r| r.image.tag().and_then(|t| s.behaviors.get(t)).is_some_and(|b| b.crashing))
            .collect(),
        None => vec![],
    };
    let rec = s
        .managed
        .get_mut(env)
        .ok_or_else(|| Error::NotFound { kind: "managed service", id: env.to_string().into() })?;
    rec.refresh(Instant::now(), &firing, &crashing);
    Ok(rec)
}

/// For the metrics: the image serving on metric slot `slot` (`<service>-blue` or `-green`) and its
/// share of production traffic, if `slot` is one.
pub(crate) fn slot_serving(s: &mut State, slot: &EnvironmentName) -> Option<(Option<ImageRef>, u8)> {
    let (env, index) =
        s.managed.iter().find_map(|(env, rec)| rec.slots.iter().position(|n| n == slot).map(|i| (env.clone(), i)))?;
    let rec = service(s, &env).ok()?;
    let (rev, share) = rec.on_slot(index);
    Some((rev.map(|r| r.image.clone()), share))
}

/// For the verifier: the HTTP status a managed service's production or test URL answers with, if
/// `host` is one. Production answers as the revision with most of the production traffic; the test
/// listener as the new revision once test traffic moved to it.
pub(crate) fn probe(s: &mut State, host: &str) -> Option<u16> {
    let (env, test) = s.managed_endpoints.get(host).cloned()?;
    let rec = service(s, &env).ok()?;
    let dep = rec.deployments.last().filter(|d| !d.state.is_final());
    let (revision, percent) = match dep {
        Some(d) if test && d.test() => (d.target, d.percent()),
        Some(d) if d.percent() >= 50 => (d.target, d.percent()),
        Some(d) => (d.source, 100 - d.percent()),
        None => (rec.live, 100),
    };
    let image = rec.revisions[revision].image.clone();
    let behavior = s.behavior_of(&image);
    Some(match behavior.health {
        Health::Healthy => 200,
        Health::Unhealthy => 500,
        Health::UnhealthyUnderTraffic if percent > 0 => 500,
        Health::UnhealthyUnderTraffic => 200,
    })
}

impl Account {
    /// Creates environment `name` as one ECS service behind a load balancer whose own deployment
    /// strategy shifts traffic (`cfg`): stack `app-<name>` with outputs `ServiceUrl`
    /// (`http://<name>.<domain>/`, the production listener) and `TestUrl`
    /// (`http://test.<name>.<domain>:8080/`, the test listener), the service running the initial
    /// image on target group `<name>-blue` (`<name>-green` is idle). Deploy to it with
    /// [`managed_deployer`](Self::managed_deployer); the account's [`metrics`](Self::metrics) know the
    /// two target groups by those names. It has no DNS record: ECS moves the traffic.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad name; [`Error::InvalidConfig`] from
    /// [`ManagedConfig::validate`]; [`Error::Conflict`] if the environment exists already.
    pub fn create_managed_service(&self, name: &str, cfg: ManagedConfig) -> Result<()> {
        let env = EnvironmentName::parse(name)?;
        create(&mut self.lock(), &env, cfg)
    }

    /// The [`ManagedDeployer`] of managed service `name`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad name; [`Error::NotFound`] if there is no such managed service.
    pub fn managed_deployer(&self, name: &str) -> Result<MemoryManagedDeployer> {
        let env = EnvironmentName::parse(name)?;
        if !self.lock().managed.contains_key(&env) {
            return Err(Error::NotFound { kind: "managed service", id: env.to_string().into() });
        }
        Ok(MemoryManagedDeployer::new(self.clone(), env))
    }

    /// Managed service `name` wired to this account's stack, managed deployer and verifier, for a
    /// pipeline with [`Strategy::EcsManaged`](crate::Strategy::EcsManaged).
    ///
    /// # Errors
    /// As [`managed_deployer`](Self::managed_deployer).
    pub fn managed_environment(&self, name: &str) -> Result<crate::pipeline::EnvironmentBuilder> {
        let deployer = std::sync::Arc::new(self.managed_deployer(name)?);
        Ok(crate::pipeline::Environment::builder(name)
            .stack(std::sync::Arc::new(self.stacks()), &format!("app-{name}"))
            .image_parameter(None)
            .managed(deployer)
            .verifier(std::sync::Arc::new(self.verifier())))
    }

    /// The revision managed service `name` serves all production traffic with, when no deployment
    /// is under way (for assertions).
    pub fn managed_serving(&self, name: &str) -> Option<ImageRef> {
        let env = EnvironmentName::parse(name).ok()?;
        let mut s = self.lock();
        let rec = service(&mut s, &env).ok()?;
        let (rev, share) = rec.on_slot(rec.live_slot);
        (share == 100).then(|| rev.map(|r| r.image.clone())).flatten()
    }
}
