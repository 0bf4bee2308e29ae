//! [`Stack`] on CloudFormation change sets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudformation::types::{
    Capability, ChangeAction as CfnAction, ChangeSetStatus, ChangeSetType, ExecutionStatus, Parameter,
    Replacement as CfnReplacement, StackStatus as CfnStatus,
};

use super::AwsConfig;
use super::error::from_sdk;
use crate::error::{Error, Result};
use crate::model::{Id, StackName, StackOutputs};
use crate::stack::{
    ChangeAction, Plan, PlanKind, Replacement, ResourceChange, Stack, StackChange, StackPlan, StackStatus,
};
use crate::wait::{Check, PollPolicy, Wait};

/// CloudFormation stacks, changed only through change sets, as a [`Stack`].
///
/// - [`plan`](Stack::plan) creates a change set with an explicit `CREATE` or `UPDATE` type (keeping
///   the previous template and the previous value of every parameter not given), waits until it is
///   ready, and turns it into the plan. A change set that changes nothing is deleted and reported as
///   [`Plan::NoChanges`].
/// - [`status`](Stack::status) follows the update *that* change set started: while it is the stack's
///   newest, by the stack's status; afterwards, by the change set's execution status. A rollback or
///   failure carries the first failing resource and its reason from the stack events.
#[derive(Clone, Debug)]
pub struct CloudFormationStack {
    client: aws_sdk_cloudformation::Client,
    poll: PollPolicy,
    plan_deadline: Duration,
}

static PLANS: AtomicU64 = AtomicU64::new(0);

impl CloudFormationStack {
    /// Stacks in the account and region of `config`.
    pub fn new(config: &AwsConfig) -> Self {
        Self::from_client(aws_sdk_cloudformation::Client::new(config.sdk_config()))
    }

    /// As [`new`](Self::new), with a client of your own.
    pub fn from_client(client: aws_sdk_cloudformation::Client) -> Self {
        CloudFormationStack {
            client,
            poll: PollPolicy { first: Duration::from_secs(1), max: Duration::from_secs(5), ..PollPolicy::default() },
            plan_deadline: Duration::from_secs(600),
        }
    }

    /// How to poll a change set until it is ready, and for how long. Defaults: every 1 s growing to
    /// 5 s, 10 minutes.
    pub fn plan_polling(mut self, poll: PollPolicy, deadline: Duration) -> Self {
        self.poll = poll;
        self.plan_deadline = deadline;
        self
    }

    async fn describe(&self, stack: &StackName) -> Result<Option<aws_sdk_cloudformation::types::Stack>> {
        match self.client.describe_stacks().stack_name(stack.as_str()).send().await {
            Ok(out) => Ok(out.stacks().first().cloned()),
            Err(e) => match from_sdk("cloudformation:DescribeStacks", e) {
                Error::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn describe_change_set(
        &self,
        id: &str,
        stack: &str,
        token: Option<&str>,
    ) -> Result<aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput> {
        self.client
            .describe_change_set()
            .change_set_name(id)
            .stack_name(stack)
            .set_next_token(token.map(str::to_owned))
            .send()
            .await
            .map_err(|e| from_sdk("cloudformation:DescribeChangeSet", e))
    }

    /// The first resource that failed in the stack's newest operation, and its reason.
    async fn failure(&self, stack: &str) -> Result<(Option<String>, String)> {
        let mut failed = None;
        let mut token = None;
        'pages: for _ in 0..20 {
            let out = self
                .client
                .describe_stack_events()
                .stack_name(stack)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| from_sdk("cloudformation:DescribeStackEvents", e))?;
            // Newest first: the last failure seen before the operation's start is the first to fail.
            for event in out.stack_events() {
                let status = event.resource_status().map(|s| s.as_str()).unwrap_or_default();
                let is_stack = event.logical_resource_id() == Some(stack);
                if is_stack
                    && status.ends_with("_IN_PROGRESS")
                    && event.resource_status_reason() == Some("User Initiated")
                {
                    break 'pages;
                }
                if !is_stack && status.ends_with("_FAILED") {
                    failed = Some((
                        event.logical_resource_id().map(str::to_owned),
                        event.resource_status_reason().unwrap_or("no reason given").to_owned(),
                    ));
                }
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(failed.unwrap_or((None, "no failed resource in the stack events".into())))
    }
}

/// Whether a `FAILED` change set failed only because it changes nothing. CloudFormation says so only
/// in the change set's `StatusReason` text (there is no status or code for it); the AWS CLI's
/// `cloudformation deploy` recognises it the same way.
fn no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

#[async_trait]
impl Stack for CloudFormationStack {
    async fn plan(&self, stack: &StackName, change: &StackChange) -> Result<Plan> {
        let n = PLANS.fetch_add(1, Ordering::Relaxed);
        let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        self.plan_named(stack, change, format!("sendy-cd-{millis}-{n}"), false).await
    }

    /// The change set is named after the key (`sendy-cd-` and 40 hex digits of its SHA-256): a
    /// second call finds it (`AlreadyExistsException`) and answers it, whatever state it is in.
    async fn plan_once(&self, stack: &StackName, change: &StackChange, key: &str) -> Result<Plan> {
        let token = super::idempotency_token(key);
        self.plan_named(stack, change, format!("sendy-cd-{}", &token[..40]), true).await
    }

    async fn apply(&self, plan: &StackPlan) -> Result<()> {
        self.apply_plan(plan).await
    }

    async fn status(&self, plan: &StackPlan) -> Result<StackStatus> {
        self.status_of(plan).await
    }

    async fn outputs(&self, stack: &StackName) -> Result<StackOutputs> {
        self.outputs_of(stack).await
    }
}

impl CloudFormationStack {
    /// Creates change set `name` for `change` and describes it; with `reuse`, a change set of that
    /// name that exists already is described and answered instead.
    async fn plan_named(&self, stack: &StackName, change: &StackChange, name: String, reuse: bool) -> Result<Plan> {
        let existing = self.describe(stack).await?;
        let existing = existing.filter(|s| s.stack_status() != Some(&CfnStatus::ReviewInProgress));
        if let Some(s) = &existing {
            let status = s.stack_status().map(|s| s.as_str()).unwrap_or_default();
            if status.ends_with("_IN_PROGRESS") {
                return Err(Error::Conflict(format!("stack {stack} is busy ({status})").into()));
            }
        }
        let kind = if existing.is_some() { PlanKind::Update } else { PlanKind::Create };
        if kind == PlanKind::Create && change.template.is_none() {
            return Err(Error::InvalidConfig(format!("stack {stack} does not exist: creating it needs a template")));
        }
        let mut parameters = vec![];
        for (key, value) in change.parameters.iter() {
            parameters.push(Parameter::builder().parameter_key(key.as_str()).parameter_value(value).build());
        }
        if let Some(s) = &existing {
            for p in s.parameters() {
                let key = p.parameter_key().unwrap_or_default();
                if change.parameters.get(key).is_none() {
                    parameters.push(Parameter::builder().parameter_key(key).use_previous_value(true).build());
                }
            }
        }
        let request = self
            .client
            .create_change_set()
            .stack_name(stack.as_str())
            .change_set_name(&name)
            .change_set_type(if kind == PlanKind::Create { ChangeSetType::Create } else { ChangeSetType::Update })
            .set_parameters(Some(parameters))
            .capabilities(Capability::CapabilityIam)
            .capabilities(Capability::CapabilityNamedIam)
            .capabilities(Capability::CapabilityAutoExpand)
            .description("sendy-cd");
        let request = match &change.template {
            Some(body) => request.template_body(body),
            None => request.use_previous_template(true),
        };
        let created = match request.send().await {
            Ok(out) => out.id().map(str::to_owned),
            // An earlier call with this key created it (its answer may have been lost): that one.
            Err(e) if reuse && e.as_service_error().is_some_and(|e| e.is_already_exists_exception()) => {
                tracing::info!(change_set = %name, "the change set exists already: an earlier attempt made it");
                None
            }
            Err(e) => {
                let err = from_sdk("cloudformation:CreateChangeSet", e);
                // Some implementations refuse an empty change set outright instead of creating it FAILED.
                if no_changes(&err.to_string()) {
                    return Ok(Plan::NoChanges);
                }
                return Err(err);
            }
        };
        let id = created.unwrap_or_else(|| name.clone());
        let (described, _) = Wait::new(&self.poll, format!("change set {name}"), self.plan_deadline)
            .until(|| async {
                let out = self.describe_change_set(&id, stack.as_str(), None).await?;
                Ok(match out.status() {
                    Some(ChangeSetStatus::CreateComplete | ChangeSetStatus::Failed) => Check::Ready(out),
                    _ => Check::Pending,
                })
            })
            .await?;
        if described.status() == Some(&ChangeSetStatus::Failed) {
            let reason = described.status_reason().unwrap_or("no reason given").to_owned();
            if no_changes(&reason) {
                self.client
                    .delete_change_set()
                    .change_set_name(&id)
                    .stack_name(stack.as_str())
                    .send()
                    .await
                    .map_err(|e| from_sdk("cloudformation:DeleteChangeSet", e))?;
                return Ok(Plan::NoChanges);
            }
            return Err(Error::Backend(format!("change set for stack {stack} failed: {reason}").into()));
        }
        let mut changes = vec![];
        let mut page = Some(described);
        while let Some(out) = page.take() {
            for c in out.changes() {
                let Some(rc) = c.resource_change() else { continue };
                changes.push(ResourceChange {
                    logical_id: rc.logical_resource_id().unwrap_or_default().to_owned(),
                    resource_type: rc.resource_type().unwrap_or_default().to_owned(),
                    action: match rc.action() {
                        Some(CfnAction::Add) => ChangeAction::Add,
                        Some(CfnAction::Remove) => ChangeAction::Remove,
                        Some(CfnAction::Import) => ChangeAction::Import,
                        Some(CfnAction::Dynamic) => ChangeAction::Dynamic,
                        _ => ChangeAction::Modify,
                    },
                    replacement: rc.replacement().map(|r| match r {
                        CfnReplacement::True => Replacement::True,
                        CfnReplacement::Conditional => Replacement::Conditional,
                        _ => Replacement::False,
                    }),
                });
            }
            if let Some(token) = out.next_token() {
                page = Some(self.describe_change_set(&id, stack.as_str(), Some(token)).await?);
            }
        }
        Ok(Plan::Ready(StackPlan { id: Id::parse(id)?, stack: stack.clone(), kind, changes }))
    }

    async fn apply_plan(&self, plan: &StackPlan) -> Result<()> {
        let executed = self
            .client
            .execute_change_set()
            .change_set_name(plan.id.as_str())
            .stack_name(plan.stack.as_str())
            .send()
            .await;
        let Err(err) = executed else { return Ok(()) };
        // `InvalidChangeSetStatus`: the change set cannot be executed in its state. If that state is
        // "executed" (an earlier call took effect and its answer was lost), the apply happened.
        let conflict = err.as_service_error().is_some_and(|e| e.is_invalid_change_set_status_exception());
        let err = from_sdk("cloudformation:ExecuteChangeSet", err);
        if conflict {
            let cs = self.describe_change_set(plan.id.as_str(), plan.stack.as_str(), None).await?;
            if matches!(
                cs.execution_status(),
                Some(
                    ExecutionStatus::ExecuteInProgress
                        | ExecutionStatus::ExecuteComplete
                        | ExecutionStatus::ExecuteFailed
                )
            ) {
                return Ok(());
            }
        }
        Err(err)
    }

    async fn status_of(&self, plan: &StackPlan) -> Result<StackStatus> {
        let stack = self
            .describe(&plan.stack)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "stack", id: plan.stack.to_string().into() })?;
        let status = stack.stack_status().cloned().unwrap_or_else(|| CfnStatus::from("UNKNOWN"));
        let ours = stack.change_set_id() == Some(plan.id.as_str());
        if ours {
            let name = status.as_str();
            return Ok(match status {
                CfnStatus::CreateComplete | CfnStatus::UpdateComplete | CfnStatus::ImportComplete => {
                    StackStatus::Complete
                }
                CfnStatus::UpdateRollbackComplete | CfnStatus::RollbackComplete | CfnStatus::ImportRollbackComplete => {
                    let (resource, reason) = self.failure(plan.stack.as_str()).await?;
                    StackStatus::RolledBack { resource, reason }
                }
                _ if name.ends_with("_FAILED") => {
                    let (resource, reason) = self.failure(plan.stack.as_str()).await?;
                    StackStatus::Failed { resource, reason: format!("{name}: {reason}") }
                }
                _ => StackStatus::InProgress { status: name.to_owned() },
            });
        }
        // Not the stack's newest change set: its own execution status tells how it went.
        let cs = self.describe_change_set(plan.id.as_str(), plan.stack.as_str(), None).await?;
        Ok(match cs.execution_status() {
            Some(ExecutionStatus::ExecuteComplete) => StackStatus::Complete,
            Some(ExecutionStatus::ExecuteInProgress) => StackStatus::InProgress { status: status.as_str().to_owned() },
            Some(ExecutionStatus::ExecuteFailed) => StackStatus::Failed {
                resource: None,
                reason: cs.status_reason().unwrap_or("execution failed").to_owned(),
            },
            Some(ExecutionStatus::Obsolete) => {
                StackStatus::Failed { resource: None, reason: "the change set became obsolete".into() }
            }
            // Read right after ExecuteChangeSet, a change set may still say AVAILABLE (read-after-write
            // lag): its execution is about to start, which is pending, not a conflict.
            Some(ExecutionStatus::Available) => {
                StackStatus::InProgress { status: format!("{} (change set execution starting)", status.as_str()) }
            }
            other => {
                return Err(Error::Conflict(
                    (format!("change set {} was not executed (execution status {other:?})", plan.id)).into(),
                ));
            }
        })
    }

    async fn outputs_of(&self, stack: &StackName) -> Result<StackOutputs> {
        let s = self
            .describe(stack)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "stack", id: stack.to_string().into() })?;
        Ok(StackOutputs::from_pairs(
            s.outputs().iter().filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned()))),
        ))
    }
}
