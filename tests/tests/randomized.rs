//! Many seeds of random fault schedules, random revision behaviours, random strategies and random
//! cancellation, each holding the pipeline's invariants (see `assert_invariants`).

use std::time::Duration;

use sendy_cd::memory::{Behavior, Fault, Health, Injection, Op, SimConfig};
use sendy_cd::{CancellationToken, Outcome, Strategy};
use sendy_cd_tests::{account_with, assert_invariants, canary, pipeline, serving};

const SEEDS: u64 = 400;

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
            let fault = match rng.u8(0..4) {
                0 => Fault::Fail,
                1 => Fault::Throttle,
                2 => Fault::Transient,
                _ => Fault::Hang,
            };
            Injection::new(op, fault).after(rng.u32(0..6)).times(rng.u32(1..4))
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn invariants_hold_under_random_faults() {
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    for seed in 0..SEEDS {
        let mut rng = fastrand::Rng::with_seed(seed);
        let account = account_with(SimConfig { jitter: 0.2, seed, ..SimConfig::default() });
        let strategy = random_strategy(&mut rng);
        let pipeline = pipeline(&account, strategy.clone());
        // A first, clean deployment so that every environment has a history.
        let warmup = account.push("main", "warm-up", "seed").unwrap();
        let record = pipeline.run(warmup).await.unwrap();
        assert_eq!(record.outcome, Outcome::Succeeded, "seed {seed}: warm-up");

        let revision = account.push("main", "random", "seed").unwrap();
        account.set_behavior(&revision.commit, random_behavior(&mut rng));
        for injection in random_faults(&mut rng) {
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
        let key = match &record.outcome {
            Outcome::Succeeded => "succeeded".to_owned(),
            Outcome::Failed { stage, .. } => format!("failed at {stage}"),
            Outcome::Cancelled { .. } => "cancelled".to_owned(),
            Outcome::Running => unreachable!(),
        };
        *outcomes.entry(key).or_default() += 1;

        // Whatever happened, the pipeline deploys the next good revision.
        let next = account.push("main", "next", "seed").unwrap();
        let before = serving(&account);
        let record = pipeline.run(next).await.unwrap();
        assert_invariants(&account, &record, &before);
        assert_eq!(record.outcome, Outcome::Succeeded, "seed {seed} ({strategy:?}): the next revision deploys");
    }
    eprintln!("outcomes over {SEEDS} seeds: {outcomes:?}");
    // The schedule really exercises failures and successes.
    assert!(outcomes.get("succeeded").copied().unwrap_or(0) > 40, "{outcomes:?}");
    assert!(outcomes.keys().filter(|k| k.starts_with("failed")).count() >= 4, "{outcomes:?}");
    assert!(outcomes.get("cancelled").copied().unwrap_or(0) > 10, "{outcomes:?}");
}
