//! Durable executions (issue 11): the store's contract on every implementation, executions that
//! outlast their process, one holder of a pipeline at a time across processes, a holder that lost its
//! lease changing nothing more, and a process killed with `kill -9` leaving its journal on disk.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sendy_cd::conformance::{self, StoreHarness};
use sendy_cd::memory::{Behavior, Health, Op};
use sendy_cd::store::sqlite::SqliteStore;
use sendy_cd::store::{DyingStore, Holder, ManualClock, MemoryStore, Store};
use sendy_cd::{Error, ExecutionKind, Outcome, Source, Step, StepOutcome, Strategy};
use sendy_cd_tests::{account, assert_invariants, pipeline_builder, scratch, serving};

struct Harness {
    store: Arc<dyn Store>,
    clock: ManualClock,
}

impl StoreHarness for Harness {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
    fn clock(&self) -> &ManualClock {
        &self.clock
    }
}

fn clock() -> ManualClock {
    ManualClock::new(jiff::Timestamp::from_second(2_000_000_000).unwrap())
}

fn sqlite(dir: &tempfile::TempDir, clock: &ManualClock) -> SqliteStore {
    SqliteStore::open_with(dir.path().join("state.db"), Arc::new(clock.clone())).unwrap()
}

#[tokio::test]
async fn the_memory_store_conforms() {
    let clock = clock();
    conformance::store(&Harness { store: Arc::new(MemoryStore::new().clock(clock.clone())), clock }).await;
}

#[tokio::test]
async fn the_sqlite_store_conforms() {
    let clock = clock();
    let dir = scratch("store-conforms");
    let store = sqlite(&dir, &clock);
    assert_eq!(store.schema_version().unwrap(), sendy_cd::store::sqlite::SCHEMA_VERSION);
    conformance::store(&Harness { store: Arc::new(store), clock }).await;
}

#[tokio::test(start_paused = true)]
async fn the_memory_store_keeps_the_newest_executions_only() {
    let account = account();
    let pipeline =
        pipeline_builder(&account, Strategy::AllAtOnce).store(MemoryStore::new().capacity(3)).build().unwrap();
    for n in 0..5 {
        pipeline.run(account.push("main", &format!("c{n}"), "a").unwrap()).await.unwrap();
    }
    let kept = pipeline.executions(10).await.unwrap();
    let ids: Vec<_> = kept.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids[0].starts_with("exec-5-") && ids[2].starts_with("exec-3-"), "{ids:?}");
}

/// What one process ran, another reads: the history, the learned durations, and `switch_back`, which
/// needs to know where traffic came from.
#[tokio::test(start_paused = true)]
async fn a_new_process_on_the_same_store_knows_the_history() {
    let dir = scratch("durable-new-process");
    let path = dir.path().join("state.db");
    let account = account();
    let first =
        pipeline_builder(&account, Strategy::BlueGreen).store(SqliteStore::open(&path).unwrap()).build().unwrap();
    let record = first.run(account.push("main", "one", "a").unwrap()).await.unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded);
    assert_eq!(account.weights().unwrap().to_string(), "blue=0 green=100");
    drop(first);

    // A fresh pipeline over a freshly opened store: what a new process builds.
    let fresh =
        pipeline_builder(&account, Strategy::BlueGreen).store(SqliteStore::open(&path).unwrap()).build().unwrap();
    assert!(fresh.history().is_empty(), "nothing ran in this process");
    let stored = fresh.executions(10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0], record, "the record reads back as it ended");
    let back = fresh.switch_back().await.unwrap();
    assert_eq!(back.kind, ExecutionKind::SwitchBack);
    assert_eq!(back.outcome, Outcome::Succeeded, "{:?}", back.outcome);
    assert_eq!(account.weights().unwrap().to_string(), "blue=100 green=0");
    assert!(back.id.as_str().starts_with("exec-2-"), "numbered after the stored ones: {}", back.id);
    let learned = SqliteStore::open(&path).unwrap().durations("default").await.unwrap();
    assert!(learned.contains_key(&Step::WaitBuild), "{learned:?}");
}

/// Every step is in the store before its call is made: a sink (called in order, inside the
/// execution, as each step is announced and before its call) reads the step's entry back from disk.
#[tokio::test(start_paused = true)]
async fn the_journal_is_written_before_each_call() {
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};
    let dir = scratch("durable-journal");
    let path = dir.path().join("state.db");
    let account = account();
    let reader = SqliteStore::open(&path).unwrap();
    let checked = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let checked = Arc::clone(&checked);
        move |event: &sendy_cd::Event| {
            if let sendy_cd::EventKind::StepStarted { step, .. } = event.kind {
                // The SQLite store answers without waiting: its future is ready at the first poll.
                let read = std::pin::pin!(reader.execution("default", &event.execution));
                let Poll::Ready(record) = read.poll(&mut Context::from_waker(Waker::noop())) else {
                    panic!("the store answered at once")
                };
                let record = record.unwrap().expect("saved");
                let last = record.steps.last().expect("a step");
                checked.lock().unwrap().push((step, last.step, last.outcome.clone()));
            }
        }
    };
    let pipeline = pipeline_builder(&account, Strategy::BlueGreen)
        .store(SqliteStore::open(&path).unwrap())
        .sink(Arc::new(sink))
        .build()
        .unwrap();
    let record = pipeline.run(account.push("main", "one", "a").unwrap()).await.unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded);
    let checked = checked.lock().unwrap().clone();
    assert!(checked.len() >= 10, "{checked:?}");
    for (announced, on_disk, outcome) in checked.iter() {
        assert_eq!((announced, outcome), (on_disk, &StepOutcome::Started), "{checked:?}");
    }
    let stored = SqliteStore::open(&path).unwrap().execution("default", &record.id).await.unwrap();
    assert_eq!(stored.unwrap(), record, "and the record as it ended");
}

/// A holder whose lease was taken (it was paused past its expiry) makes no further mutating call,
/// not even to undo: the new holder owns the pipeline.
#[tokio::test(start_paused = true)]
async fn a_holder_that_lost_its_lease_changes_nothing_more() {
    let clock = clock();
    let store = Arc::new(MemoryStore::new().clock(clock.clone()));
    let account = account();
    let pipeline = pipeline_builder(&account, Strategy::BlueGreen)
        .store(Arc::clone(&store))
        .lease_time(Duration::from_secs(60))
        .build()
        .unwrap();
    let run = tokio::spawn({
        let pipeline = pipeline.clone();
        let revision = account.push("main", "one", "a").unwrap();
        async move { pipeline.run(revision).await }
    });
    // Two minutes into the five-minute build, the process "pauses": its lease expires and another
    // holder takes the pipeline.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(account.calls(Op::BuildStart), 1, "the build started");
    clock.advance(Duration::from_secs(600));
    let other = store.acquire("default", &Holder::this_process("someone else"), Duration::from_secs(3600)).await;
    let other = other.expect("the lease expired: another holder takes it");
    let error = run.await.unwrap().expect_err("the execution is no longer this process's");
    assert!(matches!(error, Error::LeaseLost { .. }), "{error}");
    for op in [Op::BuildStop, Op::StackPlan, Op::StackApply, Op::Deploy, Op::Rollback, Op::DnsSetWeights] {
        assert_eq!(account.calls(op), 0, "{op:?} was called after the lease was lost");
    }
    assert_eq!(account.weights().unwrap().to_string(), "blue=100 green=0");
    // It wrote nothing more either: its journal is left as it stood, for the new holder to settle.
    let left = store.history("default", 10, None).await.unwrap().records;
    assert_eq!(left[0].outcome, Outcome::Running, "{:?}", left[0].outcome);
    store.release(&other).await.unwrap();
    let settled = pipeline.resume().await.unwrap();
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0].outcome, Outcome::Succeeded, "resumed forward, following the build it started");
    assert_eq!(account.builds().len(), 1, "one build of the commit");
}

fn deploy_binary() -> &'static str {
    env!("CARGO_BIN_EXE_sendy-deploy")
}

/// Starts `n` deploying processes at once on the store at `path` and returns each one's JSON line.
fn race(path: &Path, n: usize, mode: &str, build_ms: u64) -> Vec<serde_json::Value> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(deploy_binary())
                .args([path.to_str().unwrap(), mode, &build_ms.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{out:?}");
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect()
}

/// The acquisitions of the race pipeline's lease never overlap; returns how many there were.
async fn no_overlap(path: &Path) -> usize {
    let log = SqliteStore::open(path).unwrap().acquisitions("race").await.unwrap();
    for pair in log.windows(2) {
        assert!(pair[0].ended_at <= pair[1].acquired_at, "two holders at once: {pair:?}");
        assert!(pair[0].token < pair[1].token);
    }
    log.len()
}

/// Eight processes start the same pipeline at once: one deploys, the seven others are refused with
/// the typed error naming it; the store's log of acquisitions shows no two holders at any instant.
#[tokio::test]
async fn eight_processes_racing_deploy_once() {
    let dir = scratch("durable-race");
    let path = dir.path().join("state.db");
    SqliteStore::open(&path).unwrap();
    let results = race(&path, 8, "fail", 1500);
    let won: Vec<_> = results.iter().filter(|r| r["result"] == "succeeded").collect();
    let refused: Vec<_> = results.iter().filter(|r| r["result"] == "lease_held").collect();
    assert_eq!((won.len(), refused.len()), (1, 7), "{results:?}");
    let winner = format!("pid {}", won[0]["pid"]);
    assert!(refused.iter().all(|r| r["error"].as_str().unwrap().contains(&winner)), "{results:?}");
    assert_eq!(no_overlap(&path).await, 1);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.count("race").await.unwrap(), 1, "one execution in the store");
}

/// Told to wait, four racing processes deploy one after another, never two at once.
#[tokio::test]
async fn four_processes_that_wait_take_turns() {
    let dir = scratch("durable-wait");
    let path = dir.path().join("state.db");
    SqliteStore::open(&path).unwrap();
    let results = race(&path, 4, "wait", 300);
    assert!(results.iter().all(|r| r["result"] == "succeeded"), "{results:?}");
    assert_eq!(no_overlap(&path).await, 4);
    let history = SqliteStore::open(&path).unwrap().history("race", 10, None).await.unwrap();
    let ids: Vec<_> = history.records.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    for (n, id) in ids.iter().rev().enumerate() {
        assert!(id.starts_with(&format!("exec-{}-", n + 1)), "numbered in turn, no id twice: {ids:?}");
    }
}

/// `kill -9` during the build: the store opens cleanly and says where the execution stood (its
/// build step started, the build id it got), and the dead process's lease holds the pipeline until
/// it expires, named in the error.
#[tokio::test]
async fn a_process_killed_mid_build_leaves_its_journal() {
    let dir = scratch("durable-kill");
    let path: PathBuf = dir.path().join("state.db");
    SqliteStore::open(&path).unwrap();
    let mut child = Command::new(deploy_binary())
        .args([path.to_str().unwrap(), "fail", "60000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let mut waiting = None;
    for _ in 0..200 {
        let page = store.history("race", 1, None).await.unwrap();
        if let Some(r) = page.records.first()
            && r.steps.iter().any(|s| s.step == Step::WaitBuild)
        {
            waiting = Some(r.clone());
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(waiting.is_some(), "the build wait was journaled");
    Command::new("kill").args(["-9", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());

    let reopened = SqliteStore::open(&path).expect("the store opens cleanly after kill -9");
    let record = reopened.history("race", 1, None).await.unwrap().records.remove(0);
    assert_eq!(record.outcome, Outcome::Running, "nothing closed it");
    let start = record.steps.iter().find(|s| s.step == Step::StartBuild).expect("the build start");
    assert_eq!(start.outcome, StepOutcome::Done);
    assert!(start.detail.as_deref().is_some_and(|d| d.contains(':')), "the build id is journaled: {start:?}");
    let last = record.steps.last().unwrap();
    assert_eq!((last.step, &last.outcome), (Step::WaitBuild, &StepOutcome::Started), "where it stood");
    match reopened.acquire("race", &Holder::this_process("next"), Duration::from_secs(2)).await {
        Err(Error::LeaseHeld { holder, .. }) => {
            assert!(holder.contains(&format!("pid {}", child.id())), "{holder}");
        }
        other => panic!("the dead process's lease holds until it expires: {other:?}"),
    }
}

/// How a crash drill's runs go: resumed forward or settled backward, and how the revision behaves.
#[derive(Clone, Copy, Debug)]
struct Drill {
    forward: bool,
    health: Health,
}

/// One run that dies after `saves` journal writes, then a new pipeline on the same file resumes it.
/// Returns the saves a whole run makes when it does not die (`saves` = `usize::MAX`).
async fn die_and_resume(strategy: Strategy, drill: Drill, saves: usize, name: &str) -> usize {
    let dir = scratch(name);
    let path = dir.path().join("state.db");
    let clock = clock();
    let account = account();
    let before = account.weights().unwrap();
    let serving_before = serving(&account);
    let dying = Arc::new(DyingStore::new(SqliteStore::open_with(&path, Arc::new(clock.clone())).unwrap(), saves));
    // A canary analysed by its metrics reads them from the account (a process's own metric source).
    let builder = |strategy: Strategy| {
        let b = pipeline_builder(&account, strategy.clone());
        match &strategy {
            Strategy::Canary(c) if c.analysis.is_some() => b.metrics(account.metrics(200.0).unwrap()),
            _ => b,
        }
    };
    let first = builder(strategy.clone()).store(Arc::clone(&dying)).build().unwrap();
    let revision = account.push("main", "a change", "a").unwrap();
    account.set_behavior(&revision.commit, Behavior::default().health(drill.health));
    let mut run = Box::pin(first.run(revision.clone()));
    let ran = loop {
        tokio::select! {
            r = &mut run => break Some(r.unwrap()),
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if dying.died() { break None; }
            }
        }
    };
    if let Some(record) = ran {
        assert_invariants(&account, &record, &serving_before);
        return usize::MAX - dying.writes_left();
    }
    drop(run); // the process is gone: nothing it left to tasks runs against the store either
    drop(first);
    // The next process comes six minutes later: CodeBuild (and the simulated account) has forgotten
    // the build's idempotency key, so only the journal can prevent a second build.
    tokio::time::sleep(Duration::from_secs(360)).await;
    let weights_at_death = account.weights().unwrap();

    clock.advance(Duration::from_secs(120)); // its lease expires
    let store = SqliteStore::open_with(&path, Arc::new(clock.clone())).unwrap();
    let second = builder(strategy).store(store).resume_forward(drill.forward).build().unwrap();
    let settled = second.resume().await.unwrap();
    let records = second.executions(10).await.unwrap();
    assert_eq!(records.len(), 1, "{saves}: {records:?}");
    let record = &records[0];
    assert!(record.is_complete(), "{saves}: every record complete: {record:?}");
    let builds = account.builds();
    assert!(builds.len() <= 1, "{saves}: at most one build of the commit: {builds:?}");
    let after = account.weights().unwrap();
    if settled.is_empty() {
        // It died after its last write: nothing was left to settle.
        assert!(record.outcome != Outcome::Running, "{saves}");
        assert_eq!(after, weights_at_death);
    } else if drill.forward {
        assert_eq!(settled[0].id, record.id);
        assert!(record.resumed_by.as_deref().is_some_and(|r| r.contains("resumed forward")), "{saves}: {record:?}");
        // A healthy revision ends live on the target; one that fails its checks ends with the
        // traffic back where it was: never on an environment that failed its checks.
        assert_invariants(&account, record, &serving_before);
        let expected = matches!(drill.health, Health::Healthy);
        assert_eq!(record.outcome == Outcome::Succeeded, expected, "{saves}: {:?}", record.outcome);
    } else {
        assert_eq!(settled[0].id, record.id);
        let Outcome::Interrupted { recovery, .. } = &record.outcome else { panic!("{saves}: {:?}", record.outcome) };
        assert!(record.resumed_by.as_deref().is_some_and(|r| r.contains("backward")), "{saves}: {record:?}");
        // Traffic only on the environment that passed verification: the one that had it.
        assert_eq!(after, before, "{saves}: weights back ({weights_at_death} at death); {recovery:?}");
        assert!(!matches!(recovery, sendy_cd::Recovery::Failed { .. }), "{saves}: {recovery:?}");
        // A build left running is stopped, never left to push an image nobody deploys.
        assert_eq!(account.calls(Op::BuildStop) > 0, record.steps.iter().any(|s| s.step == Step::StopBuild), "{saves}");
    }
    // And the next run works on the same store.
    let next = second.run(account.push("main", "next", "a").unwrap()).await.unwrap();
    assert_eq!(next.outcome, Outcome::Succeeded, "{saves}");
    0
}

/// The crash drill on the simulated account: blue/green, canary and analysed-canary runs die after each of their
/// journal writes in turn; each time a new pipeline on the same SQLite file resumes what was left,
/// forward (the default) for a healthy revision and for one that fails under traffic, and backward:
/// every record complete, one build per commit, traffic only on an environment that passed its
/// checks.
#[tokio::test(start_paused = true)]
async fn a_run_that_dies_at_any_step_is_resumed_by_the_next_process() {
    let drills = [
        Drill { forward: true, health: Health::Healthy },
        Drill { forward: true, health: Health::UnhealthyUnderTraffic },
        Drill { forward: false, health: Health::Healthy },
    ];
    let mut points = 0;
    let analysed = Strategy::Canary(
        sendy_cd::Canary::new([10, 50, 100], Duration::from_secs(60)).analysis(sendy_cd::analysis::Analysis::default()),
    );
    for (name, strategy) in [("bg", Strategy::BlueGreen), ("canary", sendy_cd_tests::canary()), ("analysed", analysed)]
    {
        for (d, drill) in drills.iter().enumerate() {
            let total = die_and_resume(strategy.clone(), *drill, usize::MAX, &format!("drill-{name}-{d}-whole")).await;
            assert!(total > 20, "{total}");
            for saves in 1..total {
                die_and_resume(strategy.clone(), *drill, saves, &format!("drill-{name}-{d}-{saves}")).await;
            }
            points += total - 1;
            eprintln!("{name} {drill:?}: died after each of {} journal writes, resumed every time", total - 1);
        }
    }
    eprintln!("kill points: {points}");
}

/// The secrets drill: a run whose configuration carries recognisable fake secrets (a GitHub token,
/// AWS keys) leaves none of them in the events, the JSON-lines log, the store's file, the errors or
/// the `Debug` output of what holds them.
#[tokio::test(start_paused = true)]
async fn no_secret_reaches_events_logs_the_store_errors_or_debug_output() {
    use sendy_cd::source::github::GitHubSource;
    const TOKEN: &str = "ghp_FAKESECRETTOKEN0123456789abcdefghij";
    const KEY_ID: &str = "AKIAFAKESECRETKEYID0";
    const SECRET_KEY: &str = "FAKE/SECRET/ACCESS/KEY+0123456789abcdefghij";
    let dir = scratch("durable-secrets");
    let (path, log) = (dir.path().join("state.db"), dir.path().join("events.jsonl"));
    let account = account();
    // A source with a token, whose API does not answer: its errors are logged and recorded.
    let source =
        GitHubSource::builder("example", "shop-api").token(TOKEN).api_url("http://127.0.0.1:9").build().unwrap();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_route53::config::Credentials::new(KEY_ID, SECRET_KEY, None, None, "drill"))
        .load()
        .await;
    let aws = sendy_cd::aws::AwsConfig::from_sdk_config(sdk);
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = {
        let events = Arc::clone(&events);
        move |e: &sendy_cd::Event| events.lock().unwrap().push(format!("{e:?} {}", serde_json::to_string(e).unwrap()))
    };
    let pipeline = pipeline_builder(&account, Strategy::BlueGreen)
        .source(source)
        .store(SqliteStore::open(&path).unwrap())
        .sink(Arc::new(sendy_cd::JsonLinesSink::create(&log).unwrap()))
        .sink(Arc::new(sink))
        .watch_interval(Duration::from_secs(5))
        .build()
        .unwrap();
    // `watch` reads the source (and fails), then a run deploys.
    let cancel = sendy_cd::CancellationToken::new();
    let watched = tokio::spawn({
        let (pipeline, cancel) = (pipeline.clone(), cancel.clone());
        async move { pipeline.watch(&cancel).await }
    });
    tokio::time::sleep(Duration::from_secs(12)).await;
    cancel.cancel();
    let watched = watched.await.unwrap();
    let record = pipeline.run(account.push("main", "one", "a").unwrap()).await.unwrap();
    let err = GitHubSource::builder("example", "shop-api")
        .token(TOKEN)
        .api_url("http://127.0.0.1:9")
        .build()
        .unwrap()
        .latest(&sendy_cd::BranchName::parse("main").unwrap())
        .await
        .unwrap_err();
    let shown = format!("{pipeline:?}");
    drop(pipeline);
    let mut haystacks = vec![
        ("Debug of the pipeline", shown),
        ("events", events.lock().unwrap().join("\n")),
        ("JSON-lines log", std::fs::read_to_string(&log).unwrap()),
        ("record", format!("{record:?} {}", serde_json::to_string(&record).unwrap())),
        ("watch", format!("{watched:?}")),
        ("error", format!("{err} {err:?}")),
        ("Debug of the AWS config", format!("{aws:?}")),
    ];
    let mut store_bytes = std::fs::read(&path).unwrap();
    for suffix in ["-wal", "-shm"] {
        store_bytes.extend(std::fs::read(format!("{}{suffix}", path.display())).unwrap_or_default());
    }
    haystacks.push(("store file", String::from_utf8_lossy(&store_bytes).into_owned()));
    let builder = GitHubSource::builder("example", "shop-api").token(TOKEN);
    haystacks.push(("Debug of the source builder", format!("{builder:?}")));
    haystacks.push(("Debug of the source", format!("{:?}", builder.build().unwrap())));
    let mut found = 0;
    for (what, text) in &haystacks {
        assert!(!text.is_empty(), "{what} is empty: nothing was scanned");
        for secret in [TOKEN, KEY_ID, SECRET_KEY, "FAKESECRET"] {
            if text.contains(secret) {
                found += 1;
                eprintln!("secret {secret:?} found in {what}");
            }
        }
    }
    assert_eq!(found, 0, "secrets found");
    assert!(haystacks[1].1.lines().count() > 20, "the log holds the run");
}

/// A store that counts lease acquisitions.
#[derive(Debug)]
struct Counting {
    inner: MemoryStore,
    acquires: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl Store for Counting {
    async fn save(&self, p: &str, r: &sendy_cd::ExecutionRecord) -> sendy_cd::Result<()> {
        self.inner.save(p, r).await
    }
    async fn execution(&self, p: &str, id: &sendy_cd::Id) -> sendy_cd::Result<Option<sendy_cd::ExecutionRecord>> {
        self.inner.execution(p, id).await
    }
    async fn history(
        &self,
        p: &str,
        limit: usize,
        before: Option<sendy_cd::store::Cursor>,
    ) -> sendy_cd::Result<sendy_cd::store::HistoryPage> {
        self.inner.history(p, limit, before).await
    }
    async fn count(&self, p: &str) -> sendy_cd::Result<u64> {
        self.inner.count(p).await
    }
    async fn durations(&self, p: &str) -> sendy_cd::Result<std::collections::BTreeMap<Step, Vec<Duration>>> {
        self.inner.durations(p).await
    }
    async fn learn(&self, p: &str, step: Step, took: Duration) -> sendy_cd::Result<()> {
        self.inner.learn(p, step, took).await
    }
    async fn acquire(&self, p: &str, h: &Holder, ttl: Duration) -> sendy_cd::Result<sendy_cd::store::Lease> {
        self.acquires.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.acquire(p, h, ttl).await
    }
    async fn renew(&self, l: &sendy_cd::store::Lease, ttl: Duration) -> sendy_cd::Result<sendy_cd::store::Lease> {
        self.inner.renew(l, ttl).await
    }
    async fn release(&self, l: &sendy_cd::store::Lease) -> sendy_cd::Result<()> {
        self.inner.release(l).await
    }
    async fn acquisitions(&self, p: &str) -> sendy_cd::Result<Vec<sendy_cd::store::Acquisition>> {
        self.inner.acquisitions(p).await
    }
}

/// Waiting for another process's lease on a paused (simulated) clock paces itself on the wall
/// clock: about five tries a second, not a busy loop, and the typed error when the wait ends.
#[tokio::test(start_paused = true)]
async fn waiting_for_a_lease_on_a_paused_clock_is_no_busy_loop() {
    let store = Arc::new(Counting { inner: MemoryStore::new(), acquires: Default::default() });
    store.acquire("default", &Holder::this_process("another process"), Duration::from_secs(3600)).await.unwrap();
    let account = account();
    let pipeline = pipeline_builder(&account, Strategy::BlueGreen)
        .store(Arc::clone(&store))
        .wait_for_lease(Duration::from_secs(1))
        .build()
        .unwrap();
    let began = std::time::Instant::now();
    let refused = pipeline.run(account.push("main", "x", "a").unwrap()).await;
    assert!(matches!(refused, Err(Error::LeaseHeld { .. })), "{refused:?}");
    let tries = store.acquires.load(std::sync::atomic::Ordering::SeqCst) - 1;
    assert!(began.elapsed() >= Duration::from_secs(1), "waited the second on the wall clock");
    assert!((3..=12).contains(&tries), "{tries} tries in a second");
}
