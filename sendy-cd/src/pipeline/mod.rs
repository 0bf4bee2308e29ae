//! The pipeline: source → build → stack → rollout → verification → traffic, under a strategy.
//!
//! A [`Pipeline`] composes a [`Builder`], one or more [`Environment`]s, a [`DnsSwitch`] and (for
//! [`Pipeline::watch`]) a [`Source`]. [`Pipeline::run`] deploys one revision and returns its
//! [`ExecutionRecord`]; a failing stage is not an `Err` but an [`Outcome::Failed`] in the record,
//! which also says what was undone ([`Recovery`](crate::Recovery)).
//!
//! # Strategies
//! - [`Strategy::AllAtOnce`]: update the live environment in place; no DNS change. A failure after the
//!   rollout started rolls the service back to the revision it ran before.
//! - [`Strategy::BlueGreen`] (the default): deploy and verify the idle environment (weight 0), move all
//!   weight to it in one change, wait until the change is applied and one TTL has passed, verify again.
//!   The previous environment is left untouched, for an instant [`Pipeline::switch_back`].
//! - [`Strategy::Canary`]: like blue/green, but the weight moves in steps, with a bake time and a
//!   verification at each.
//!
//! Any failure after traffic moved sends all weight back to the previous environment in one change;
//! a failure before traffic moved changes nothing users see.
//!
//! # Defaults
//! Stage deadlines ([`Deadlines::default`]): build 60 min, stack 60 min, rollout 30 min, verification
//! 10 min, traffic 15 min. Polling: [`PollPolicy::default`]; retries: [`RetryPolicy::default`]; health
//! check: [`HealthCheck::default`]; branch `main`; watch interval 30 s; canary 10 %, 50 %, 100 % with
//! a 5-minute bake.

mod builder;
mod config;
mod execution;
mod lease;

pub use builder::PipelineBuilder;
pub use config::{Canary, Deadlines, EcsManaged, Environment, EnvironmentBuilder, Strategy};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::builder::Builder;
use crate::deployer::DeployedRevision;
use crate::dns::DnsSwitch;
use crate::error::{Error, Result};
use crate::events::{EventHub, EventSink, EventStream};
use crate::model::{BranchName, CommitId, Revision, Stage, TrafficSplit};
use crate::record::{ExecutionKind, ExecutionRecord, Step};
use crate::source::Source;
use crate::store::Store;
use crate::verify::HealthCheck;
use crate::wait::{PollPolicy, RetryPolicy};
use execution::Direction;

pub(crate) struct Config {
    pub(crate) source: Option<Arc<dyn Source>>,
    pub(crate) branch: BranchName,
    pub(crate) builder: Arc<dyn Builder>,
    pub(crate) environments: Vec<Environment>,
    pub(crate) dns: Option<Arc<dyn DnsSwitch>>,
    /// Where a canary analysis reads metrics.
    pub(crate) metrics: Option<Arc<dyn crate::analysis::MetricSource>>,
    /// The alarms checked during every bake and analysis.
    pub(crate) alarms: Option<(Arc<dyn crate::analysis::AlarmSource>, crate::analysis::AlarmGate)>,
    pub(crate) strategy: Strategy,
    pub(crate) deadlines: Deadlines,
    pub(crate) poll: PollPolicy,
    pub(crate) retry: RetryPolicy,
    pub(crate) recovery_retry: RetryPolicy,
    pub(crate) health: HealthCheck,
    pub(crate) watch_interval: Duration,
    /// The pipeline id: what its records and lease are kept under in the store.
    pub(crate) name: String,
    pub(crate) store: Arc<dyn Store>,
    /// What records' times are read from (`PipelineBuilder::clock`).
    pub(crate) clock: Arc<dyn crate::store::Clock>,
    pub(crate) lease_ttl: Duration,
    /// How long to wait for another holder's lease; `None`: fail at once.
    pub(crate) lease_wait: Option<Duration>,
    pub(crate) resume_on_start: bool,
    pub(crate) resume_forward: bool,
}

/// How many executions a pipeline keeps in this process's memory (its store keeps them all).
const KEPT_IN_MEMORY: usize = 100;

pub(crate) struct Inner {
    pub(crate) cfg: Config,
    history: Mutex<Vec<ExecutionRecord>>,
    /// What the store holds of learned durations, read at the start of each execution.
    learned: Mutex<BTreeMap<Step, Vec<Duration>>>,
    /// `PipelineBuilder::expected_duration`: what paces polling before anything was learned.
    hints: BTreeMap<Step, Duration>,
    pub(crate) events: EventHub,
    pub(crate) counter: AtomicU64,
    /// Writes a dropped execution left to tasks (its record, its lease's release): the next
    /// execution waits for them before it takes the lease.
    pub(crate) pending: Pending,
    /// The running execution's own cancellation (a child of its caller's): what
    /// [`Pipeline::cancel_running`] cancels.
    pub(crate) running: Mutex<Option<CancellationToken>>,
}

/// Tasks a dropped execution left behind.
pub(crate) type Pending = Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>;

impl Inner {
    pub(crate) fn history(&self) -> MutexGuard<'_, Vec<ExecutionRecord>> {
        self.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `record` in this process's memory, dropping the oldest finished ones beyond the cap.
    pub(crate) fn remember(&self, record: ExecutionRecord) {
        let mut history = self.history();
        history.push(record);
        while history.len() > KEPT_IN_MEMORY {
            match history.iter().position(|r| r.outcome.is_final()) {
                Some(oldest) => history.remove(oldest),
                None => break,
            };
        }
    }

    /// The usual duration of a wait step: the median of the last five that succeeded (as the store
    /// has them), else the builder's hint.
    pub(crate) fn expected(&self, step: Step) -> Option<Duration> {
        let learned = self.learned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match learned.get(&step).filter(|seen| !seen.is_empty()) {
            Some(seen) => {
                let mut seen = seen.clone();
                seen.sort();
                seen.get(seen.len() / 2).copied()
            }
            None => self.hints.get(&step).copied(),
        }
    }

    /// Reads what the store learned (at the start of an execution: another process may have added).
    pub(crate) async fn refresh_learned(&self) {
        match self.cfg.store.durations(&self.cfg.name).await {
            Ok(d) => *self.learned.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = d,
            Err(e) => tracing::warn!(error = %e, "could not read the learned durations; keeping the ones known"),
        }
    }

    pub(crate) async fn learn(&self, step: Step, took: Duration) {
        {
            let mut learned = self.learned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let seen = learned.entry(step).or_default();
            seen.push(took);
            if seen.len() > crate::store::LEARNED {
                seen.remove(0);
            }
        }
        if let Err(e) = self.cfg.store.learn(&self.cfg.name, step, took).await {
            tracing::warn!(error = %e, "could not store a learned duration");
        }
    }

    /// The image an execution of the pipeline built from `commit` (the newest), and its revision.
    pub(crate) async fn built(&self, commit: &CommitId) -> Result<Option<(Option<Revision>, crate::BuiltImage)>> {
        let found = self.cfg.store.built(&self.cfg.name, commit).await?;
        Ok(found.and_then(|r| Some((r.revision, r.image.filter(|i| &i.commit == commit)?))))
    }

    /// The pipeline's executions, newest first, from the store (every process's), at most `limit`.
    pub(crate) async fn stored_history(&self, limit: usize) -> Result<Vec<ExecutionRecord>> {
        let mut out = vec![];
        let mut before = None;
        while out.len() < limit {
            let page = self.cfg.store.history(&self.cfg.name, (limit - out.len()).min(100), before).await?;
            out.extend(page.records);
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        Ok(out)
    }
}

/// Composes the backends into a deployment pipeline. Cheap to clone: clones share history and events.
///
/// # Example
/// ```
/// use sendy_cd::{Outcome, Pipeline, memory::Account};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> sendy_cd::Result<()> {
/// let account = Account::new();
/// account.create_environment("blue")?;
/// account.create_environment("green")?;
/// let pipeline = Pipeline::builder()
///     .image_builder(account.image_builder())
///     .environment(account.environment("blue")?)
///     .environment(account.environment("green")?)
///     .dns(account.dns())
///     .build()?;
/// let revision = account.push("main", "First feature", "Ada")?;
/// let record = pipeline.run(revision).await?;
/// assert_eq!(record.outcome, Outcome::Succeeded);
/// assert_eq!(record.target.unwrap().as_str(), "green");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pipeline {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("strategy", &self.inner.cfg.strategy)
            .field("environments", &self.inner.cfg.environments)
            .finish_non_exhaustive()
    }
}

/// How many of the newest executions `redeploy`, `switch_back` and `watch` look through.
const SEARCHED: usize = 1000;

impl Pipeline {
    /// Deploys `revision` with the pipeline's strategy and returns its record.
    ///
    /// A stage that fails is reported in the record ([`Outcome::Failed`]), not as an `Err`.
    ///
    /// # Errors
    /// [`Error::LeaseHeld`] if another execution of this pipeline id is running, in this process or any
    /// other sharing its store (deployments never overlap; see
    /// [`wait_for_lease`](PipelineBuilder::wait_for_lease)); an error of the store if it cannot be
    /// written (nothing was sent to AWS then).
    ///
    /// # Cancellation
    /// Dropping the future interrupts the execution where it is, as a crash would: when it owes an
    /// undo (traffic moved, the live service may have changed, a build is under way) its record stays
    /// unfinished and the pipeline's next execution settles it first ([`resume`](Self::resume));
    /// otherwise it is closed as cancelled. To cancel *and* undo at once (stop the build, send traffic
    /// back), use [`run_until_cancelled`](Self::run_until_cancelled).
    pub async fn run(&self, revision: Revision) -> Result<ExecutionRecord> {
        self.run_until_cancelled(revision, &CancellationToken::new()).await
    }

    /// Like [`run`](Self::run), but when `cancel` is cancelled the execution stops at once, undoes
    /// what users would see (stops the build, sends traffic back) and returns a record whose outcome is
    /// [`Outcome::Cancelled`].
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn run_until_cancelled(&self, revision: Revision, cancel: &CancellationToken) -> Result<ExecutionRecord> {
        let lease = lease::LeaseGuard::acquire(&self.inner, "run").await?;
        let record = match self.resume_on_start(&lease, Direction::ForwardIf(&revision.commit)).await {
            Ok(Some(resumed)) => Ok(resumed),
            Ok(None) => match self.built(&revision.commit).await {
                // The commit was built before: its image is deployed again, never built twice.
                Ok(prebuilt) => {
                    let (inner, kind) = (&self.inner, ExecutionKind::Deploy);
                    execution::execute(inner, &lease, kind, Some(revision), prebuilt, None, cancel.clone()).await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        lease.release().await;
        record
    }

    /// Deploys again an image that an earlier execution of this pipeline built from `commit` (a manual
    /// rollback to an earlier revision), without building, with the pipeline's strategy.
    ///
    /// Redeploying the image the live environment runs already changes nothing (the record says
    /// succeeded, with that environment as its target): calling it twice ends where calling it once did.
    ///
    /// # Errors
    /// [`Error::NotFound`] if no execution built `commit`; [`Error::LeaseHeld`] as for [`run`](Self::run).
    pub async fn redeploy(&self, commit: &CommitId) -> Result<ExecutionRecord> {
        let lease = lease::LeaseGuard::acquire(&self.inner, "redeploy").await?;
        let record = match self.resume_on_start(&lease, Direction::ForwardIf(commit)).await {
            Ok(Some(resumed)) => Ok(resumed),
            Ok(None) => self.redeploy_under(&lease, commit).await,
            Err(e) => Err(e),
        };
        lease.release().await;
        record
    }

    /// The image an earlier execution of the pipeline built from `commit`, if one did.
    async fn built(&self, commit: &CommitId) -> Result<Option<crate::BuiltImage>> {
        Ok(self.inner.built(commit).await?.map(|(_, image)| image))
    }

    async fn redeploy_under(&self, lease: &lease::LeaseGuard, commit: &CommitId) -> Result<ExecutionRecord> {
        let (revision, image) = self
            .inner
            .built(commit)
            .await?
            .ok_or_else(|| Error::NotFound { kind: "built revision", id: commit.to_string().into() })?;
        let cancel = CancellationToken::new();
        execution::execute(&self.inner, lease, ExecutionKind::Redeploy, revision, Some(image), None, cancel).await
    }

    /// Sends all traffic back to the environment the newest deployment moved it from (a manual
    /// rollback), after checking that environment still runs the revision it ran then and that it is
    /// healthy. Needs a DNS switch.
    ///
    /// The environment is never guessed: it is the one the newest deployment or redeployment that
    /// moved traffic (succeeded, failed, cancelled or abandoned) took it from, as this pipeline's
    /// history records it. Switching back twice ends where switching back once did: traffic already
    /// all on that environment stays there (it is verified again).
    ///
    /// # Errors
    /// - [`Error::InvalidConfig`] without a DNS switch;
    /// - [`Error::NotFound`] when the history holds no deployment that moved traffic (a new pipeline),
    ///   so the environment to return to cannot be known;
    /// - [`Error::Conflict`] when that environment no longer runs the revision it ran then (something
    ///   was deployed to it since), or as for [`run`](Self::run). Nothing is changed in either case.
    pub async fn switch_back(&self) -> Result<ExecutionRecord> {
        if self.inner.cfg.dns.is_none() {
            return Err(Error::InvalidConfig("switch_back needs a DNS switch".into()));
        }
        let lease = lease::LeaseGuard::acquire(&self.inner, "switch_back").await?;
        // Going back: an execution left unfinished is settled backward, never finished first.
        if self.inner.cfg.resume_on_start {
            execution::resume(&self.inner, &lease, Direction::Backward).await?;
        }
        let record = self.switch_back_under(&lease).await;
        lease.release().await;
        record
    }

    async fn switch_back_under(&self, lease: &lease::LeaseGuard) -> Result<ExecutionRecord> {
        let (to, expected) = self.switch_back_target().await?;
        let env = &self.inner.cfg.environments[to];
        let (revisions, _) = self.inner.cfg.retry.retry("read revisions", || env.deployer.revisions()).await?;
        match revisions.current {
            Some(now) if now.revision == expected.revision && now.image == expected.image => {}
            now => {
                return Err(Error::Conflict(
                    (format!(
                        "switch_back to {}: it ran {} ({}) when it last had the traffic, and runs {} now; \
                     not sending traffic to a revision that was not verified (redeploy instead)",
                        env.name,
                        expected.revision,
                        expected.image,
                        now.map_or_else(|| "nothing".to_owned(), |n| format!("{} ({})", n.revision, n.image)),
                    ))
                    .into(),
                ));
            }
        }
        let cancel = CancellationToken::new();
        execution::execute(&self.inner, lease, ExecutionKind::SwitchBack, None, None, Some(to), cancel).await
    }

    /// The environment [`switch_back`](Self::switch_back) returns to, and the revision it must run,
    /// from the store's history (so it works in a new process).
    async fn switch_back_target(&self) -> Result<(usize, DeployedRevision)> {
        let history = self.inner.stored_history(SEARCHED).await?;
        let moved_traffic =
            |r: &ExecutionRecord| r.steps.iter().any(|s| s.step == Step::SetWeights && s.stage == Stage::Traffic);
        let unknown = |why: &str| Error::NotFound {
            kind: "environment to switch back to",
            id: (format!("{why}; switch_back never guesses")).into(),
        };
        let last = history
            .iter()
            .find(|r| matches!(r.kind, ExecutionKind::Deploy | ExecutionKind::Redeploy) && moved_traffic(r))
            .ok_or_else(|| unknown("no deployment of this pipeline moved traffic"))?;
        let name =
            last.previous.as_ref().ok_or_else(|| unknown("the newest deployment names no previous environment"))?;
        let revision = last
            .live_revision
            .clone()
            .ok_or_else(|| unknown("the newest deployment did not record what the previous environment ran"))?;
        let to = self
            .inner
            .cfg
            .environments
            .iter()
            .position(|e| &e.name == name)
            .ok_or_else(|| unknown(&format!("environment {name} is not one of this pipeline's")))?;
        Ok((to, revision))
    }

    /// Polls the source every watch interval and deploys each new revision of the branch once, one at
    /// a time, until `cancel` is cancelled (an execution under way is then cancelled and undone).
    /// Returns the records of the executions it ran.
    ///
    /// A revision is deployed at most once, whatever its outcome; a revision the live environment
    /// already runs (its image is tagged with the commit id) is not deployed. A source that cannot be
    /// read is retried at the next tick.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the pipeline has no source; [`Error::LeaseHeld`] as for [`run`](Self::run).
    pub async fn watch(&self, cancel: &CancellationToken) -> Result<Vec<ExecutionRecord>> {
        let lease = lease::LeaseGuard::acquire(&self.inner, "watch").await?;
        self.resume_on_start(&lease, Direction::Forward).await?;
        let records = execution::watch(&self.inner, &lease, cancel).await;
        lease.release().await;
        records
    }

    /// Settles every execution of this pipeline that a process left unfinished (it was killed, crashed,
    /// or lost its lease), as its journal in the store says it stood, and returns their records.
    ///
    /// What users could see is undone through the handles the journal holds, never by doing a step
    /// again: weights that had moved go back to the environment that had the traffic (the one that
    /// last passed verification), after reading what they are now; an all-at-once service that may
    /// have changed waits for the stack update it was in and goes back to the revision it ran; an
    /// orphaned build is stopped. Each record then says [`Outcome::Interrupted`], what was undone,
    /// and `resumed_by` (this process, and the steps it found open).
    ///
    /// [`run`](Self::run), [`watch`](Self::watch), [`switch_back`](Self::switch_back) and
    /// [`redeploy`](Self::redeploy) do this first, under their lease (see
    /// [`PipelineBuilder::resume_on_start`]); so is an execution whose future was dropped while it
    /// owed an undo settled.
    ///
    /// # Errors
    /// [`Error::LeaseHeld`] while the process that ran them still holds the pipeline's lease (it may
    /// be running; its lease expires within [`lease_time`](PipelineBuilder::lease_time) of its death);
    /// an error of the store.
    pub async fn resume(&self) -> Result<Vec<ExecutionRecord>> {
        let lease = lease::LeaseGuard::acquire(&self.inner, "resume").await?;
        let settled = execution::resume(&self.inner, &lease, self.direction(Direction::Forward)).await;
        lease.release().await;
        settled
    }

    /// Settles what was left unfinished, if the pipeline does that on start; returns a deployment of
    /// `commit` it resumed forward (that run or redeploy is then over: it is not done twice).
    async fn resume_on_start(
        &self,
        lease: &lease::LeaseGuard,
        direction: Direction<'_>,
    ) -> Result<Option<ExecutionRecord>> {
        if !self.inner.cfg.resume_on_start {
            return Ok(None);
        }
        let settled = execution::resume(&self.inner, lease, self.direction(direction)).await?;
        let Direction::ForwardIf(commit) = direction else { return Ok(None) };
        Ok(settled.into_iter().rev().find(|r| {
            r.revision.as_ref().is_some_and(|r| &r.commit == commit)
                && !matches!(r.outcome, crate::record::Outcome::Interrupted { .. })
        }))
    }

    /// `direction`, unless the pipeline resumes backward only.
    fn direction<'a>(&self, direction: Direction<'a>) -> Direction<'a> {
        if self.inner.cfg.resume_forward { direction } else { Direction::Backward }
    }

    /// The executions this process ran (the newest 100), oldest first, the running one included. For
    /// every process's, read the store: [`executions`](Self::executions).
    pub fn history(&self) -> Vec<ExecutionRecord> {
        self.inner.history().clone()
    }

    /// The pipeline's executions as its store has them (every process's), newest first, at most
    /// `limit`.
    ///
    /// # Errors
    /// As the store's [`history`](Store::history).
    pub async fn executions(&self, limit: usize) -> Result<Vec<ExecutionRecord>> {
        self.inner.stored_history(limit).await
    }

    /// The pipeline id its records and lease are kept under.
    pub fn name(&self) -> &str {
        &self.inner.cfg.name
    }

    /// The newest execution.
    pub fn last_record(&self) -> Option<ExecutionRecord> {
        self.inner.history().last().cloned()
    }

    /// A stream of every event from now on.
    pub fn subscribe(&self) -> EventStream {
        self.inner.events.subscribe()
    }

    /// Adds a sink that receives every event from now on.
    pub fn add_sink(&self, sink: Arc<dyn EventSink>) {
        self.inner.events.add_sink(sink);
    }

    /// The environments, in the order given.
    pub fn environments(&self) -> &[Environment] {
        &self.inner.cfg.environments
    }

    /// The strategy.
    pub fn strategy(&self) -> &Strategy {
        &self.inner.cfg.strategy
    }

    /// The store its executions are kept in.
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.inner.cfg.store)
    }

    /// The DNS weights now, if the pipeline has a DNS switch.
    ///
    /// # Errors
    /// The DNS switch's errors.
    pub async fn weights(&self) -> Result<Option<TrafficSplit>> {
        match &self.inner.cfg.dns {
            Some(dns) => Ok(Some(dns.weights().await?)),
            None => Ok(None),
        }
    }

    /// Cancels the execution this process is running for the pipeline, if any (its undoing runs as
    /// for any cancellation); `false` when none runs.
    pub fn cancel_running(&self) -> bool {
        let running = self.inner.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        match running {
            Some(token) if !token.is_cancelled() => {
                token.cancel();
                true
            }
            _ => false,
        }
    }
}
