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

mod config;
mod execution;

pub use config::{Canary, Deadlines, Environment, EnvironmentBuilder, Strategy};

use std::collections::{BTreeMap, BTreeSet};
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
use crate::model::{BranchName, CommitId, Revision, Stage};
use crate::record::{ExecutionKind, ExecutionRecord, Step};
use crate::shared::Shared;
use crate::source::Source;
use crate::verify::HealthCheck;
use crate::wait::{PollPolicy, RetryPolicy};

pub(crate) struct Config {
    pub(crate) source: Option<Arc<dyn Source>>,
    pub(crate) branch: BranchName,
    pub(crate) builder: Arc<dyn Builder>,
    pub(crate) environments: Vec<Environment>,
    pub(crate) dns: Option<Arc<dyn DnsSwitch>>,
    pub(crate) strategy: Strategy,
    pub(crate) deadlines: Deadlines,
    pub(crate) poll: PollPolicy,
    pub(crate) retry: RetryPolicy,
    pub(crate) recovery_retry: RetryPolicy,
    pub(crate) health: HealthCheck,
    pub(crate) watch_interval: Duration,
}

pub(crate) struct Inner {
    pub(crate) cfg: Config,
    running: tokio::sync::Mutex<()>,
    history: Mutex<Vec<ExecutionRecord>>,
    learned: Mutex<BTreeMap<Step, Vec<Duration>>>,
    pub(crate) events: EventHub,
    pub(crate) counter: AtomicU64,
}

impl Inner {
    pub(crate) fn history(&self) -> MutexGuard<'_, Vec<ExecutionRecord>> {
        self.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The usual duration of a wait step: the median of the last five that succeeded.
    pub(crate) fn expected(&self, step: Step) -> Option<Duration> {
        let learned = self.learned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut seen = learned.get(&step)?.clone();
        seen.sort();
        seen.get(seen.len() / 2).copied()
    }

    pub(crate) fn learn(&self, step: Step, took: Duration) {
        let mut learned = self.learned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen = learned.entry(step).or_default();
        seen.push(took);
        if seen.len() > 5 {
            seen.remove(0);
        }
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

/// Describes a [`Pipeline`]; validated by [`build`](PipelineBuilder::build). Defaults are listed in the
/// [module docs](self).
#[must_use]
pub struct PipelineBuilder {
    source: Option<Arc<dyn Source>>,
    branch: String,
    builder: Option<Arc<dyn Builder>>,
    environments: Vec<Environment>,
    dns: Option<Arc<dyn DnsSwitch>>,
    strategy: Strategy,
    deadlines: Deadlines,
    poll: PollPolicy,
    retry: RetryPolicy,
    health: HealthCheck,
    expected: BTreeMap<Stage, Duration>,
    sinks: Vec<Arc<dyn EventSink>>,
    watch_interval: Duration,
    seed: Option<u64>,
}

impl Pipeline {
    /// Starts describing a pipeline.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder {
            source: None,
            branch: "main".into(),
            builder: None,
            environments: vec![],
            dns: None,
            strategy: Strategy::default(),
            deadlines: Deadlines::default(),
            poll: PollPolicy::default(),
            retry: RetryPolicy::default(),
            health: HealthCheck::default(),
            expected: BTreeMap::new(),
            sinks: vec![],
            watch_interval: Duration::from_secs(30),
            seed: None,
        }
    }

    /// Deploys `revision` with the pipeline's strategy and returns its record.
    ///
    /// A stage that fails is reported in the record ([`Outcome::Failed`]), not as an `Err`.
    ///
    /// # Errors
    /// [`Error::Conflict`] if another execution of this pipeline is running (deployments never overlap).
    ///
    /// # Cancellation
    /// Dropping the future abandons the execution where it is: its record (in [`history`](Self::history))
    /// is closed as cancelled, but nothing is undone. To cancel *and* undo (stop the build, send traffic
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
        let _running = self.lock()?;
        execution::execute(&self.inner, ExecutionKind::Deploy, Some(revision), None, None, cancel.clone()).await
    }

    /// Deploys again an image that an earlier execution of this pipeline built from `commit` (a manual
    /// rollback to an earlier revision), without building, with the pipeline's strategy.
    ///
    /// Redeploying the image the live environment runs already changes nothing (the record says
    /// succeeded, with that environment as its target): calling it twice ends where calling it once did.
    ///
    /// # Errors
    /// [`Error::NotFound`] if no execution built `commit`; [`Error::Conflict`] as for [`run`](Self::run).
    pub async fn redeploy(&self, commit: &CommitId) -> Result<ExecutionRecord> {
        let _running = self.lock()?;
        let (revision, image) = self
            .inner
            .history()
            .iter()
            .rev()
            .find_map(|r| {
                let image = r.image.as_ref().filter(|i| &i.commit == commit)?;
                Some((r.revision.clone(), image.clone()))
            })
            .ok_or_else(|| Error::NotFound { kind: "built revision", id: commit.to_string().into() })?;
        execution::execute(&self.inner, ExecutionKind::Redeploy, revision, Some(image), None, CancellationToken::new())
            .await
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
        let _running = self.lock()?;
        if self.inner.cfg.dns.is_none() {
            return Err(Error::InvalidConfig("switch_back needs a DNS switch".into()));
        }
        let (to, expected) = self.switch_back_target()?;
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
        execution::execute(&self.inner, ExecutionKind::SwitchBack, None, None, Some(to), CancellationToken::new()).await
    }

    /// The environment [`switch_back`](Self::switch_back) returns to, and the revision it must run.
    fn switch_back_target(&self) -> Result<(usize, DeployedRevision)> {
        let history = self.inner.history();
        let moved_traffic =
            |r: &ExecutionRecord| r.steps.iter().any(|s| s.step == Step::SetWeights && s.stage == Stage::Traffic);
        let unknown = |why: &str| Error::NotFound {
            kind: "environment to switch back to",
            id: (format!("{why}; switch_back never guesses")).into(),
        };
        let last = history
            .iter()
            .rev()
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
    /// [`Error::InvalidConfig`] if the pipeline has no source; [`Error::Conflict`] as for [`run`](Self::run).
    pub async fn watch(&self, cancel: &CancellationToken) -> Result<Vec<ExecutionRecord>> {
        let _running = self.lock()?;
        execution::watch(&self.inner, cancel).await
    }

    /// Every execution so far, oldest first, the running one included.
    pub fn history(&self) -> Vec<ExecutionRecord> {
        self.inner.history().clone()
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

    fn lock(&self) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        self.inner
            .running
            .try_lock()
            .map_err(|_| Error::Conflict("an execution of this pipeline is already running".into()))
    }
}

impl PipelineBuilder {
    /// The source [`watch`](Pipeline::watch) polls (the source itself, or an `Arc` of it: see [`Shared`]).
    pub fn source(mut self, source: impl Shared<dyn Source>) -> Self {
        self.source = Some(source.into_shared());
        self
    }

    /// The branch [`watch`](Pipeline::watch) follows. Default `main`.
    pub fn branch(mut self, branch: &str) -> Self {
        self.branch = branch.to_owned();
        self
    }

    /// The image builder, a [`Builder`] (required).
    pub fn image_builder(mut self, builder: impl Shared<dyn Builder>) -> Self {
        self.builder = Some(builder.into_shared());
        self
    }

    /// The old name of [`image_builder`](Self::image_builder).
    #[deprecated(since = "0.1.0", note = "renamed image_builder: `Pipeline::builder().builder(..)` read as a stutter")]
    pub fn builder(self, builder: Arc<dyn Builder>) -> Self {
        self.image_builder(builder)
    }

    /// Adds an environment (at least one; two for blue/green and canary).
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environments.push(environment);
        self
    }

    /// The DNS switch (required for blue/green and canary).
    pub fn dns(mut self, dns: impl Shared<dyn DnsSwitch>) -> Self {
        self.dns = Some(dns.into_shared());
        self
    }

    /// The strategy. Default [`Strategy::BlueGreen`].
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The stage deadlines. Default [`Deadlines::default`].
    pub fn deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = deadlines;
        self
    }

    /// How status is polled. Default [`PollPolicy::default`].
    pub fn poll_policy(mut self, poll: PollPolicy) -> Self {
        self.poll = poll;
        self
    }

    /// How single calls are retried. Default [`RetryPolicy::default`]. Undoing a failure (sending
    /// traffic back, rolling a service back) retries twice as many times.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Seeds every random choice the pipeline makes (the jitter of polling and of retries), so that
    /// the same inputs give the same record: on the simulated account with the same
    /// [`SimConfig::seed`](crate::memory::SimConfig::seed), the same stages, steps, durations and
    /// outcome (wall-clock timestamps aside). Default: fresh randomness. Overrides the seeds of the
    /// policies given.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How environments are checked. Default [`HealthCheck::default`].
    pub fn health_check(mut self, health: HealthCheck) -> Self {
        self.health = health;
        self
    }

    /// How long `stage` usually takes, to pace polling before the pipeline has learned it from its own
    /// runs (see [`wait`](crate::wait)). Applies to [`Stage::Build`], [`Stage::Stack`],
    /// [`Stage::Rollout`] and [`Stage::Traffic`] (the time a DNS change takes to be applied).
    pub fn expected_duration(mut self, stage: Stage, duration: Duration) -> Self {
        self.expected.insert(stage, duration);
        self
    }

    /// Adds an event sink.
    pub fn sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// How often [`watch`](Pipeline::watch) polls the source. Default 30 s.
    pub fn watch_interval(mut self, interval: Duration) -> Self {
        self.watch_interval = interval;
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a missing builder or environment, blue/green or canary without a
    /// DNS switch or with fewer than two environments, two environments with the same name or set
    /// identifier, several environments under all-at-once without a DNS switch, canary steps that are
    /// not strictly increasing up to 100, a zero deadline or watch interval, or an invalid policy or
    /// health check; [`Error::InvalidInput`] for a malformed branch.
    pub fn build(mut self) -> Result<Pipeline> {
        if let Some(seed) = self.seed {
            self.poll.seed = Some(seed);
            self.retry.seed = Some(seed);
        }
        let bad = |m: String| Err(Error::InvalidConfig(m));
        let branch = BranchName::parse(self.branch)?;
        let Some(builder) = self.builder else { return bad("a pipeline needs a builder".into()) };
        if self.environments.is_empty() {
            return bad("a pipeline needs at least one environment".into());
        }
        let names: BTreeSet<_> = self.environments.iter().map(|e| &e.name).collect();
        let targets: BTreeSet<_> = self.environments.iter().map(|e| &e.dns_target).collect();
        if names.len() != self.environments.len() || targets.len() != self.environments.len() {
            return bad("environment names and DNS set identifiers must be unique".into());
        }
        match &self.strategy {
            Strategy::AllAtOnce => {
                if self.dns.is_none() && self.environments.len() > 1 {
                    return bad("all-at-once with several environments needs a DNS switch to tell the live one".into());
                }
            }
            Strategy::BlueGreen | Strategy::Canary(_) => {
                if self.dns.is_none() || self.environments.len() < 2 {
                    return bad(format!("{} needs a DNS switch and at least two environments", self.strategy.name()));
                }
            }
        }
        if let Strategy::Canary(c) = &self.strategy {
            c.validate()?;
        }
        let d = &self.deadlines;
        if [d.build, d.stack, d.rollout, d.verify, d.traffic, self.watch_interval].iter().any(Duration::is_zero) {
            return bad("deadlines and the watch interval must be positive".into());
        }
        self.poll.validate()?;
        self.health.validate()?;
        self.retry.validate()?;
        let recovery_retry =
            RetryPolicy { max_attempts: self.retry.max_attempts.saturating_mul(2), ..self.retry.clone() };
        let inner = Inner {
            cfg: Config {
                source: self.source,
                branch,
                builder,
                environments: self.environments,
                dns: self.dns,
                strategy: self.strategy,
                deadlines: self.deadlines,
                poll: self.poll,
                retry: self.retry,
                recovery_retry,
                health: self.health,
                watch_interval: self.watch_interval,
            },
            running: tokio::sync::Mutex::new(()),
            history: Mutex::new(vec![]),
            learned: Mutex::new(BTreeMap::new()),
            events: EventHub::default(),
            counter: AtomicU64::new(0),
        };
        for (stage, step) in [
            (Stage::Build, Step::WaitBuild),
            (Stage::Stack, Step::WaitStack),
            (Stage::Rollout, Step::WaitRollout),
            (Stage::Traffic, Step::WaitDnsChange),
        ] {
            if let Some(d) = self.expected.get(&stage) {
                inner.learn(step, *d);
            }
        }
        for sink in self.sinks {
            inner.events.add_sink(sink);
        }
        Ok(Pipeline { inner: Arc::new(inner) })
    }
}
