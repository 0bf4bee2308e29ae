//! [`Store`]: where executions live, so that they outlast the process that ran them.
//!
//! A pipeline writes its execution's record to its store before each step's call and again after it
//! (the journal), keeps the stage durations it learned there, reads its history from it
//! ([`switch_back`](crate::Pipeline::switch_back), [`redeploy`](crate::Pipeline::redeploy) and
//! [`watch`](crate::Pipeline::watch) work in a new process), and holds a [`Lease`] on its pipeline id
//! in it while an execution runs, so that two processes never deploy the same pipeline at once.
//!
//! - [`MemoryStore`]: this process only, bounded; the default.
//! - [`SqliteStore`](sqlite::SqliteStore) (feature `sqlite`): one file that several processes open at
//!   once; the embedded default for real use.
//! - [`DynamoDbStore`](dynamodb::DynamoDbStore) (feature `aws`): one table, for runners on many
//!   machines.
//!
//! Every implementation passes the same checks ([`conformance::store`](crate::conformance)).

#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{CommitId, Id};
use crate::record::{ExecutionRecord, Step};

/// Where executions live: their records, the durations a pipeline learned, and the lease that makes
/// its executions one at a time. Object safe; shared as `Arc<dyn Store>`.
///
/// # Contract
/// - Each call is durable when it returns `Ok`: a process killed right after it (`kill -9`) leaves
///   what the call wrote for the next one to read. [`save`](Self::save) is called before each call
///   to AWS that a step announces, so the journal always says what the execution was doing.
/// - Records are kept per pipeline id, and read newest first.
/// - Leases: at most one holder per pipeline id at any instant, across every process that opens the
///   same store. Each acquisition gets a fencing token greater than every token given before for that
///   pipeline id. A lease that expired may be taken by another holder; its old holder's
///   [`renew`](Self::renew) then fails with [`Error::LeaseLost`].
/// - A store never panics on what it reads: a record it cannot read (a torn write, a newer schema)
///   is skipped with a warning, never fatal.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Writes `record` as it stands now, replacing what was saved of it before.
    async fn save(&self, pipeline: &str, record: &ExecutionRecord) -> Result<()>;

    /// The execution `id` of `pipeline`, if saved.
    async fn execution(&self, pipeline: &str, id: &Id) -> Result<Option<ExecutionRecord>>;

    /// `pipeline`'s executions, newest first: at most `limit`, older than `before` (a cursor a page
    /// returned) when given.
    async fn history(&self, pipeline: &str, limit: usize, before: Option<Cursor>) -> Result<HistoryPage>;

    /// How many executions of `pipeline` were ever saved (numbers its next execution).
    async fn count(&self, pipeline: &str) -> Result<u64>;

    /// `pipeline`'s executions not over yet ([`Outcome::Running`](crate::Outcome::Running)), oldest
    /// first: what resume settles. Called at the start of every execution, so implementations answer
    /// it without reading the whole history (SQLite: an index; DynamoDB: one item listing them).
    ///
    /// The default reads the whole history.
    async fn unfinished(&self, pipeline: &str) -> Result<Vec<ExecutionRecord>> {
        let mut out = vec![];
        let mut before = None;
        loop {
            let page = self.history(pipeline, 100, before).await?;
            out.extend(page.records.into_iter().filter(|r| !r.outcome.is_final()));
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        out.reverse();
        Ok(out)
    }

    /// The newest execution of `pipeline` whose build of `commit` succeeded (its record's image is
    /// of that commit): a commit is never built twice. Implementations answer it without reading the
    /// whole history.
    ///
    /// The default reads the history until it finds one.
    async fn built(&self, pipeline: &str, commit: &CommitId) -> Result<Option<ExecutionRecord>> {
        let mut before = None;
        loop {
            let page = self.history(pipeline, 100, before).await?;
            if let Some(found) =
                page.records.into_iter().find(|r| r.image.as_ref().is_some_and(|i| &i.commit == commit))
            {
                return Ok(Some(found));
            }
            match page.next {
                Some(next) => before = Some(next),
                None => return Ok(None),
            }
        }
    }

    /// The durations `pipeline` learned, per step, oldest first (at most [`LEARNED`] each).
    async fn durations(&self, pipeline: &str) -> Result<BTreeMap<Step, Vec<Duration>>>;

    /// Adds a duration `step` took; keeps the newest [`LEARNED`].
    async fn learn(&self, pipeline: &str, step: Step, took: Duration) -> Result<()>;

    /// Takes the lease on `pipeline` for `ttl`.
    ///
    /// # Errors
    /// [`Error::LeaseHeld`] naming the holder and when its lease ends, while another holder's lease
    /// has not expired.
    async fn acquire(&self, pipeline: &str, holder: &Holder, ttl: Duration) -> Result<Lease>;

    /// Extends `lease` by `ttl` from now.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] if the lease expired or was taken since: its holder must make no further
    /// mutating call.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease>;

    /// Gives `lease` up (nothing happens if it was lost already).
    async fn release(&self, lease: &Lease) -> Result<()>;

    /// Every acquisition of `pipeline`'s lease, oldest first, with when it ended (released, or its
    /// last expiry): what shows that holders never overlapped.
    async fn acquisitions(&self, pipeline: &str) -> Result<Vec<Acquisition>>;
}

/// How many durations of each step a store keeps: the pipeline paces its polling by their median.
pub const LEARNED: usize = 5;

/// Where a page of history ends; give it back to read the next page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cursor(pub u64);

/// A page of history, newest first.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct HistoryPage {
    /// The records.
    pub records: Vec<ExecutionRecord>,
    /// Where to read on from, when there may be more.
    pub next: Option<Cursor>,
}

/// Who holds a lease: a process, on a host, running an execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Holder {
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// What it runs (an execution id, or `watch`).
    pub task: String,
}

impl Holder {
    /// This process, running `task`.
    pub fn this_process(task: impl Into<String>) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_owned());
        Holder { host, pid: std::process::id(), task: task.into() }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} on {} ({})", self.pid, self.host, self.task)
    }
}

/// A lease on a pipeline id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Lease {
    /// The pipeline id.
    pub pipeline: String,
    /// Who holds it.
    pub holder: Holder,
    /// The fencing token: greater than every token given before for this pipeline id.
    pub token: u64,
    /// When it expires unless renewed.
    pub expires_at: jiff::Timestamp,
}

/// One acquisition of a lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Acquisition {
    /// Its fencing token.
    pub token: u64,
    /// Who took it.
    pub holder: Holder,
    /// When.
    pub acquired_at: jiff::Timestamp,
    /// When it ended: released, or its last expiry.
    pub ended_at: jiff::Timestamp,
}

/// The time leases are measured in: wall-clock time, shared by every process on every machine (so
/// not tokio's clock). Tests give a store a clock they move by hand.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> jiff::Timestamp;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// A clock that moves only when told to: for tests of lease expiry.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<jiff::Timestamp>>);

impl ManualClock {
    /// A clock at `at`.
    pub fn new(at: jiff::Timestamp) -> Self {
        ManualClock(Arc::new(Mutex::new(at)))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now = add(*now, by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> jiff::Timestamp {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `at + by`, saturating at the largest timestamp.
pub(crate) fn add(at: jiff::Timestamp, by: Duration) -> jiff::Timestamp {
    jiff::SignedDuration::try_from(by).ok().and_then(|d| at.checked_add(d).ok()).unwrap_or(jiff::Timestamp::MAX)
}

/// The longest lease a store gives: a day.
pub const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

pub(crate) fn check_ttl(ttl: Duration) -> Result<()> {
    if ttl.is_zero() || ttl > MAX_LEASE {
        return Err(Error::InvalidConfig(format!("lease time {ttl:?} must be above zero and at most a day")));
    }
    Ok(())
}

/// Executions in this process's memory: the history a pipeline keeps when given no store. Bounded:
/// it keeps the newest `capacity` executions of each pipeline (1,000 by default), so a pipeline under
/// [`watch`](crate::Pipeline::watch) does not grow without end. Nothing outlasts the process.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    state: Arc<Mutex<MemoryState>>,
    clock: Arc<dyn Clock>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct MemoryState {
    pipelines: HashMap<String, MemoryPipeline>,
}

#[derive(Debug, Default)]
struct MemoryPipeline {
    /// (sequence, record), oldest first.
    records: VecDeque<(u64, ExecutionRecord)>,
    saved: u64,
    durations: BTreeMap<Step, Vec<Duration>>,
    lease: Option<Lease>,
    last_token: u64,
    acquisitions: Vec<Acquisition>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store keeping 1,000 executions per pipeline.
    pub fn new() -> Self {
        MemoryStore { state: Arc::default(), clock: Arc::new(SystemClock), capacity: 1000 }
    }

    /// Keeps the newest `capacity` executions of each pipeline (at least one).
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Measures leases with `clock`.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    fn with<T>(&self, pipeline: &str, f: impl FnOnce(&mut MemoryPipeline) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(state.pipelines.entry(pipeline.to_owned()).or_default())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn save(&self, pipeline: &str, record: &ExecutionRecord) -> Result<()> {
        let capacity = self.capacity;
        self.with(pipeline, |p| {
            if let Some((_, r)) = p.records.iter_mut().find(|(_, r)| r.id == record.id) {
                *r = record.clone();
            } else {
                p.saved += 1;
                p.records.push_back((p.saved, record.clone()));
                while p.records.len() > capacity {
                    p.records.pop_front();
                }
            }
        });
        Ok(())
    }

    async fn execution(&self, pipeline: &str, id: &Id) -> Result<Option<ExecutionRecord>> {
        Ok(self.with(pipeline, |p| p.records.iter().find(|(_, r)| &r.id == id).map(|(_, r)| r.clone())))
    }

    async fn history(&self, pipeline: &str, limit: usize, before: Option<Cursor>) -> Result<HistoryPage> {
        Ok(self.with(pipeline, |p| {
            let older = |seq: &u64| before.is_none_or(|Cursor(b)| *seq < b);
            let mut records = vec![];
            let mut next = None;
            for (seq, r) in p.records.iter().rev().filter(|(seq, _)| older(seq)) {
                if records.len() == limit {
                    break;
                }
                records.push(r.clone());
                next = Some(Cursor(*seq));
            }
            let more = next.is_some_and(|Cursor(n)| p.records.iter().any(|(seq, _)| *seq < n));
            HistoryPage { records, next: next.filter(|_| more) }
        }))
    }

    async fn count(&self, pipeline: &str) -> Result<u64> {
        Ok(self.with(pipeline, |p| p.saved))
    }

    async fn durations(&self, pipeline: &str) -> Result<BTreeMap<Step, Vec<Duration>>> {
        Ok(self.with(pipeline, |p| p.durations.clone()))
    }

    async fn learn(&self, pipeline: &str, step: Step, took: Duration) -> Result<()> {
        self.with(pipeline, |p| {
            let seen = p.durations.entry(step).or_default();
            seen.push(took);
            if seen.len() > LEARNED {
                seen.remove(0);
            }
        });
        Ok(())
    }

    async fn acquire(&self, pipeline: &str, holder: &Holder, ttl: Duration) -> Result<Lease> {
        check_ttl(ttl)?;
        let now = self.clock.now();
        self.with(pipeline, |p| {
            if let Some(held) = p.lease.as_ref().filter(|l| l.expires_at > now) {
                return Err(Error::LeaseHeld { holder: held.holder.to_string(), expires_at: held.expires_at });
            }
            p.last_token += 1;
            let lease = Lease {
                pipeline: pipeline.to_owned(),
                holder: holder.clone(),
                token: p.last_token,
                expires_at: add(now, ttl),
            };
            p.acquisitions.push(Acquisition {
                token: lease.token,
                holder: holder.clone(),
                acquired_at: now,
                ended_at: lease.expires_at,
            });
            p.lease = Some(lease.clone());
            Ok(lease)
        })
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        check_ttl(ttl)?;
        let now = self.clock.now();
        self.with(&lease.pipeline, |p| {
            let Some(held) = p.lease.as_mut().filter(|l| l.token == lease.token && l.expires_at > now) else {
                return Err(lost(lease));
            };
            held.expires_at = add(now, ttl);
            let renewed = held.clone();
            if let Some(a) = p.acquisitions.iter_mut().find(|a| a.token == lease.token) {
                a.ended_at = renewed.expires_at;
            }
            Ok(renewed)
        })
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let now = self.clock.now();
        self.with(&lease.pipeline, |p| {
            if p.lease.as_ref().is_some_and(|l| l.token == lease.token && l.expires_at > now) {
                p.lease = None;
                if let Some(a) = p.acquisitions.iter_mut().find(|a| a.token == lease.token) {
                    a.ended_at = now;
                }
            }
        });
        Ok(())
    }

    async fn acquisitions(&self, pipeline: &str) -> Result<Vec<Acquisition>> {
        Ok(self.with(pipeline, |p| p.acquisitions.clone()))
    }
}

pub(crate) fn lost(lease: &Lease) -> Error {
    Error::LeaseLost { pipeline: lease.pipeline.clone(), token: lease.token }
}

/// A store that "dies" after a number of record writes: the write that would exceed it never
/// returns, and neither does anything after it that writes (renewing or releasing the lease). What
/// the inner store holds then is exactly what a process killed at that instant leaves; drop the
/// execution's future and settle it from a new pipeline on the same file
/// ([`Pipeline::resume`](crate::Pipeline::resume)). For crash drills and examples.
#[derive(Debug)]
pub struct DyingStore<S> {
    inner: S,
    writes_left: std::sync::atomic::AtomicUsize,
    died: Arc<std::sync::atomic::AtomicBool>,
}

impl<S: Store> DyingStore<S> {
    /// `inner`, dying at its `writes + 1`-th record write.
    pub fn new(inner: S, writes: usize) -> Self {
        DyingStore { inner, writes_left: std::sync::atomic::AtomicUsize::new(writes), died: Arc::default() }
    }

    /// Whether it died.
    pub fn died(&self) -> bool {
        self.died.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many record writes it has left before it dies.
    pub fn writes_left(&self) -> usize {
        self.writes_left.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn hang_if_dead(&self) {
        if self.died() {
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl<S: Store> Store for DyingStore<S> {
    async fn save(&self, pipeline: &str, record: &ExecutionRecord) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.writes_left.load(Ordering::SeqCst) == 0 {
            self.died.store(true, Ordering::SeqCst);
        }
        self.hang_if_dead().await;
        self.writes_left.fetch_sub(1, Ordering::SeqCst);
        self.inner.save(pipeline, record).await
    }
    async fn execution(&self, pipeline: &str, id: &Id) -> Result<Option<ExecutionRecord>> {
        self.inner.execution(pipeline, id).await
    }
    async fn history(&self, pipeline: &str, limit: usize, before: Option<Cursor>) -> Result<HistoryPage> {
        self.inner.history(pipeline, limit, before).await
    }
    async fn unfinished(&self, pipeline: &str) -> Result<Vec<ExecutionRecord>> {
        self.inner.unfinished(pipeline).await
    }
    async fn built(&self, pipeline: &str, commit: &CommitId) -> Result<Option<ExecutionRecord>> {
        self.inner.built(pipeline, commit).await
    }
    async fn count(&self, pipeline: &str) -> Result<u64> {
        self.inner.count(pipeline).await
    }
    async fn durations(&self, pipeline: &str) -> Result<BTreeMap<Step, Vec<Duration>>> {
        self.inner.durations(pipeline).await
    }
    async fn learn(&self, pipeline: &str, step: Step, took: Duration) -> Result<()> {
        self.hang_if_dead().await;
        self.inner.learn(pipeline, step, took).await
    }
    async fn acquire(&self, pipeline: &str, holder: &Holder, ttl: Duration) -> Result<Lease> {
        self.hang_if_dead().await;
        self.inner.acquire(pipeline, holder, ttl).await
    }
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        self.hang_if_dead().await;
        self.inner.renew(lease, ttl).await
    }
    async fn release(&self, lease: &Lease) -> Result<()> {
        self.hang_if_dead().await;
        self.inner.release(lease).await
    }
    async fn acquisitions(&self, pipeline: &str) -> Result<Vec<Acquisition>> {
        self.inner.acquisitions(pipeline).await
    }
}
