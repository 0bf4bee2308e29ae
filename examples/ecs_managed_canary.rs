//! ECS shifts the traffic, the pipeline judges it: one service behind a load balancer whose own
//! `CANARY` deployment (10 %, baked five minutes) moves production traffic between two target groups.
//! ECS pauses at each `PAUSE` hook; the pipeline checks the new revision through the test listener,
//! judges the canary step by its metrics against the old revision's target group over the same
//! minutes, and answers `CONTINUE` or `ROLLBACK`. The first revision is healthy and goes through; the
//! second is three times slower at p99: the analysis fails it at the first step and ECS rolls it
//! back at the pipeline's `ROLLBACK`.
//!
//! Run: `cargo run --example ecs_managed_canary`

use std::sync::Arc;

use sendy_cd::analysis::Analysis;
use sendy_cd::memory::{Account, Behavior, ManagedConfig, Traffic};
use sendy_cd::{EcsManaged, EventKind, ExecutionRecord, Outcome, Pipeline, Recovery, Strategy};
use sendy_cd_examples::{describe, simulated};

fn main() -> sendy_cd::Result<()> {
    simulated(ecs_managed_canary())
}

async fn ecs_managed_canary() -> sendy_cd::Result<()> {
    let account = Account::new();
    // ECS's CANARY strategy with PAUSE hooks at POST_TEST_TRAFFIC_SHIFT, PRE_PRODUCTION_TRAFFIC_SHIFT
    // and POST_PRODUCTION_TRAFFIC_SHIFT: every decision is the pipeline's.
    account.create_managed_service("shop", ManagedConfig::default())?;
    let pipeline = Pipeline::builder()
        .image_builder(account.image_builder())
        .environment(account.managed_environment("shop")?.build()?)
        // 200 requests a second, split between the two target groups as ECS weighs them.
        .metrics(account.metrics(200.0)?)
        .strategy(Strategy::EcsManaged(EcsManaged::default().analysis(Analysis::default())))
        .seed(7)
        .sink(Arc::new(|event: &sendy_cd::Event| match &event.kind {
            EventKind::AnalysisJudged { phase, intervals, score, verdict, .. } => {
                let verdict = verdict.map_or_else(|| "undecided: one more minute".to_owned(), |v| v.to_string());
                println!(
                    "  [{:>5.1} min] {phase}: {intervals} min judged, score {score:.0}, {verdict}",
                    minutes(event.elapsed_ms)
                );
            }
            EventKind::ManagedStage { stage, production_percent, .. } => {
                let share = production_percent
                    .map(|p| format!(" ({p:.0}% of production on the new revision)"))
                    .unwrap_or_default();
                println!("  [{:>5.1} min] ECS: {stage}{share}", minutes(event.elapsed_ms));
            }
            EventKind::HookDecided { stage, action, .. } => {
                println!("  [{:>5.1} min] the pipeline answers the {stage} hook: {action}", minutes(event.elapsed_ms));
            }
            _ => {}
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
    assert!(matches!(record.outcome, Outcome::Failed { recovery: Recovery::ServiceRolledBack { .. }, .. }));
    println!("serving now: {}", account.managed_serving("shop").map(|i| i.to_string()).unwrap_or_default());
    Ok(())
}

fn minutes(ms: u64) -> f64 {
    ms as f64 / 60_000.0
}

fn report(record: &ExecutionRecord) {
    if let Some(managed) = &record.managed {
        println!("  service deployment {}", managed.deployment);
        println!(
            "    revisions {} -> {}",
            managed.revisions_before.join(", "),
            managed.revision_after.as_deref().unwrap_or("?")
        );
        for hook in &managed.hooks {
            println!(
                "    {} at {}% of production: {} ({})",
                hook.stage, hook.production_percent, hook.action, hook.because
            );
        }
        println!("    ended {}", managed.state.as_ref().map(ToString::to_string).unwrap_or_default());
    }
    for analysis in &record.analyses {
        println!(
            "  {} of {} against {}: {:?}",
            analysis.phase, analysis.environment, analysis.baseline, analysis.judgement.verdict
        );
        for m in &analysis.judgement.metrics {
            println!("    {:<12} {}", m.measure.to_string(), m.statistic);
        }
    }
    println!("  outcome: {}", describe(&record.outcome));
}
