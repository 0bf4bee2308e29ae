//! Typed events every stage emits, to any number of subscribers.
//!
//! A pipeline sends each [`Event`] to every [`EventSink`] given to it, to every
//! [`EventStream`] from [`Pipeline::subscribe`](crate::Pipeline::subscribe) (unbounded: a slow reader
//! loses nothing), and to `tracing` (target `sendy_cd::events`). [`JsonLinesSink`] writes them to a file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::model::{EnvironmentName, Id, Revision, Stage, TrafficSplit};
use crate::record::{Outcome, StageOutcome, Step, StepOutcome};

/// Something that happened during an execution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// The execution it belongs to.
    pub execution: Id,
    /// Time since the execution started, on tokio's clock (simulated time under a paused clock).
    pub elapsed_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// An execution started.
    ExecutionStarted {
        /// The revision being deployed (none for a switch back).
        revision: Option<Revision>,
        /// The strategy, by name.
        strategy: String,
    },
    /// A stage started.
    StageStarted {
        /// The stage.
        stage: Stage,
        /// The environment it works on, if any.
        environment: Option<EnvironmentName>,
    },
    /// A stage of a followed CodePipeline execution started
    /// ([`CodePipelines::follow`](crate::codepipeline::CodePipelines::follow)), by its name in the pipeline.
    PipelineStageStarted {
        /// The CodePipeline stage's name (`Source`, `Build`, `Deploy`, or any other).
        name: String,
    },
    /// A stage of a followed CodePipeline execution changed status.
    PipelineStageProgress {
        /// The CodePipeline stage's name.
        name: String,
        /// Its status as CodePipeline reports it (`InProgress`, `Stopping`, ...).
        status: String,
    },
    /// A stage of a followed CodePipeline execution ended.
    PipelineStageFinished {
        /// The CodePipeline stage's name.
        name: String,
        /// How long it ran, from the earliest start to the latest end of its actions as CodePipeline
        /// reports them (`None` when it gave no start time).
        duration_ms: Option<u64>,
        /// How it ended.
        outcome: StageOutcome,
    },
    /// A stage made progress (a build phase, tasks started, a change pending).
    StageProgress {
        /// The stage.
        stage: Stage,
        /// What changed.
        message: String,
    },
    /// A stage ended.
    StageFinished {
        /// The stage.
        stage: Stage,
        /// The environment it worked on, if any.
        environment: Option<EnvironmentName>,
        /// How long it took.
        duration_ms: u64,
        /// How it ended.
        outcome: StageOutcome,
    },
    /// A step is about to make its AWS-facing call (recorded before the call).
    StepStarted {
        /// The step.
        step: Step,
        /// Its stage.
        stage: Stage,
    },
    /// A step's call returned (recorded after the call).
    StepFinished {
        /// The step.
        step: Step,
        /// Its stage.
        stage: Stage,
        /// How it ended, with the handle it produced (a build id, plan id, deployment id, change id).
        outcome: StepOutcome,
    },
    /// A canary step's analysis judged one more interval.
    AnalysisJudged {
        /// The environment judged (the canary).
        environment: EnvironmentName,
        /// When in the execution: `canary 10%`, ...
        phase: String,
        /// Intervals judged so far.
        intervals: u32,
        /// The score so far, 0 to 100.
        score: f64,
        /// The verdict, once known.
        verdict: Option<crate::analysis::Verdict>,
    },
    /// An ECS-managed deployment entered a lifecycle stage.
    ManagedStage {
        /// The environment deployed to.
        environment: EnvironmentName,
        /// The service deployment.
        deployment: crate::model::Id,
        /// The stage it entered.
        stage: crate::deployer::LifecycleStage,
        /// The new revision's share of production traffic then, in percent, if known.
        production_percent: Option<f64>,
    },
    /// A paused hook of an ECS-managed deployment was told `CONTINUE` or `ROLLBACK`.
    HookDecided {
        /// The environment deployed to.
        environment: EnvironmentName,
        /// The stage the hook held.
        stage: crate::deployer::LifecycleStage,
        /// The new revision's share of production traffic then, in percent.
        production_percent: u8,
        /// What it was told.
        action: crate::deployer::HookAction,
        /// The check that decided.
        because: String,
    },
    /// DNS weights were changed.
    TrafficShifted {
        /// The new weights.
        weights: TrafficSplit,
    },
    /// The execution ended.
    ExecutionFinished {
        /// How.
        outcome: Outcome,
        /// How long it took.
        duration_ms: u64,
    },
}

/// Receives every event, synchronously, in order. Implementations must be quick and must not panic.
pub trait EventSink: Send + Sync {
    /// Called once per event.
    fn on_event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> EventSink for F {
    fn on_event(&self, event: &Event) {
        self(event);
    }
}

/// Events as they happen, from [`Pipeline::subscribe`](crate::Pipeline::subscribe). Unbounded: nothing
/// is dropped however slowly it is read.
#[derive(Debug)]
pub struct EventStream(mpsc::UnboundedReceiver<Event>);

impl EventStream {
    /// The next event; `None` once the pipeline is dropped.
    pub async fn recv(&mut self) -> Option<Event> {
        self.0.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.0.try_recv().ok()
    }
}

/// Fans events out to sinks, streams and tracing.
#[derive(Default)]
pub(crate) struct EventHub {
    sinks: Mutex<Vec<Arc<dyn EventSink>>>,
    streams: Mutex<Vec<mpsc::UnboundedSender<Event>>>,
}

impl EventHub {
    pub(crate) fn add_sink(&self, sink: Arc<dyn EventSink>) {
        self.sinks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(sink);
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        let (tx, rx) = mpsc::unbounded_channel();
        self.streams.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(tx);
        EventStream(rx)
    }

    pub(crate) fn publish(&self, event: &Event) {
        match &event.kind {
            EventKind::StageFinished { outcome: StageOutcome::Failed { reason }, stage, .. } => {
                tracing::warn!(target: "sendy_cd::events", execution = %event.execution, %stage, %reason, "stage failed");
            }
            EventKind::StepStarted { .. } | EventKind::StepFinished { .. } => {
                tracing::debug!(target: "sendy_cd::events", execution = %event.execution, elapsed_ms = event.elapsed_ms, event = ?event.kind);
            }
            _ => {
                tracing::info!(target: "sendy_cd::events", execution = %event.execution, elapsed_ms = event.elapsed_ms, event = ?event.kind)
            }
        }
        let sinks = self.sinks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for sink in sinks {
            sink.on_event(event);
        }
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|tx| tx.send(event.clone()).is_ok());
    }
}

/// Writes each event as one JSON object per line, flushed at once.
///
/// ```
/// use std::sync::Arc;
/// let path = std::env::temp_dir().join("sendy-cd-doc-events.jsonl");
/// let sink = sendy_cd::JsonLinesSink::create(&path).unwrap();
/// # let _: Arc<dyn sendy_cd::EventSink> = Arc::new(sink);
/// ```
#[derive(Debug)]
pub struct JsonLinesSink {
    out: Mutex<BufWriter<File>>,
}

impl JsonLinesSink {
    /// Creates (or truncates) the file at `path`.
    ///
    /// # Errors
    /// The I/O error of creating it.
    pub fn create(path: impl AsRef<Path>) -> std::io::Result<Self> {
        Ok(JsonLinesSink { out: Mutex::new(BufWriter::new(File::create(path)?)) })
    }

    /// Appends to the file at `path`, creating it if needed.
    ///
    /// # Errors
    /// The I/O error of opening it.
    pub fn append(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(JsonLinesSink { out: Mutex::new(BufWriter::new(file)) })
    }
}

impl EventSink for JsonLinesSink {
    fn on_event(&self, event: &Event) {
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let written = serde_json::to_writer(&mut *out, event)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        if let Err(e) = written {
            tracing::error!(error = %e, "could not write an event to the JSON-lines file");
        }
    }
}
