//! A canary whose revision passes its checks before traffic, then fails at the first canary step
//! (10 %): all weight goes back to the stable environment at once, and the record says why.
//!
//! Run: `cargo run --example canary_rollback`

use std::sync::Arc;
use std::time::Duration;

use sendy_cd::memory::{Account, Behavior, Health};
use sendy_cd::{Canary, Outcome, Pipeline, Recovery, Strategy};
use sendy_cd_examples::{describe, print_event, print_record, simulated};

fn main() -> sendy_cd::Result<()> {
    // Simulated time: tokio's clock is paused and jumps ahead whenever every task waits.
    simulated(canary_rollback())
}

async fn canary_rollback() -> sendy_cd::Result<()> {
    let account = Account::new();
    account.create_environment("blue")?;
    account.create_environment("green")?;
    let pipeline = Pipeline::builder()
        .image_builder(account.image_builder())
        .environment(account.environment("blue")?)
        .environment(account.environment("green")?)
        .dns(account.dns())
        .strategy(Strategy::Canary(Canary::default().steps(vec![10, 50, 100]).bake(Duration::from_secs(300))))
        .sink(Arc::new(|event: &sendy_cd::Event| print_event(Duration::ZERO, event)))
        .build()?;

    // This revision works in isolation but fails once real users reach it.
    let revision = account.push("main", "Cache sessions in memory", "Ada")?;
    account.set_behavior(&revision.commit, Behavior::default().health(Health::UnhealthyUnderTraffic));

    let record = pipeline.run(revision).await?;
    println!("\nrecord {}:", record.id);
    print_record(&record);
    for v in &record.verifications {
        println!(
            "    check {:<16} {}: {}/{} probes ok{}",
            v.phase,
            v.environment,
            v.report.successes,
            v.report.probes,
            v.report.last_failure.as_ref().map(|f| format!(", last failure: {f}")).unwrap_or_default()
        );
    }
    println!("outcome: {}", describe(&record.outcome));
    println!("weights now: {}", account.weights()?);
    assert!(matches!(record.outcome, Outcome::Failed { recovery: Recovery::TrafficRestored { .. }, .. }));
    Ok(())
}
