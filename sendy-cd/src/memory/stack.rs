//! The simulated CloudFormation stacks.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Account, Op, State};
use crate::error::{Error, Result};
use crate::model::{EnvironmentName, Id, ImageRef, StackName, StackOutputs, StackParameters};
use crate::stack::{
    ChangeAction, Plan, PlanKind, Replacement, ResourceChange, Stack, StackChange, StackPlan, StackStatus,
};

/// The resources of a simulated environment stack, as a template would declare them.
const RESOURCES: [(&str, &str); 5] = [
    ("Network", "AWS::EC2::VPC"),
    ("LoadBalancer", "AWS::ElasticLoadBalancingV2::LoadBalancer"),
    ("Cluster", "AWS::ECS::Cluster"),
    ("TaskDefinition", "AWS::ECS::TaskDefinition"),
    ("Service", "AWS::ECS::Service"),
];

pub(crate) struct StackRec {
    pub(crate) parameters: StackParameters,
    template: String,
    outputs: StackOutputs,
    /// The plan being applied, if any.
    busy: Option<String>,
    /// The environment whose service the stack owns: an update of its `ImageUri` rolls the service
    /// out to that image, as CloudFormation does when a task definition's image changes.
    service: Option<EnvironmentName>,
}

impl StackRec {
    pub(crate) fn new(parameters: StackParameters, template: String, outputs: StackOutputs) -> Self {
        StackRec { parameters, template, outputs, busy: None, service: None }
    }

    /// A stack that owns environment `env`'s service.
    pub(crate) fn owning(mut self, env: EnvironmentName) -> Self {
        self.service = Some(env);
        self
    }
}

pub(crate) struct PlanRec {
    plan: StackPlan,
    /// The parameters the stack had when planned; applying fails if they changed since.
    base: Option<StackParameters>,
    parameters: StackParameters,
    template: String,
    applied: Option<Applied>,
}

struct Applied {
    started: Instant,
    duration: Duration,
    failure: Option<String>,
    settled: bool,
}

impl Account {
    /// How long the update started by plan `plan` takes: the truth a pipeline's detection lag is
    /// measured against. `None` for an unknown or unapplied plan.
    pub fn stack_update_duration(&self, plan: &Id) -> Option<Duration> {
        self.lock().plans.get(plan.as_str())?.applied.as_ref().map(|a| a.duration)
    }
}

/// Settles every applied plan whose time is up.
pub(crate) fn refresh(s: &mut State) {
    let now = Instant::now();
    let domain = s.cfg.domain.clone();
    let mut settled = vec![];
    for (id, rec) in &mut s.plans {
        if let Some(a) = rec.applied.as_mut().filter(|a| !a.settled && now >= super::later(a.started, a.duration)) {
            a.settled = true;
            let at = super::later(a.started, a.duration);
            settled.push((id.clone(), rec.plan.stack.clone(), rec.plan.kind, a.failure.is_none(), at));
        }
    }
    // Settle in the order the updates ended, so that services see their rollouts in that order.
    settled.sort_by_key(|(.., at)| *at);
    for (id, stack, kind, ok, at) in settled {
        let (parameters, template) = {
            let rec = &s.plans[&id];
            (rec.parameters.clone(), rec.template.clone())
        };
        match (kind, ok) {
            (_, true) => {
                let entry = s.stacks.entry(stack.clone()).or_insert_with(|| {
                    let url = format!("http://{}.{domain}/", stack.as_str().to_lowercase());
                    StackRec::new(
                        StackParameters::new(),
                        String::new(),
                        StackOutputs::from_pairs([("ServiceUrl", url)]),
                    )
                });
                let old_image = entry.parameters.get("ImageUri").map(str::to_owned);
                let new_image = parameters.get("ImageUri").map(str::to_owned);
                entry.parameters = parameters;
                entry.template = template;
                entry.busy = None;
                // CloudFormation registers a task definition with the new image and updates the
                // service, which starts a deployment: the simulated stack does the same.
                if let (Some(env), Some(uri)) =
                    (entry.service.clone(), new_image.filter(|n| Some(n) != old_image.as_ref()))
                    && let Ok(image) = ImageRef::parse(&uri)
                {
                    super::deployer::roll_out(s, &env, image, at);
                }
            }
            (PlanKind::Create, false) => {
                s.stacks.remove(&stack);
            }
            (PlanKind::Update, false) => {
                if let Some(rec) = s.stacks.get_mut(&stack) {
                    rec.busy = None;
                }
            }
        }
    }
}

/// The account's stacks, as a [`Stack`]: an update takes
/// [`SimConfig::stack_duration`](super::SimConfig::stack_duration) and rolls back when the image it sets
/// (parameter `ImageUri`) belongs to a revision with a
/// [`stack_failure`](super::Behavior::stack_failure).
#[derive(Clone, Debug)]
pub struct MemoryStacks {
    account: Account,
}

impl MemoryStacks {
    pub(crate) fn new(account: Account) -> Self {
        MemoryStacks { account }
    }
}

fn changes_between(old: &StackParameters, new: &StackParameters, template_changed: bool) -> Vec<ResourceChange> {
    let modify = |logical_id: &str, replacement| {
        let resource_type = RESOURCES.iter().find(|(l, _)| *l == logical_id).map_or("", |(_, t)| *t);
        ResourceChange {
            logical_id: logical_id.into(),
            resource_type: resource_type.into(),
            action: ChangeAction::Modify,
            replacement: Some(replacement),
        }
    };
    let mut changes = vec![];
    if template_changed {
        changes.push(modify("LoadBalancer", Replacement::Conditional));
    }
    if old.get("ImageUri") != new.get("ImageUri") {
        changes.push(modify("TaskDefinition", Replacement::True));
    }
    if new.iter().any(|(k, v)| old.get(k.as_str()) != Some(v)) {
        changes.push(modify("Service", Replacement::False));
    }
    changes
}

impl MemoryStacks {
    fn plan_now(&self, stack: &StackName, change: &StackChange) -> Result<Plan> {
        let mut s = self.account.lock();
        refresh(&mut s);
        let (kind, base, parameters, template, changes) = match s.stacks.get(stack) {
            Some(rec) => {
                if rec.busy.is_some() {
                    return Err(Error::Conflict(format!("stack {stack} is being updated").into()));
                }
                let mut parameters = rec.parameters.clone();
                for (k, v) in change.parameters.iter() {
                    parameters.insert(k.clone(), v);
                }
                let template = change.template.clone().unwrap_or_else(|| rec.template.clone());
                let changes = changes_between(&rec.parameters, &parameters, template != rec.template);
                if changes.is_empty() {
                    return Ok(Plan::NoChanges);
                }
                (PlanKind::Update, Some(rec.parameters.clone()), parameters, template, changes)
            }
            None => {
                let Some(template) = change.template.clone() else {
                    return Err(Error::InvalidConfig(format!(
                        "stack {stack} does not exist: creating it needs a template"
                    )));
                };
                let changes = RESOURCES
                    .iter()
                    .map(|(l, t)| ResourceChange {
                        logical_id: (*l).into(),
                        resource_type: (*t).into(),
                        action: ChangeAction::Add,
                        replacement: None,
                    })
                    .collect();
                (PlanKind::Create, None, change.parameters.clone(), template, changes)
            }
        };
        let id = Id::parse(s.next_id(&format!("arn:sim:cloudformation:changeSet/{stack}/")))?;
        let plan = StackPlan { id: id.clone(), stack: stack.clone(), kind, changes };
        s.plans.insert(id.to_string(), PlanRec { plan: plan.clone(), base, parameters, template, applied: None });
        Ok(Plan::Ready(plan))
    }

    /// Applies `plan`; applying a plan that was applied already is not an error (its first apply's
    /// answer may have been lost), and changes nothing.
    fn apply_now(&self, plan: &StackPlan) -> Result<()> {
        let mut s = self.account.lock();
        refresh(&mut s);
        let rec = s
            .plans
            .get(plan.id.as_str())
            .ok_or_else(|| Error::NotFound { kind: "plan", id: plan.id.to_string().into() })?;
        if rec.applied.is_some() {
            return Ok(());
        }
        let current = s.stacks.get(&plan.stack);
        match (&rec.base, current) {
            (None, Some(_)) => {
                return Err(Error::Conflict(format!("stack {} was created since planned", plan.stack).into()));
            }
            (Some(_), None) => return Err(Error::NotFound { kind: "stack", id: plan.stack.to_string().into() }),
            (Some(base), Some(cur)) if cur.busy.is_some() || &cur.parameters != base => {
                return Err(Error::Conflict(format!("stack {} changed since the plan was made", plan.stack).into()));
            }
            _ => {}
        }
        let failure = rec
            .parameters
            .get("ImageUri")
            .and_then(|uri| ImageRef::parse(uri).ok())
            .and_then(|image| s.behavior_of(&image).stack_failure);
        let base = s.cfg.stack_duration;
        let duration = s.spread(base);
        if let Some(cur) = s.stacks.get_mut(&plan.stack) {
            cur.busy = Some(plan.id.to_string());
        }
        if let Some(rec) = s.plans.get_mut(plan.id.as_str()) {
            rec.applied = Some(Applied { started: Instant::now(), duration, failure, settled: false });
        }
        Ok(())
    }
}

#[async_trait]
impl Stack for MemoryStacks {
    async fn plan(&self, stack: &StackName, change: &StackChange) -> Result<Plan> {
        let answer = self.account.enter(Op::StackPlan).await?;
        answer.deliver(self.plan_now(stack, change))
    }

    /// At most one plan per key while that plan exists (until it is applied or replaced, as a
    /// change set named after the key).
    async fn plan_once(&self, stack: &StackName, change: &StackChange, key: &str) -> Result<Plan> {
        let answer = self.account.enter(Op::StackPlan).await?;
        let known = {
            let s = self.account.lock();
            s.plan_keys.get(key).and_then(|id| s.plans.get(id)).map(|rec| rec.plan.clone())
        };
        if let Some(plan) = known {
            return answer.deliver(Ok(Plan::Ready(plan)));
        }
        let planned = self.plan_now(stack, change);
        if let Ok(Plan::Ready(plan)) = &planned {
            self.account.lock().plan_keys.insert(key.to_owned(), plan.id.to_string());
        }
        answer.deliver(planned)
    }

    async fn apply(&self, plan: &StackPlan) -> Result<()> {
        let answer = self.account.enter(Op::StackApply).await?;
        answer.deliver(self.apply_now(plan))
    }

    async fn status(&self, plan: &StackPlan) -> Result<StackStatus> {
        self.account.enter(Op::StackStatus).await?;
        let mut s = self.account.lock();
        refresh(&mut s);
        let rec = s
            .plans
            .get(plan.id.as_str())
            .ok_or_else(|| Error::NotFound { kind: "plan", id: plan.id.to_string().into() })?;
        let Some(applied) = &rec.applied else {
            return Err(Error::NotFound {
                kind: "stack operation (the plan was never applied)",
                id: plan.id.to_string().into(),
            });
        };
        let verb = match rec.plan.kind {
            PlanKind::Create => "CREATE",
            PlanKind::Update => "UPDATE",
        };
        Ok(match (&applied.failure, applied.settled, rec.plan.kind) {
            (_, false, _) => StackStatus::InProgress { status: format!("{verb}_IN_PROGRESS") },
            (None, true, _) => StackStatus::Complete,
            (Some(reason), true, PlanKind::Update) => {
                StackStatus::RolledBack { resource: Some("TaskDefinition".into()), reason: reason.clone() }
            }
            (Some(reason), true, PlanKind::Create) => {
                StackStatus::Failed { resource: Some("TaskDefinition".into()), reason: reason.clone() }
            }
        })
    }

    async fn outputs(&self, stack: &StackName) -> Result<StackOutputs> {
        self.account.enter(Op::StackOutputs).await?;
        let mut s = self.account.lock();
        refresh(&mut s);
        s.stacks
            .get(stack)
            .map(|r| r.outputs.clone())
            .ok_or_else(|| Error::NotFound { kind: "stack", id: stack.to_string().into() })
    }
}
