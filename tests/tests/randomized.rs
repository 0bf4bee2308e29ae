//! Many seeds of random fault schedules, random revision behaviours, random strategies and random
//! cancellation, each holding the pipeline's invariants (see `assert_invariants`).
//!
//! Every source of randomness is seeded from the seed (the schedule, the simulated durations, the
//! pipeline's poll and retry jitter), so a seed reproduces its run exactly; a failing seed is named
//! in the failure. `SENDY_SEEDS=N` runs seeds `0..N` (400 by default), `SENDY_SEED=S` seed `S` alone:
//!
//! ```text
//! SENDY_SEEDS=10000 cargo test --release -p sendy-cd-tests --test randomized -- --nocapture
//! ```

use std::time::Duration;

use sendy_cd::memory::{Behavior, Fault, Health, Injection, Op, SimConfig};
use sendy_cd::{CancellationToken, Outcome, Strategy};
use sendy_cd_tests::{account_with, assert_invariants, canary, pipeline_builder, serving};

const SEEDS: u64 = 400;

/// The seeds to run: `SENDY_SEED` alone, or `0..SENDY_SEEDS` (default [`SEEDS`]).
fn seeds() -> std::ops::Range<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    match (var("SENDY_SEED"), var("SENDY_SEEDS")) {
        (Some(seed), _) => seed..seed + 1,
        (None, Some(n)) => 0..n,
        (None, None) => 0..SEEDS,
    }
}

fn random_strategy(rng: &mut fastrand::Rng) -> Strategy {
    match rng.u8(0..3) {
        0 => Strategy::AllAtOnce,
        1 => Strategy::BlueGreen,
        _ => canary(),
    }
}

fn random_behavior(rng: &mut fastrand::Rng) -> Behavior {
    let mut b = Behavior::default();
    match rng.u8(0..10) {
        0 => b.build_failure = Some("tests failed".into()),
        1 => b.stack_failure = Some("resource limit".into()),
        2 => b.crashing = true,
        3 => b.health = Health::Unhealthy,
        4 => b.health = Health::UnhealthyUnderTraffic,
        _ => {}
    }
    b
}

fn random_faults(rng: &mut fastrand::Rng) -> Vec<Injection> {
    (0..rng.usize(0..5))
        .map(|_| {
            let op = Op::ALL[rng.usize(0..Op::ALL.len())];
            let fault = match rng.u8(0..5) {
                0 => Fault::Fail,
                1 => Fault::Throttle,
                2 => Fault::Transient,
                3 => Fault::LoseAnswer,
                _ => Fault::Hang,
            };
            Injection::new(op, fault).after(rng.u32(0..6)).times(rng.u32(1..4))
        })
        .collect()
}

/// One seed: a warm-up, a random revision under random faults and cancellation, then a good revision.
/// Returns how the random execution ended.
async fn run_seed(seed: u64) -> String {
    let mut rng = fastrand::Rng::with_seed(seed);
    let account = account_with(SimConfig::default().jitter(0.2).seed(seed));
    let strategy = random_strategy(&mut rng);
    let pipeline = pipeline_builder(&account, strategy.clone()).seed(seed).build().expect("a valid pipeline");
    // A first, clean deployment so that every environment has a history.
    let warmup = account.push("main", "warm-up", "seed").unwrap();
    let record = pipeline.run(warmup).await.unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded, "warm-up");

    let revision = account.push("main", "random", "seed").unwrap();
    let behavior = random_behavior(&mut rng);
    account.set_behavior(&revision.commit, behavior.clone());
    let faults = random_faults(&mut rng);
    let faulty = !faults.is_empty();
    for injection in faults {
        account.inject(injection);
    }
    let before = serving(&account);
    let cancel = CancellationToken::new();
    let cancel_after = (rng.u8(0..4) == 0).then(|| Duration::from_secs(rng.u64(1..1200)));
    let task = {
        let (pipeline, cancel) = (pipeline.clone(), cancel.clone());
        tokio::spawn(async move { pipeline.run_until_cancelled(revision, &cancel).await })
    };
    if let Some(after) = cancel_after {
        tokio::time::sleep(after).await;
        cancel.cancel();
    }
    let record = task.await.unwrap().unwrap();
    account.clear_faults();
    assert_invariants(&account, &record, &before);
    // The outcome follows the script: a revision scripted to fail never succeeds, and one with
    // nothing against it (no fault, no cancellation) always does.
    if behavior != Behavior::default() {
        assert!(!matches!(record.outcome, Outcome::Succeeded), "{behavior:?} succeeded ({strategy:?})");
    } else if !faulty && cancel_after.is_none() {
        assert_eq!(record.outcome, Outcome::Succeeded, "nothing was against it ({strategy:?})");
    }
    let key = match &record.outcome {
        Outcome::Succeeded => "succeeded".to_owned(),
        Outcome::Failed { stage, .. } => format!("failed at {stage}"),
        Outcome::Cancelled { .. } => "cancelled".to_owned(),
        other => panic!("not over: {other:?}"),
    };

    // Whatever happened, the pipeline deploys the next good revision.
    let next = account.push("main", "next", "seed").unwrap();
    let before = serving(&account);
    let record = pipeline.run(next).await.unwrap();
    assert_invariants(&account, &record, &before);
    assert_eq!(record.outcome, Outcome::Succeeded, "{strategy:?}: the next revision deploys");
    key
}

#[tokio::test(start_paused = true)]
async fn invariants_hold_under_random_faults() {
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    let seeds = seeds();
    let count = seeds.end - seeds.start;
    for seed in seeds {
        // Each seed on a task of its own, so that a failure names its seed.
        match tokio::spawn(run_seed(seed)).await {
            Ok(key) => *outcomes.entry(key).or_default() += 1,
            Err(e) => {
                let why = e.try_into_panic().ok().and_then(|p| {
                    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                });
                panic!(
                    "seed {seed} failed: {}\nreproduce it with SENDY_SEED={seed} cargo test -p sendy-cd-tests --test randomized",
                    why.unwrap_or_default()
                );
            }
        }
    }
    eprintln!("outcomes over {count} seeds: {outcomes:?}");
    if count >= SEEDS {
        // The schedule really exercises failures and successes.
        assert!(outcomes.get("succeeded").copied().unwrap_or(0) > 40, "{outcomes:?}");
        assert!(outcomes.keys().filter(|k| k.starts_with("failed")).count() >= 4, "{outcomes:?}");
        assert!(outcomes.get("cancelled").copied().unwrap_or(0) > 10, "{outcomes:?}");
    }
}

/// The same seed gives the same record, twice: nothing random is left unseeded.
#[tokio::test(start_paused = true)]
async fn a_seed_reproduces_its_run_exactly() {
    async fn record(seed: u64) -> (Vec<sendy_cd::StageRecord>, Vec<sendy_cd::StepRecord>, Outcome) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let account = account_with(SimConfig::default().jitter(0.2).seed(seed));
        let pipeline = pipeline_builder(&account, random_strategy(&mut rng)).seed(seed).build().unwrap();
        let revision = account.push("main", "random", "seed").unwrap();
        account.set_behavior(&revision.commit, random_behavior(&mut rng));
        for injection in random_faults(&mut rng) {
            account.inject(injection);
        }
        let r = pipeline.run(revision).await.unwrap();
        (r.stages, r.steps, r.outcome)
    }
    for seed in 0..20 {
        assert_eq!(record(seed).await, record(seed).await, "seed {seed}");
    }
}
