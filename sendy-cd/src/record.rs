//! The execution record: what happened, stage by stage and step by step.
//!
//! A record is written as the execution goes: each step is recorded *before* its AWS-facing call and
//! again after it, with the handle the call produced (build id, plan id, deployment id, change id), so
//! that a durable journal of these records can tell exactly where an interrupted execution stood.
//! Records serialize to JSON.

use serde::{Deserialize, Serialize};

use crate::builder::BuiltImage;
use crate::deployer::DeployedRevision;
use crate::model::{EnvironmentName, Id, Revision, Stage, TrafficSplit};
use crate::verify::VerificationReport;

/// How a stage ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StageOutcome {
    /// Still running.
    Running,
    /// Succeeded.
    Succeeded,
    /// Failed.
    Failed {
        /// Why.
        reason: String,
    },
    /// Cancelled by the caller.
    Cancelled,
}

/// One step of an execution: one AWS-facing action, or one wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// `Source::latest`.
    ReadSource,
    /// `Builder::start`.
    StartBuild,
    /// Polling `Builder::status`.
    WaitBuild,
    /// `Builder::find_started`: resuming, looking for the build an unanswered start may have started.
    FindBuild,
    /// `Builder::stop`.
    StopBuild,
    /// `Stack::plan`.
    PlanStack,
    /// `Stack::apply`.
    ApplyStack,
    /// Polling `Stack::status`.
    WaitStack,
    /// `Stack::outputs`.
    ReadOutputs,
    /// `Deployer::revisions`.
    ReadRevisions,
    /// `Deployer::deploy`.
    Deploy,
    /// Polling `Deployer::status`.
    WaitRollout,
    /// `Deployer::rollback`.
    RollbackService,
    /// Health checks through the service URL.
    Verify,
    /// `DnsSwitch::weights`.
    ReadWeights,
    /// `DnsSwitch::set_weights`.
    SetWeights,
    /// Polling `DnsSwitch::change_status`.
    WaitDnsChange,
    /// Waiting one TTL after a change, for resolvers to drop the old answer.
    WaitTtl,
    /// Waiting at a canary step before checking it.
    Bake,
    /// A canary step's metric analysis ([`Canary::analysis`](crate::Canary::analysis)).
    Analyze,
    /// `ManagedDeployer::decide`: a paused hook of a managed deployment told `CONTINUE` or `ROLLBACK`.
    DecideHook,
    /// `ManagedDeployer::stop`: a managed deployment stopped and rolled back.
    StopDeployment,
}

impl Step {
    /// Whether the step's call changes something in AWS (starts or stops a build, creates or
    /// executes a change set, rolls a service out or back, changes DNS weights): such a step is
    /// made only by the holder of the pipeline's lease, checked right before it.
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            Step::StartBuild
                | Step::StopBuild
                | Step::PlanStack
                | Step::ApplyStack
                | Step::Deploy
                | Step::RollbackService
                | Step::SetWeights
                | Step::DecideHook
                | Step::StopDeployment
        )
    }
}

/// How a step ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepOutcome {
    /// Its call is under way (recorded before the call).
    Started,
    /// It succeeded.
    Done,
    /// It failed.
    Failed {
        /// Why.
        reason: String,
    },
    /// It was cancelled.
    Cancelled,
}

/// One step in the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepRecord {
    /// The step.
    pub step: Step,
    /// Its stage.
    pub stage: Stage,
    /// The environment it works on, if any.
    pub environment: Option<EnvironmentName>,
    /// When it started, since the execution started.
    pub started_ms: u64,
    /// When it ended.
    pub finished_ms: Option<u64>,
    /// How it ended.
    pub outcome: StepOutcome,
    /// What it is about or produced: a build id, plan id, deployment id, change id, weights.
    pub detail: Option<String>,
    /// Calls made: attempts for an action, status calls for a wait.
    pub calls: u32,
}

/// One stage in the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StageRecord {
    /// The stage.
    pub stage: Stage,
    /// The environment it works on, if any.
    pub environment: Option<EnvironmentName>,
    /// When it started, since the execution started.
    pub started_ms: u64,
    /// When it ended.
    pub finished_ms: Option<u64>,
    /// How it ended.
    pub outcome: StageOutcome,
    /// A one-line summary (an image, a plan, a rollout, a split).
    pub detail: Option<String>,
}

impl StageRecord {
    /// How long the stage took, once it is over.
    pub fn duration_ms(&self) -> Option<u64> {
        self.finished_ms.map(|f| f.saturating_sub(self.started_ms))
    }

    /// A finished stage (for tests of what reads records).
    #[cfg(test)]
    pub(crate) fn finished(stage: Stage, started_ms: u64, finished_ms: u64, outcome: StageOutcome) -> Self {
        StageRecord { stage, environment: None, started_ms, finished_ms: Some(finished_ms), outcome, detail: None }
    }
}

impl StepRecord {
    /// A step done at `started_ms` (for tests of what reads records).
    #[cfg(test)]
    pub(crate) fn at(step: Step, stage: Stage, started_ms: u64) -> Self {
        StepRecord {
            step,
            stage,
            environment: None,
            started_ms,
            finished_ms: Some(started_ms),
            outcome: StepOutcome::Done,
            detail: None,
            calls: 1,
        }
    }
}

/// One metric analysis of a canary step: the canary against the environment it took traffic from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AnalysisRecord {
    /// The environment judged (the canary).
    pub environment: EnvironmentName,
    /// The environment it was judged against (the baseline, serving the rest of the traffic).
    pub baseline: EnvironmentName,
    /// When in the execution: `canary 10%`, ...
    pub phase: String,
    /// The last judgement: per metric both summaries, the statistic and the verdict.
    pub judgement: crate::analysis::Judgement,
}

/// A deployment whose traffic the backend shifted ([`Strategy::EcsManaged`](crate::Strategy::EcsManaged)):
/// the service deployment pinned, the service revisions before and after, the lifecycle stages seen
/// and every hook decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManagedRecord {
    /// The service deployment (its ARN on ECS).
    pub deployment: Id,
    /// The service revisions it replaces.
    pub revisions_before: Vec<String>,
    /// The service revision it rolls out.
    pub revision_after: Option<String>,
    /// Each lifecycle stage seen, with when (milliseconds since the execution started).
    pub stages: Vec<(crate::deployer::LifecycleStage, u64)>,
    /// Each hook decided.
    pub hooks: Vec<HookDecision>,
    /// The deployment's last known state.
    pub state: Option<crate::deployer::ManagedState>,
    /// Why it is in that state, as the backend said.
    pub reason: Option<String>,
}

/// One paused hook of a managed deployment, decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HookDecision {
    /// The stage it held.
    pub stage: crate::deployer::LifecycleStage,
    /// The new revision's share of production traffic then, in percent.
    pub production_percent: u8,
    /// What it was told.
    pub action: crate::deployer::HookAction,
    /// Why: the check that decided.
    pub because: String,
}

/// One health check in the record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VerificationRecord {
    /// The environment checked.
    pub environment: EnvironmentName,
    /// When in the execution: `before traffic`, `after switch`, `canary 10%`, ...
    pub phase: String,
    /// What the check saw (also when it failed).
    pub report: VerificationReport,
    /// Whether it passed.
    pub passed: bool,
}

/// What was done to undo a failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Recovery {
    /// Nothing users see had changed: no traffic had moved and the live service was untouched.
    NotNeeded,
    /// All traffic was sent back to `to`, the environment that had it before.
    TrafficRestored {
        /// The environment that has the traffic again.
        to: EnvironmentName,
    },
    /// The live service was rolled back to `revision` (by the pipeline, or by the backend's circuit breaker).
    ServiceRolledBack {
        /// The revision it runs again.
        revision: String,
    },
    /// Undoing failed: the record says what is where. Needs a person.
    Failed {
        /// Why.
        reason: String,
    },
}

/// How an execution ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Still running.
    Running,
    /// The revision is live.
    Succeeded,
    /// A stage failed; `recovery` says what was undone.
    Failed {
        /// The stage that failed.
        stage: Stage,
        /// Why.
        reason: String,
        /// What was undone.
        recovery: Recovery,
    },
    /// The caller cancelled; `recovery` says what was undone.
    Cancelled {
        /// The stage that was running.
        stage: Option<Stage>,
        /// What was undone.
        recovery: Recovery,
    },
    /// The process running it stopped part-way (killed, crashed, or it lost its lease); a later one
    /// settled it from the journal ([`Pipeline::resume`](crate::Pipeline::resume)): `recovery` says
    /// what that one undid, and the record's `resumed_by` who it was.
    Interrupted {
        /// The stage that was running.
        stage: Option<Stage>,
        /// What was undone.
        recovery: Recovery,
    },
}

impl Outcome {
    /// Whether the execution is over.
    pub fn is_final(&self) -> bool {
        !matches!(self, Outcome::Running)
    }
}

/// What an execution does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExecutionKind {
    /// Build and deploy a revision.
    Deploy,
    /// Deploy an image built earlier (a manual rollback to an earlier revision); no build.
    Redeploy,
    /// Send all traffic back to the previous environment (a manual rollback).
    SwitchBack,
}

/// Everything one execution did. Serializes to JSON, in one shape that the Python bindings and any
/// reader share (schema version [`ExecutionRecord::SCHEMA_VERSION`]): `"kind": "deploy"`,
/// `"outcome": {"status": "failed", "stage": "verify", "reason": "...", "recovery": {"action":
/// "traffic_restored", "to": "blue"}}`, each stage's and step's `"outcome": {"status": ...}`, and
/// durations and instants in milliseconds since the execution started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecutionRecord {
    /// The shape of this JSON: [`ExecutionRecord::SCHEMA_VERSION`] when written by this version.
    #[serde(default = "schema_version")]
    pub schema_version: u32,
    /// The execution's id.
    pub id: Id,
    /// What it does.
    pub kind: ExecutionKind,
    /// The revision deployed (`None` for a [`ExecutionKind::SwitchBack`]).
    pub revision: Option<Revision>,
    /// The strategy, by name.
    pub strategy: String,
    /// Wall-clock time it started at.
    pub started_at: jiff::Timestamp,
    /// How long it took, on tokio's clock, once over.
    pub duration_ms: Option<u64>,
    /// The environment the revision was deployed to.
    pub target: Option<EnvironmentName>,
    /// The environment that had the traffic before.
    pub previous: Option<EnvironmentName>,
    /// The revision the live environment (the one with the traffic) ran before this execution changed
    /// anything: where all-at-once rolls the service back to, and what
    /// [`switch_back`](crate::Pipeline::switch_back) expects that environment to run still.
    #[serde(default)]
    pub live_revision: Option<DeployedRevision>,
    /// The image deployed.
    pub image: Option<BuiltImage>,
    /// The weights before any change.
    pub traffic_before: Option<TrafficSplit>,
    /// The weights at the end.
    pub traffic_after: Option<TrafficSplit>,
    /// Every stage, in order (a stage may appear more than once, e.g. a verification per canary step).
    pub stages: Vec<StageRecord>,
    /// Every step, in order.
    pub steps: Vec<StepRecord>,
    /// Every health check.
    pub verifications: Vec<VerificationRecord>,
    /// Every metric analysis of a canary step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analyses: Vec<AnalysisRecord>,
    /// The managed deployment, when the backend shifted the traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedRecord>,
    /// How it ended.
    pub outcome: Outcome,
    /// Who settled it after the process running it stopped part-way (host, pid), and what the journal
    /// said it was doing: see [`Outcome::Interrupted`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_by: Option<String>,
}

fn schema_version() -> u32 {
    ExecutionRecord::SCHEMA_VERSION
}

impl ExecutionRecord {
    /// The shape of the JSON this version writes. 2: `kind` a plain string, `outcome` tagged
    /// `status`, `recovery` tagged `action` (1 nested each under its own name).
    pub const SCHEMA_VERSION: u32 = 2;

    /// The record of an execution that starts now: nothing done yet, outcome running.
    pub(crate) fn started(id: Id, kind: ExecutionKind, revision: Option<Revision>, strategy: &str) -> Self {
        ExecutionRecord {
            schema_version: Self::SCHEMA_VERSION,
            id,
            kind,
            revision,
            strategy: strategy.to_owned(),
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
            analyses: vec![],
            managed: None,
            outcome: Outcome::Running,
            resumed_by: None,
        }
    }

    /// Closes every stage and step still open as cancelled at `now_ms`: what an interrupted
    /// execution's record says of the work it left.
    pub(crate) fn cancel_open(&mut self, now_ms: u64) {
        for s in self.stages.iter_mut().filter(|s| s.finished_ms.is_none()) {
            s.finished_ms = Some(now_ms);
            s.outcome = StageOutcome::Cancelled;
        }
        for s in self.steps.iter_mut().filter(|s| s.finished_ms.is_none()) {
            s.finished_ms = Some(now_ms);
            s.outcome = StepOutcome::Cancelled;
        }
    }

    /// The total time spent in `stage`.
    pub fn stage_duration_ms(&self, stage: Stage) -> u64 {
        self.stages.iter().filter(|s| s.stage == stage).filter_map(StageRecord::duration_ms).sum()
    }

    /// Whether every stage and step that started also ended, and the execution is over.
    pub fn is_complete(&self) -> bool {
        self.outcome.is_final()
            && self.duration_ms.is_some()
            && self.stages.iter().all(|s| s.finished_ms.is_some() && s.outcome != StageOutcome::Running)
            && self.steps.iter().all(|s| s.finished_ms.is_some() && s.outcome != StepOutcome::Started)
    }

    /// This execution's figures against `baseline`'s (typically the previous successful execution):
    /// stage durations, health-check latency and error rate, and, for each metric a canary analysis
    /// measured in both, the median the new revision showed at its first analysed step
    /// (`analysis <metric> at <phase>`).
    pub fn compare(&self, baseline: &ExecutionRecord) -> Vec<MetricComparison> {
        let mut out = vec![];
        for stage in [Stage::Build, Stage::Stack, Stage::Rollout, Stage::Verify, Stage::Traffic] {
            let (b, c) = (baseline.stage_duration_ms(stage), self.stage_duration_ms(stage));
            if b > 0 || c > 0 {
                out.push(MetricComparison::new(format!("{stage} duration (ms)"), b as f64, c as f64));
            }
        }
        let latency = |r: &ExecutionRecord| {
            let v: Vec<f64> = r.verifications.iter().map(|v| v.report.latency_p50_ms).collect();
            if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
        };
        let errors = |r: &ExecutionRecord| {
            let (p, f) =
                r.verifications.iter().fold((0u32, 0u32), |(p, f), v| (p + v.report.probes, f + v.report.failures));
            if p == 0 { 0.0 } else { f64::from(f) / f64::from(p) }
        };
        out.push(MetricComparison::new("health p50 latency (ms)".into(), latency(baseline), latency(self)));
        out.push(MetricComparison::new("health error rate".into(), errors(baseline), errors(self)));
        // The canary side of each record's first analysis: what its revision served under real traffic.
        if let (Some(b), Some(c)) = (baseline.analyses.first(), self.analyses.first()) {
            for m in &c.judgement.metrics {
                if let Some(bm) = b.judgement.metrics.iter().find(|bm| bm.measure == m.measure) {
                    out.push(MetricComparison::new(
                        format!("analysis {} at {}", m.measure, c.phase),
                        bm.canary.median,
                        m.canary.median,
                    ));
                }
            }
        }
        out
    }
}

/// One figure of an execution next to its baseline's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MetricComparison {
    /// What is measured.
    pub metric: String,
    /// The baseline's value.
    pub baseline: f64,
    /// This execution's value.
    pub current: f64,
    /// The relative change in percent (`None` when the baseline is zero).
    pub change_pct: Option<f64>,
}

impl MetricComparison {
    fn new(metric: String, baseline: f64, current: f64) -> Self {
        let change_pct = (baseline != 0.0).then(|| (current - baseline) * 100.0 / baseline);
        MetricComparison { metric, baseline, current, change_pct }
    }
}
