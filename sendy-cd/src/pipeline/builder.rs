//! [`PipelineBuilder`]: what a pipeline is made of, validated by `build()`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Config, Deadlines, Environment, Inner, Pending, Pipeline, Strategy};
use crate::builder::Builder;
use crate::dns::DnsSwitch;
use crate::error::{Error, Result};
use crate::events::{EventHub, EventSink};
use crate::model::{BranchName, Stage};
use crate::record::Step;
use crate::shared::Shared;
use crate::source::Source;
use crate::store::{MemoryStore, Store};
use crate::verify::HealthCheck;
use crate::wait::{PollPolicy, RetryPolicy};

/// Describes a [`Pipeline`]; validated by [`build`](PipelineBuilder::build). Defaults are listed in the
/// [module docs](crate::pipeline).
#[must_use]
pub struct PipelineBuilder {
    source: Option<Arc<dyn Source>>,
    branch: String,
    builder: Option<Arc<dyn Builder>>,
    environments: Vec<Environment>,
    dns: Option<Arc<dyn DnsSwitch>>,
    metrics: Option<Arc<dyn crate::analysis::MetricSource>>,
    alarms: Option<(Arc<dyn crate::analysis::AlarmSource>, crate::analysis::AlarmGate)>,
    strategy: Strategy,
    deadlines: Deadlines,
    poll: PollPolicy,
    retry: RetryPolicy,
    health: HealthCheck,
    expected: BTreeMap<Stage, Duration>,
    sinks: Vec<Arc<dyn EventSink>>,
    watch_interval: Duration,
    seed: Option<u64>,
    name: String,
    store: Option<Arc<dyn Store>>,
    clock: Option<Arc<dyn crate::store::Clock>>,
    lease_ttl: Duration,
    lease_wait: Option<Duration>,
    resume_on_start: bool,
    resume_forward: bool,
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
            metrics: None,
            alarms: None,
            strategy: Strategy::default(),
            deadlines: Deadlines::default(),
            poll: PollPolicy::default(),
            retry: RetryPolicy::default(),
            health: HealthCheck::default(),
            expected: BTreeMap::new(),
            sinks: vec![],
            watch_interval: Duration::from_secs(30),
            seed: None,
            name: "default".into(),
            store: None,
            clock: None,
            lease_ttl: Duration::from_secs(60),
            lease_wait: None,
            resume_on_start: true,
            resume_forward: true,
        }
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

    /// Where a canary's analysis ([`Canary::analysis`](crate::Canary::analysis)) reads the metrics of
    /// the environments: [`Account::metrics`](crate::memory::Account::metrics) on the simulated
    /// account.
    pub fn metrics(mut self, metrics: impl Shared<dyn crate::analysis::MetricSource>) -> Self {
        self.metrics = Some(metrics.into_shared());
        self
    }

    /// Alarms that gate every bake and canary analysis: checked every
    /// [`AlarmGate::interval`](crate::analysis::AlarmGate::interval) of a bake and before each
    /// interval of an analysis, one in `ALARM` fails the step (the traffic goes back). On AWS,
    /// [`CloudWatchAlarms`](crate::aws::CloudWatchAlarms); on the simulated account,
    /// [`Account::alarms`](crate::memory::Account::alarms).
    pub fn alarms(
        mut self,
        source: impl Shared<dyn crate::analysis::AlarmSource>,
        gate: crate::analysis::AlarmGate,
    ) -> Self {
        self.alarms = Some((source.into_shared(), gate));
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

    /// The pipeline id: what its executions, learned durations and lease are kept under in its
    /// store. Pipelines that deploy the same service share it (across processes and machines);
    /// different services need different ids in a shared store. 1 to 200 letters, digits, `.`, `_`,
    /// `-`. Default `default`.
    pub fn name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// Where executions live (see [`store`](crate::store)): a
    /// [`SqliteStore`](crate::store::sqlite::SqliteStore) for executions that outlast the process and
    /// a lease shared with other processes. Default: a [`MemoryStore`] of this pipeline's own.
    pub fn store(mut self, store: impl Shared<dyn Store>) -> Self {
        self.store = Some(store.into_shared());
        self
    }

    /// The clock the records' times are read from: when each execution started, and so what the
    /// dashboard's DORA figures measure. Default the system's clock; a pipeline on the simulated
    /// account takes [`Account::clock`](crate::memory::Account::clock), so that its records follow
    /// simulated time.
    pub fn clock(mut self, clock: impl crate::store::Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// How long the lease on the pipeline id lasts unless renewed (it is renewed every third of it
    /// while an execution runs, and checked before every mutating call). A process that dies holds
    /// it this long at most. 1 s to a day. Default 60 s.
    pub fn lease_time(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Waits up to `wait` (on the wall clock) for another holder's lease to end, instead of failing
    /// at once with [`Error::LeaseHeld`]. At most a day. Default: fail at once.
    pub fn wait_for_lease(mut self, wait: Duration) -> Self {
        self.lease_wait = Some(wait);
        self
    }

    /// Whether [`run`](Pipeline::run), [`watch`](Pipeline::watch), [`switch_back`](Pipeline::switch_back)
    /// and [`redeploy`](Pipeline::redeploy) first settle the executions a process left unfinished
    /// ([`Pipeline::resume`]). Default `true`.
    pub fn resume_on_start(mut self, resume: bool) -> Self {
        self.resume_on_start = resume;
        self
    }

    /// Whether an interrupted deployment is resumed forward (default `true`): from the step it stood
    /// at, following the build, stack update or rollout it had in flight (never a second build of
    /// the commit), and, if weights had moved, checking the target again at the weights it has and
    /// going on with the strategy; a failure there sends the traffic back. With `false`, resume
    /// settles it backward: what users could see is undone and the record ends
    /// [`Outcome::Interrupted`](crate::Outcome::Interrupted). A switch back, and a deployment run
    /// with another strategy than this pipeline's, are always settled backward.
    pub fn resume_forward(mut self, forward: bool) -> Self {
        self.resume_forward = forward;
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
            Strategy::EcsManaged(m) => {
                if self.environments.len() != 1 || self.dns.is_some() {
                    return bad("ECS-managed traffic needs exactly one environment and no DNS switch: ECS moves the \
                                traffic between the service's two target groups"
                        .into());
                }
                let env = &self.environments[0];
                if env.managed.is_none() {
                    return bad(format!(
                        "ECS-managed traffic needs a managed deployer on environment {} (EnvironmentBuilder::managed)",
                        env.name
                    ));
                }
                if env.image_parameter.is_some() {
                    return bad(format!(
                        "ECS-managed traffic: environment {}'s stack must not set the image (image_parameter(None)): \
                         a stack update would start a service deployment the pipeline did not pin",
                        env.name
                    ));
                }
                if let Some(analysis) = &m.analysis {
                    analysis.validate()?;
                    if self.metrics.is_none() {
                        return bad("an ECS-managed analysis needs a metric source (PipelineBuilder::metrics)".into());
                    }
                }
            }
        }
        if let Strategy::Canary(c) = &self.strategy {
            c.validate()?;
            if c.analysis.is_some() && self.metrics.is_none() {
                return bad("a canary analysis needs a metric source (PipelineBuilder::metrics)".into());
            }
        }
        if let Some((_, gate)) = &self.alarms {
            gate.validate()?;
        }
        let d = &self.deadlines;
        if [d.build, d.stack, d.rollout, d.verify, d.traffic, self.watch_interval].iter().any(Duration::is_zero) {
            return bad("deadlines and the watch interval must be positive".into());
        }
        self.poll.validate()?;
        self.health.validate()?;
        self.retry.validate()?;
        let name_ok =
            |n: &str| (1..=200).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !name_ok(&self.name) {
            return bad(format!(
                "pipeline name {:?} must be 1 to 200 letters, digits, '.', '_' or '-'",
                crate::error::truncate(&self.name)
            ));
        }
        if self.lease_ttl < Duration::from_secs(1) || self.lease_ttl > crate::store::MAX_LEASE {
            return bad(format!("lease time {:?} must be 1 s to a day", self.lease_ttl));
        }
        if self.lease_wait.is_some_and(|w| w > crate::store::MAX_LEASE) {
            return bad(format!("waiting for the lease ({:?}) is limited to a day", self.lease_wait));
        }
        let recovery_retry =
            RetryPolicy { max_attempts: self.retry.max_attempts.saturating_mul(2), ..self.retry.clone() };
        let inner = Inner {
            cfg: Config {
                source: self.source,
                branch,
                builder,
                environments: self.environments,
                dns: self.dns,
                metrics: self.metrics,
                alarms: self.alarms,
                strategy: self.strategy,
                deadlines: self.deadlines,
                poll: self.poll,
                retry: self.retry,
                recovery_retry,
                health: self.health,
                watch_interval: self.watch_interval,
                name: self.name,
                clock: self.clock.unwrap_or_else(|| Arc::new(crate::store::SystemClock)),
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                lease_ttl: self.lease_ttl,
                lease_wait: self.lease_wait,
                resume_on_start: self.resume_on_start,
                resume_forward: self.resume_forward,
            },
            history: Mutex::new(vec![]),
            learned: Mutex::new(BTreeMap::new()),
            hints: [
                (Stage::Build, Step::WaitBuild),
                (Stage::Stack, Step::WaitStack),
                (Stage::Rollout, Step::WaitRollout),
                (Stage::Traffic, Step::WaitDnsChange),
            ]
            .into_iter()
            .filter_map(|(stage, step)| Some((step, *self.expected.get(&stage)?)))
            .collect(),
            events: EventHub::default(),
            counter: AtomicU64::new(0),
            pending: Pending::default(),
            running: std::sync::Mutex::new(None),
        };
        for sink in self.sinks {
            inner.events.add_sink(sink);
        }
        Ok(Pipeline { inner: Arc::new(inner) })
    }
}
