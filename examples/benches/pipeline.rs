//! Benchmarks of the deployment engine on the simulated account (figures in `docs/benchmarks.md`).
//!
//! `cargo bench -p sendy-cd-examples --bench pipeline` runs them in full; without `--bench` (as under
//! `cargo test --benches`) a few iterations run as a smoke test. `SENDY_BENCH_SEED` (default 42) seeds
//! the spread of the simulated durations.
//!
//! 1. Real time of one blue/green run with realistic simulated durations (build 5 min, stack 3 min,
//!    rollout 2 min, DNS 30 s + TTL 60 s).
//! 2. Detection lag: simulated time between a stage really finishing and the pipeline noticing, with
//!    the status calls it cost, for the pipeline's pacing and for fixed-interval waiters like the AWS
//!    CLI's.

use std::sync::Arc;
use std::time::{Duration, Instant as WallClock};

use sendy_cd::memory::{Account, SimConfig};
use sendy_cd::wait::PollPolicy;
use sendy_cd::{ExecutionRecord, Outcome, Pipeline, Step, Strategy};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, executions) = if full { (300, 60) } else { (5, 6) };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        real_time(runs).await;
        if std::env::var_os("SENDY_BENCH_ONLY_RUN").is_none() {
            detection_lag(executions).await;
        }
    });
}

fn pipeline(account: &Account, poll: PollPolicy) -> Pipeline {
    account.create_environment("blue").expect("blue");
    account.create_environment("green").expect("green");
    pipeline_on(account, poll, Arc::new(sendy_cd::store::MemoryStore::new()))
}

/// A pipeline over `account`'s environments (created already), keeping its executions in `store`.
fn pipeline_on(account: &Account, poll: PollPolicy, store: Arc<dyn sendy_cd::store::Store>) -> Pipeline {
    Pipeline::builder()
        .store(store)
        .image_builder(Arc::new(account.image_builder()))
        .environment(account.environment("blue").expect("blue"))
        .environment(account.environment("green").expect("green"))
        .dns(Arc::new(account.dns()))
        .strategy(Strategy::BlueGreen)
        .poll_policy(poll)
        .build()
        .expect("a pipeline")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn real_time(runs: usize) {
    let mut wall = vec![];
    let mut run_only = vec![];
    let mut simulated = vec![];
    for _ in 0..runs {
        let started = WallClock::now();
        let sim = tokio::time::Instant::now();
        let account = Account::new();
        let pipeline = pipeline(&account, PollPolicy::default());
        let revision = account.push("main", "bench", "bench").expect("push");
        let before_run = WallClock::now();
        let record = pipeline.run(revision).await.expect("run");
        assert_eq!(record.outcome, Outcome::Succeeded);
        wall.push(started.elapsed().as_secs_f64() * 1000.0);
        run_only.push(before_run.elapsed().as_secs_f64() * 1000.0);
        simulated.push(sim.elapsed().as_secs_f64());
    }
    wall.sort_by(f64::total_cmp);
    run_only.sort_by(f64::total_cmp);
    simulated.sort_by(f64::total_cmp);
    println!("## One blue/green run, realistic durations ({runs} runs)\n");
    println!("| measure | simulated time (median) | real time median | p95 | max |");
    println!("|---|---|---|---|---|");
    for (what, times) in [("account setup included", &wall), ("the run alone (`pipeline.run`)", &run_only)] {
        println!(
            "| {what} | {:.0} s | {:.2} ms | {:.2} ms | {:.2} ms |",
            percentile(&simulated, 0.5),
            percentile(times, 0.5),
            percentile(times, 0.95),
            times[times.len() - 1]
        );
    }
    println!();
}

/// Lag and calls of one wait step: (lag in s, status calls).
fn measure(account: &Account, record: &ExecutionRecord, wait: Step) -> Option<(f64, u32)> {
    let step = |s: Step| record.steps.iter().find(|r| r.step == s);
    let waited = step(wait)?;
    let took = Duration::from_millis(waited.finished_ms? - waited.started_ms);
    let truth = match wait {
        Step::WaitBuild => account.build_duration(&step(Step::StartBuild)?.detail.as_deref()?.parse().ok()?)?,
        Step::WaitStack => account.stack_update_duration(&step(Step::ApplyStack)?.detail.as_deref()?.parse().ok()?)?,
        Step::WaitRollout => {
            let detail = step(Step::Deploy)?.detail.as_deref()?;
            let env = record.target.as_ref()?.as_str();
            account.rollout_duration(env, &detail.trim_start_matches("deployment ").parse().ok()?)?
        }
        _ => return None,
    };
    Some(((took.as_secs_f64() - truth.as_secs_f64()).max(0.0), waited.calls))
}

async fn detection_lag(executions: usize) {
    let fixed = |secs| {
        PollPolicy::default().first(Duration::from_secs(secs)).max(Duration::from_secs(secs)).growth(1.0).jitter(0.0)
    };
    let policies: [(&str, PollPolicy); 3] = [
        ("sendy-cd (default pacing)", PollPolicy::default().seed(Some(7))),
        ("fixed 15 s (AWS CLI services-stable)", fixed(15)),
        ("fixed 30 s (AWS CLI stack-update-complete)", fixed(30)),
    ];
    println!("## Detection lag ({executions} executions per row, stage durations spread ±10 %)\n");
    println!("Lag: simulated time between a stage really finishing and the pipeline noticing. Calls: status calls");
    println!("per stage. The pipeline learns each stage's usual duration from its earlier runs; `first run` is the");
    println!("first execution, before it has learned anything.\n");
    println!("| poller | stage | lag median | lag worst | calls median | calls max | first run: lag / calls |");
    println!("|---|---|---|---|---|---|---|");
    let mut reopened = vec![];
    for (name, poll) in policies {
        let seed = std::env::var("SENDY_BENCH_SEED").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(42);
        let account = Account::with_config(SimConfig::default().jitter(0.1).seed(seed)).expect("valid");
        account.create_environment("blue").expect("blue");
        account.create_environment("green").expect("green");
        let store: Arc<dyn sendy_cd::store::Store> = Arc::new(sendy_cd::store::MemoryStore::new());
        let pipeline = pipeline_on(&account, poll.clone(), Arc::clone(&store));
        let mut records = vec![];
        for n in 0..executions {
            let revision = account.push("main", &format!("bench {n}"), "bench").expect("push");
            let record = pipeline.run(revision).await.expect("run");
            assert_eq!(record.outcome, Outcome::Succeeded);
            records.push(record);
        }
        for (label, wait) in
            [("build 5 min", Step::WaitBuild), ("stack 3 min", Step::WaitStack), ("rollout 2 min", Step::WaitRollout)]
        {
            let first = measure(&account, &records[0], wait).expect("measured");
            let mut lags = vec![];
            let mut calls = vec![];
            for record in &records[1..] {
                let (lag, n) = measure(&account, record, wait).expect("measured");
                lags.push(lag);
                calls.push(f64::from(n));
            }
            lags.sort_by(f64::total_cmp);
            calls.sort_by(f64::total_cmp);
            println!(
                "| {name} | {label} | {:.2} s | {:.2} s | {:.0} | {:.0} | {:.1} s / {} |",
                percentile(&lags, 0.5),
                lags[lags.len() - 1],
                percentile(&calls, 0.5),
                calls[calls.len() - 1],
                first.0,
                first.1
            );
        }
        if name.starts_with("sendy-cd") {
            // What a new process does: a new pipeline on the store the first one wrote, and its first
            // run; 20 times, each a new pipeline.
            let mut fresh_records = vec![];
            for n in 0..20 {
                let fresh = pipeline_on(&account, poll.clone(), Arc::clone(&store));
                let revision = account.push("main", &format!("bench: new process {n}"), "bench").expect("push");
                let record = fresh.run(revision).await.expect("run");
                assert_eq!(record.outcome, Outcome::Succeeded);
                fresh_records.push(record);
            }
            for (label, wait) in [
                ("build 5 min", Step::WaitBuild),
                ("stack 3 min", Step::WaitStack),
                ("rollout 2 min", Step::WaitRollout),
            ] {
                let mut lags = vec![];
                let mut calls = vec![];
                for record in &fresh_records {
                    let (lag, n) = measure(&account, record, wait).expect("measured");
                    lags.push(lag);
                    calls.push(f64::from(n));
                }
                lags.sort_by(f64::total_cmp);
                calls.sort_by(f64::total_cmp);
                let (first_lag, first_calls) = measure(&account, &records[0], wait).expect("measured");
                reopened.push(format!(
                    "| {label} | {:.2} s | {:.2} s | {:.0} | {first_lag:.1} s / {first_calls} |",
                    percentile(&lags, 0.5),
                    lags[lags.len() - 1],
                    percentile(&calls, 0.5),
                ));
            }
        }
    }
    println!();
    println!("### The first run of a pipeline in a new process, on a store with history (20 new pipelines)\n");
    println!("| stage | lag median | lag worst | calls median | first run ever (nothing learned): lag / calls |");
    println!("|---|---|---|---|---|");
    for row in reopened {
        println!("{row}");
    }
    println!();
}
