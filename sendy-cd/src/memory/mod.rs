//! A simulated AWS account: the embedded default backend, and the fake to test deployments with.
//!
//! An [`Account`] holds a git repository, a build service with an image registry, CloudFormation-like
//! stacks, ECS-like services, one weighted DNS name and the services' HTTP endpoints. Each backend
//! ([`account.source()`](Account::source), [`builder()`](Account::builder), [`stacks()`](Account::stacks),
//! [`deployer(env)`](Account::deployer), [`dns()`](Account::dns), [`verifier()`](Account::verifier))
//! is a cheap handle onto the same account, so what one does the others see.
//!
//! # Time
//! Everything takes time on tokio's clock and nothing runs in the background: each call works out
//! where the account is *now*. Under a paused clock (`#[tokio::test(start_paused = true)]`,
//! `tokio::time::pause()`) an hour of deployment runs in milliseconds.
//!
//! # Behaviour and faults
//! What a revision does is set per commit with [`Account::set_behavior`]: its build fails, its stack
//! update rolls back, its tasks crash (tripping the circuit breaker), or it answers health checks with
//! errors (always, or only once it serves traffic). Any call can be made to fail, throttle or hang, or
//! to fail only its first N times, with [`Account::inject`].

mod builder;
mod deployer;
mod dns;
mod faults;
mod managed;
mod metrics;
mod source;
mod stack;
mod verifier;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

pub use builder::MemoryBuilder;
pub use deployer::MemoryDeployer;
pub use dns::MemoryDns;
pub(crate) use faults::Answer;
pub use faults::{Fault, Injection, Op};
pub use managed::{ManagedConfig, MemoryManagedDeployer, TrafficShift};
pub use metrics::{AccountMetrics, MemoryAlarms, SimulatedMetrics, Traffic};
pub use source::MemorySource;
pub use stack::MemoryStacks;
pub use verifier::MemoryVerifier;

use crate::error::{Error, Result};
use crate::model::{
    BranchName, CommitId, Digest, EnvironmentName, ImageRef, Revision, SetIdentifier, StackName, StackOutputs,
    StackParameters, TrafficSplit,
};

/// How the simulated account behaves. [`SimConfig::default`] has realistic durations.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SimConfig {
    /// How long a build takes. Default 5 min.
    pub build_duration: Duration,
    /// How long a stack update takes. Default 3 min.
    pub stack_duration: Duration,
    /// How long a rollout takes to start every task. Default 2 min.
    pub rollout_duration: Duration,
    /// How long a DNS change takes to be applied (Route 53: `PENDING` to `INSYNC`). Default 30 s.
    pub dns_propagation: Duration,
    /// The DNS records' TTL. Default 60 s.
    pub ttl: Duration,
    /// How long a health probe takes to answer. Default 20 ms.
    pub probe_latency: Duration,
    /// Tasks per service. Default 2.
    pub desired_count: u32,
    /// Random spread of every duration, as a fraction (0.1 is ±10 %). Default 0 (exact durations).
    pub jitter: f64,
    /// Seed of the jitter and of generated ids. Default 1.
    pub seed: u64,
    /// The image registry host. Default an ECR-like `123456789012.dkr.ecr.us-east-1.amazonaws.com`.
    pub registry: String,
    /// The image repository. Default `app`.
    pub repository: String,
    /// The domain under which services are reached (`http://<env>.<domain>/`). Default `app.sim`.
    pub domain: String,
    /// How long a `start_once` key is remembered (CodeBuild's `idempotencyToken` window): a start
    /// with the same key after that starts another build. Default 5 min, as CodeBuild.
    pub idempotency_window: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            build_duration: Duration::from_secs(300),
            stack_duration: Duration::from_secs(180),
            rollout_duration: Duration::from_secs(120),
            dns_propagation: Duration::from_secs(30),
            ttl: Duration::from_secs(60),
            probe_latency: Duration::from_millis(20),
            desired_count: 2,
            jitter: 0.0,
            seed: 1,
            registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
            repository: "app".into(),
            domain: "app.sim".into(),
            idempotency_window: Duration::from_secs(300),
        }
    }
}

/// The longest duration a [`SimConfig`] accepts: a year of simulated time.
pub const MAX_SIM_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The most tasks a simulated service runs.
pub const MAX_DESIRED_COUNT: u32 = 10_000;

/// `at + d`, or the latest instant that can be represented (a duration so long it never ends).
pub(crate) fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d).or_else(|| at.checked_add(MAX_SIM_DURATION.saturating_mul(100))).unwrap_or(at)
}

impl SimConfig {
    /// Checks every field: durations at most [`MAX_SIM_DURATION`], a jitter in `0..1`, a desired count
    /// in `1..=`[`MAX_DESIRED_COUNT`], a registry and repository that form an image reference and a
    /// domain that forms a service URL.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first field that is out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| Err(Error::InvalidConfig(format!("SimConfig.{field}: {why}")));
        for (field, d) in [
            ("build_duration", self.build_duration),
            ("stack_duration", self.stack_duration),
            ("rollout_duration", self.rollout_duration),
            ("dns_propagation", self.dns_propagation),
            ("ttl", self.ttl),
            ("probe_latency", self.probe_latency),
            ("idempotency_window", self.idempotency_window),
        ] {
            if d > MAX_SIM_DURATION {
                return bad(field, format!("{d:?} is longer than {MAX_SIM_DURATION:?}"));
            }
        }
        if !(self.jitter.is_finite() && (0.0..1.0).contains(&self.jitter)) {
            return bad("jitter", format!("{} is not a fraction in 0..1", self.jitter));
        }
        if !(1..=MAX_DESIRED_COUNT).contains(&self.desired_count) {
            return bad("desired_count", format!("{} is not in 1..={MAX_DESIRED_COUNT}", self.desired_count));
        }
        let image = format!("{}/{}:initial", self.registry, self.repository);
        if let Err(e) = ImageRef::parse(&image) {
            return bad("registry / repository", format!("they do not form an image reference: {e}"));
        }
        let url = format!("http://env.{}/", self.domain);
        if let Err(e) = crate::model::ServiceUrl::parse(&url) {
            return bad("domain", format!("it does not form a service URL: {e}"));
        }
        Ok(())
    }
}

/// How a revision's health checks answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Always healthy (200).
    #[default]
    Healthy,
    /// Always unhealthy (500).
    Unhealthy,
    /// Healthy until its environment receives traffic (a DNS weight above zero), then 500: a bug
    /// only real users trigger.
    UnhealthyUnderTraffic,
}

/// What a revision does when it goes through the account. The default is a revision that works.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Behavior {
    /// Its build fails in the `BUILD` phase with this reason.
    pub build_failure: Option<String>,
    /// A stack update to its image fails at the task definition with this reason, and rolls back.
    pub stack_failure: Option<String>,
    /// Its tasks crash on start, so a rollout of it trips the circuit breaker and rolls back.
    pub crashing: bool,
    /// How its health checks answer.
    pub health: Health,
    /// How it serves traffic: its error rate and latency in [`Account::metrics`].
    pub traffic: Traffic,
}

/// A simulated AWS account. Cloning it gives another handle onto the same account.
///
/// ```
/// use sendy_cd::memory::{Account, Behavior, Health};
/// # fn main() -> sendy_cd::Result<()> {
/// let account = Account::new();
/// account.create_environment("blue")?;
/// account.create_environment("green")?;
/// let bad = account.push("main", "Break checkout", "Ada")?;
/// account.set_behavior(&bad.commit, Behavior::default().health(Health::UnhealthyUnderTraffic));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Account {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account").finish_non_exhaustive()
    }
}

impl Default for Account {
    fn default() -> Self {
        Account::new()
    }
}

pub(crate) struct State {
    pub(crate) cfg: SimConfig,
    epoch: (jiff::Timestamp, Instant),
    rng: fastrand::Rng,
    counter: u64,
    branches: BTreeMap<BranchName, Vec<Revision>>,
    pub(crate) registry: BTreeMap<String, Digest>,
    pub(crate) builds: BTreeMap<String, builder::BuildRec>,
    /// Idempotency keys of `start_once`, and the build each started.
    pub(crate) build_keys: BTreeMap<String, (crate::model::BuildId, Instant)>,
    pub(crate) stacks: BTreeMap<StackName, stack::StackRec>,
    pub(crate) plans: BTreeMap<String, stack::PlanRec>,
    /// Keys of `plan_once`, and the plan each made.
    pub(crate) plan_keys: BTreeMap<String, String>,
    pub(crate) services: BTreeMap<EnvironmentName, deployer::ServiceRec>,
    /// The managed services ([`Account::create_managed_service`]).
    pub(crate) managed: BTreeMap<EnvironmentName, managed::ManagedRec>,
    /// Their production and test hosts (`true` for a test listener).
    pub(crate) managed_endpoints: BTreeMap<String, (EnvironmentName, bool)>,
    pub(crate) record: dns::RecordRec,
    pub(crate) endpoints: BTreeMap<String, EnvironmentName>,
    pub(crate) behaviors: BTreeMap<String, Behavior>,
    /// The alarms in `ALARM`.
    pub(crate) firing: std::collections::BTreeSet<String>,
    faults: Vec<Injection>,
    calls: BTreeMap<Op, u32>,
}

impl State {
    /// A duration with the configured jitter.
    pub(crate) fn spread(&mut self, d: Duration) -> Duration {
        if self.cfg.jitter == 0.0 {
            return d;
        }
        // The jitter is validated to 0..1, so the factor is in 0..2 and finite.
        let factor = 1.0 + self.cfg.jitter * (2.0 * self.rng.f64() - 1.0);
        Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(d)
    }

    /// A fresh id: `prefix` and a number.
    pub(crate) fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{:06}", self.counter)
    }

    /// The behaviour of the revision an image was built from (its tag is the commit id).
    pub(crate) fn behavior_of(&self, image: &ImageRef) -> Behavior {
        image.tag().and_then(|t| self.behaviors.get(t)).cloned().unwrap_or_default()
    }

    pub(crate) fn now_timestamp(&self) -> jiff::Timestamp {
        let elapsed = Instant::now().saturating_duration_since(self.epoch.1);
        self.epoch.0 + jiff::SignedDuration::try_from(elapsed).unwrap_or(jiff::SignedDuration::ZERO)
    }

    /// The image tagged `tag` in the configured repository.
    pub(crate) fn image(&self, tag: &str) -> Result<ImageRef> {
        Ok(ImageRef::parse(&format!("{}/{}:{tag}", self.cfg.registry, self.cfg.repository))?)
    }
}

impl Account {
    /// An empty account with [`SimConfig::default`].
    pub fn new() -> Self {
        Account::unchecked(SimConfig::default())
    }

    /// An empty account with `cfg`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `cfg` does not pass [`SimConfig::validate`].
    pub fn with_config(cfg: SimConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Account::unchecked(cfg))
    }

    fn unchecked(cfg: SimConfig) -> Self {
        let rng = fastrand::Rng::with_seed(cfg.seed);
        Account {
            state: Arc::new(Mutex::new(State {
                cfg,
                epoch: (jiff::Timestamp::now(), Instant::now()),
                rng,
                counter: 0,
                branches: BTreeMap::new(),
                registry: BTreeMap::new(),
                builds: BTreeMap::new(),
                build_keys: BTreeMap::new(),
                plan_keys: BTreeMap::new(),
                stacks: BTreeMap::new(),
                plans: BTreeMap::new(),
                services: BTreeMap::new(),
                managed: BTreeMap::new(),
                managed_endpoints: BTreeMap::new(),
                record: dns::RecordRec::default(),
                endpoints: BTreeMap::new(),
                behaviors: BTreeMap::new(),
                firing: std::collections::BTreeSet::new(),
                faults: vec![],
                calls: BTreeMap::new(),
            })),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed in a way later calls
        // would misread (every change is a single insert or push), so a poisoned lock is recovered.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Time since the account was created, on tokio's clock (simulated time under a paused clock).
    pub fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.lock().epoch.1)
    }

    /// The configuration.
    pub fn config(&self) -> SimConfig {
        self.lock().cfg.clone()
    }

    /// Counts a call of `op` and applies any fault injected for it. The [`Answer`] tells a call that
    /// changes something whether to lose its answer once it took effect.
    pub(crate) async fn enter(&self, op: Op) -> Result<Answer> {
        let fault = {
            let mut s = self.lock();
            *s.calls.entry(op).or_default() += 1;
            let mut hit = None;
            for rule in s.faults.iter_mut().filter(|r| r.op == op) {
                if rule.skip > 0 {
                    rule.skip -= 1;
                    continue;
                }
                if rule.times == Some(0) {
                    continue;
                }
                if let Some(t) = rule.times.as_mut() {
                    *t -= 1;
                }
                hit = Some(rule.fault.clone());
                break;
            }
            s.faults.retain(|r| r.times != Some(0));
            hit
        };
        match fault {
            None => Ok(Answer { op, lose: false }),
            Some(Fault::LoseAnswer) if op.is_mutating() => Ok(Answer { op, lose: true }),
            Some(Fault::LoseAnswer) => Err(Error::Transient(format!("injected lost answer of {op}").into())),
            Some(Fault::Fail) => Err(Error::Backend(format!("injected failure of {op}").into())),
            Some(Fault::Throttle) => {
                Err(Error::Throttled(format!("injected throttling of {op}: Rate exceeded").into()))
            }
            Some(Fault::Transient) => Err(Error::Transient(format!("injected transient failure of {op}").into())),
            Some(Fault::Hang) => std::future::pending().await,
        }
    }

    /// Injects a fault. Several injections for one operation apply in the order they were made.
    pub fn inject(&self, injection: Injection) {
        self.lock().faults.push(injection);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// How many times `op` was called.
    pub fn calls(&self, op: Op) -> u32 {
        self.lock().calls.get(&op).copied().unwrap_or(0)
    }

    /// Sets what the revision `commit` does.
    pub fn set_behavior(&self, commit: &CommitId, behavior: Behavior) {
        self.lock().behaviors.insert(commit.as_str().to_owned(), behavior);
    }

    /// Pushes a commit to `branch` (created if new) and returns it.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `branch` is not a valid branch name.
    pub fn push(&self, branch: &str, message: &str, author: &str) -> Result<Revision> {
        let branch = BranchName::parse(branch)?;
        let mut s = self.lock();
        s.counter += 1;
        let seed = format!("{} {} {branch} {message} {author}", s.cfg.seed, s.counter);
        let digest = Digest::of(seed.as_bytes());
        let hex = &digest.as_str()["sha256:".len()..][..40];
        let revision = Revision {
            commit: CommitId::parse(hex)?,
            branch: branch.clone(),
            message: message.to_owned(),
            author: author.to_owned(),
            time: s.now_timestamp(),
        };
        s.branches.entry(branch).or_default().push(revision.clone());
        Ok(revision)
    }

    /// The image a build of `commit` is pushed as (without digest).
    ///
    /// # Errors
    /// None in practice (the configuration was validated and a commit id is a valid tag); the
    /// reference is parsed like any other.
    pub fn image_for(&self, commit: &CommitId) -> Result<ImageRef> {
        self.lock().image(commit.as_str())
    }

    /// The tags in the registry and their digests.
    pub fn registry(&self) -> BTreeMap<String, Digest> {
        self.lock().registry.clone()
    }

    /// Creates an environment `name`: a stack `app-<name>` whose `ServiceUrl` output is
    /// `http://<name>.<domain>/`, a service running the image tagged `initial` with every task up, an
    /// endpoint answering at that URL, and a weighted record with set identifier `<name>` (weight 100
    /// for the first environment, 0 for the others).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad name; [`Error::Conflict`] if it exists already.
    pub fn create_environment(&self, name: &str) -> Result<()> {
        let env = EnvironmentName::parse(name)?;
        let stack_name = StackName::parse(format!("app-{env}"))?;
        let set_id = SetIdentifier::from(&env);
        let mut s = self.lock();
        if s.services.contains_key(&env) || s.stacks.contains_key(&stack_name) {
            return Err(Error::Conflict(format!("environment {env} exists already").into()));
        }
        let image = s.image("initial")?;
        let host = format!("{env}.{}", s.cfg.domain);
        let outputs = StackOutputs::from_pairs([
            ("ServiceUrl".to_owned(), format!("http://{host}/")),
            ("ClusterName".to_owned(), format!("app-{env}")),
            ("ServiceName".to_owned(), env.to_string()),
        ]);
        let parameters = StackParameters::parse([
            ("ImageUri", image.to_string()),
            ("DesiredCount", s.cfg.desired_count.to_string()),
        ])?;
        s.stacks.insert(
            stack_name.clone(),
            stack::StackRec::new(parameters, "simulated environment template".into(), outputs),
        );
        let desired = s.cfg.desired_count;
        let service = deployer::ServiceRec::with_initial(&env, image, desired);
        if let Some(stack) = s.stacks.remove(&stack_name) {
            s.stacks.insert(stack_name.clone(), stack.owning(env.clone()));
        }
        s.services.insert(env.clone(), service);
        let first = s.record.weights.is_empty();
        s.record.weights.insert(set_id, if first { 100 } else { 0 });
        s.endpoints.insert(host, env);
        Ok(())
    }

    /// The DNS weights as they are now (for assertions).
    ///
    /// # Errors
    /// [`Error::NotFound`] if no environment exists.
    pub fn weights(&self) -> Result<TrafficSplit> {
        let s = self.lock();
        TrafficSplit::try_from(s.record.weights.clone())
            .map_err(|_| Error::NotFound { kind: "weighted record", id: s.cfg.domain.clone().into() })
    }

    /// The image environment `env` serves now: that of its newest completed deployment (for assertions).
    pub fn serving(&self, env: &str) -> Option<ImageRef> {
        let env = EnvironmentName::parse(env).ok()?;
        let mut s = self.lock();
        deployer::serving(&mut s, &env)
    }

    /// How many deployments environment `env`'s service has had, its first included (for assertions:
    /// a rollout or rollback started twice shows here).
    pub fn deployments(&self, env: &str) -> usize {
        let Ok(env) = EnvironmentName::parse(env) else { return 0 };
        let s = self.lock();
        s.services.get(&env).map_or(0, deployer::ServiceRec::deployment_count)
    }

    /// The parameters of stack `name` as they are now (for assertions).
    pub fn stack_parameters(&self, name: &str) -> Option<StackParameters> {
        let name = StackName::parse(name).ok()?;
        let mut s = self.lock();
        stack::refresh(&mut s);
        s.stacks.get(&name).map(|r| r.parameters.clone())
    }

    /// The source: the account's repository.
    pub fn source(&self) -> MemorySource {
        MemorySource::new(self.clone())
    }

    /// The build service, as a [`Builder`](crate::Builder).
    pub fn image_builder(&self) -> MemoryBuilder {
        MemoryBuilder::new(self.clone())
    }

    /// The old name of [`image_builder`](Self::image_builder).
    #[deprecated(since = "0.1.0", note = "renamed image_builder: `T::builder()` conventionally starts a builder of T")]
    pub fn builder(&self) -> MemoryBuilder {
        self.image_builder()
    }

    /// The stacks.
    pub fn stacks(&self) -> MemoryStacks {
        MemoryStacks::new(self.clone())
    }

    /// The deployer of environment `env`'s service.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad name, [`Error::NotFound`] if the environment does not exist.
    pub fn deployer(&self, env: &str) -> Result<MemoryDeployer> {
        let env = EnvironmentName::parse(env)?;
        if !self.lock().services.contains_key(&env) {
            return Err(Error::NotFound { kind: "service", id: env.to_string().into() });
        }
        Ok(MemoryDeployer::new(self.clone(), env))
    }

    /// The weighted DNS name shared by every environment.
    pub fn dns(&self) -> MemoryDns {
        MemoryDns::new(self.clone())
    }

    /// The HTTP client that reaches the environments' endpoints.
    pub fn verifier(&self) -> MemoryVerifier {
        MemoryVerifier::new(self.clone())
    }

    /// The account's alarms, as an [`AlarmSource`](crate::analysis::AlarmSource): an alarm is
    /// firing from [`set_alarm`](Self::set_alarm)`(name, true)` until `set_alarm(name, false)`.
    pub fn alarms(&self) -> MemoryAlarms {
        MemoryAlarms::new(self.clone())
    }

    /// Puts alarm `name` in `ALARM` (`firing`) or back to `OK`.
    pub fn set_alarm(&self, name: &str, firing: bool) {
        let mut s = self.lock();
        if firing {
            s.firing.insert(name.to_owned());
        } else {
            s.firing.remove(name);
        }
    }

    /// The environments' metrics, as a [`MetricSource`](crate::analysis::MetricSource): each
    /// environment serves its share of `requests_per_second` (its DNS weight) as the revision it
    /// runs behaves ([`Behavior::traffic`]), noise seeded by [`SimConfig::seed`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the rate is not a finite number above 0.
    pub fn metrics(&self, requests_per_second: f64) -> Result<AccountMetrics> {
        let seed = self.lock().cfg.seed;
        Ok(AccountMetrics::new(self.clone(), SimulatedMetrics::new(seed, requests_per_second)?))
    }

    /// The account's clock as a wall clock: the time it started plus tokio's time since (simulated
    /// time under a paused clock), for [`PipelineBuilder::clock`](crate::PipelineBuilder::clock) and
    /// the dashboard, so that records and figures follow the simulated account.
    pub fn clock(&self) -> AccountClock {
        AccountClock { account: self.clone() }
    }

    /// Environment `env` wired to this account's backends, for a [`Pipeline`](crate::Pipeline).
    ///
    /// # Errors
    /// As [`deployer`](Account::deployer).
    pub fn environment(&self, env: &str) -> Result<crate::pipeline::Environment> {
        self.environment_builder(env)?.build()
    }

    /// Environment `env` wired to this account's stack, deployer and verifier, to change before
    /// building: put your own verifier or deployer in, without knowing how the account names its
    /// stacks.
    ///
    /// ```
    /// # fn main() -> sendy_cd::Result<()> {
    /// # use std::sync::Arc;
    /// let account = sendy_cd::memory::Account::new();
    /// account.create_environment("blue")?;
    /// let my_verifier = account.verifier(); // stands for a verifier of your own
    /// let blue = account.environment_builder("blue")?.verifier(Arc::new(my_verifier)).build()?;
    /// assert_eq!(blue.stack_name().as_str(), "app-blue");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`deployer`](Account::deployer).
    pub fn environment_builder(&self, env: &str) -> Result<crate::pipeline::EnvironmentBuilder> {
        let deployer = self.deployer(env)?;
        Ok(crate::pipeline::Environment::builder(env)
            .stack(Arc::new(self.stacks()), &format!("app-{env}"))
            .deployer(Arc::new(deployer))
            .verifier(Arc::new(self.verifier())))
    }
}

setters!(SimConfig {
    build_duration: Duration,
    stack_duration: Duration,
    rollout_duration: Duration,
    dns_propagation: Duration,
    ttl: Duration,
    probe_latency: Duration,
    desired_count: u32,
    jitter: f64,
    seed: u64,
    #[into]
    registry: String,
    #[into]
    repository: String,
    #[into]
    domain: String,
    idempotency_window: Duration,
});

setters!(Behavior { #[into] build_failure: Option<String>, #[into] stack_failure: Option<String>, crashing: bool, health: Health, traffic: Traffic });

/// The simulated account's clock ([`Account::clock`]).
#[derive(Clone, Debug)]
pub struct AccountClock {
    account: Account,
}

impl crate::store::Clock for AccountClock {
    fn now(&self) -> jiff::Timestamp {
        self.account.lock().now_timestamp()
    }
}
