//! A canary judged by its metrics: each step is analysed against the environment still serving the
//! old revision, over the same minutes. The first revision is healthy and goes through every step;
//! the second answers its health checks but is three times slower at the 99th percentile: the
//! analysis fails it at the first step (10 %) and all traffic goes back at once. Every verdict is
//! printed with the statistic behind it.
//!
//! Run: `cargo run --example canary_analysis`

use std::sync::Arc;

use sendy_cd::analysis::{Analysis, Judgement};
use sendy_cd::memory::{Account, Behavior, Traffic};
use sendy_cd::{Canary, EventKind, ExecutionRecord, Outcome, Pipeline, Recovery, Strategy};
use sendy_cd_examples::{describe, simulated};

fn main() -> sendy_cd::Result<()> {
    // Simulated time: tokio's clock is paused and jumps ahead whenever every task waits.
    simulated(canary_analysis())
}

async fn canary_analysis() -> sendy_cd::Result<()> {
    let account = Account::new();
    account.create_environment("blue")?;
    account.create_environment("green")?;
    // Judged each minute, for ten minutes at most: the sequential judge stops once it is sure.
    let canary = Canary::default().steps(vec![10, 50, 100]).analysis(Analysis::default());
    let pipeline = Pipeline::builder()
        .image_builder(account.image_builder())
        .environment(account.environment("blue")?)
        .environment(account.environment("green")?)
        .dns(account.dns())
        // The service receives 200 requests a second, split by the DNS weights.
        .metrics(account.metrics(200.0)?)
        .strategy(Strategy::Canary(canary))
        // Seeded polling jitter: the same timeline, hence the same metrics, at every run.
        .seed(7)
        .sink(Arc::new(|event: &sendy_cd::Event| {
            if let EventKind::AnalysisJudged { phase, intervals, score, verdict, .. } = &event.kind {
                let verdict = verdict.map_or_else(|| "undecided: one more minute".to_owned(), |v| v.to_string());
                println!(
                    "  [{:>5.1} min] {phase}: {intervals} min judged, score {score:.0}, {verdict}",
                    minutes(event.elapsed_ms)
                );
            }
        }))
        .build()?;

    println!("1. a healthy revision");
    let good = account.push("main", "Index the orders table", "Ada")?;
    let record = pipeline.run(good).await?;
    report(&record);
    assert_eq!(record.outcome, Outcome::Succeeded);

    println!("\n2. a revision three times slower at p99, healthy to its health checks");
    let slow = account.push("main", "Fetch prices one by one", "Grace")?;
    account.set_behavior(&slow.commit, Behavior::default().traffic(Traffic::default().p99_times(3.0)));
    let record = pipeline.run(slow).await?;
    report(&record);
    println!("weights now: {}", account.weights()?);
    assert!(matches!(record.outcome, Outcome::Failed { recovery: Recovery::TrafficRestored { .. }, .. }));
    Ok(())
}

fn minutes(ms: u64) -> f64 {
    ms as f64 / 60_000.0
}

fn report(record: &ExecutionRecord) {
    for analysis in &record.analyses {
        println!("  {} of {} against {}:", analysis.phase, analysis.environment, analysis.baseline);
        print_judgement(&analysis.judgement);
    }
    println!("  outcome: {}", describe(&record.outcome));
}

fn print_judgement(judgement: &Judgement) {
    for m in &judgement.metrics {
        println!(
            "    {:<12} baseline median {:>8.4}, canary {:>8.4}: {}\n                 {}",
            m.measure.to_string(),
            m.baseline.median,
            m.canary.median,
            m.verdict.map_or_else(|| "undecided".to_owned(), |v| v.to_string()),
            m.statistic
        );
    }
}
