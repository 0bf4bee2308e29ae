//! The main job: two commits pushed to a simulated repository, each deployed blue/green through a
//! simulated AWS account with realistic durations (build 5 min, stack 3 min, rollout 2 min, DNS TTL
//! 60 s), printing each stage as it happens with its simulated time.
//!
//! Run: `cargo run --example quickstart`

use std::sync::Arc;
use std::time::Instant as WallClock;

use sendy_cd::memory::Account;
use sendy_cd::{Outcome, Pipeline, Strategy};
use sendy_cd_examples::{clock, print_event, print_record, simulated};

fn main() -> sendy_cd::Result<()> {
    // Simulated time: tokio's clock is paused and jumps ahead whenever every task waits.
    simulated(quickstart())
}

async fn quickstart() -> sendy_cd::Result<()> {
    let wall = WallClock::now();
    let sim = tokio::time::Instant::now();

    // A simulated AWS account with two environments: blue (live, weight 100) and green (idle).
    let account = Account::new();
    account.create_environment("blue")?;
    account.create_environment("green")?;

    let pipeline = Pipeline::builder()
        .source(account.source())
        .image_builder(account.image_builder())
        .environment(account.environment("blue")?)
        .environment(account.environment("green")?)
        .dns(account.dns())
        .strategy(Strategy::BlueGreen)
        .sink(Arc::new(move |event: &sendy_cd::Event| {
            // Events carry the time since their execution started; print the time since the quickstart began.
            let offset = sim.elapsed() - std::time::Duration::from_millis(event.elapsed_ms);
            print_event(offset, event);
        }))
        .build()?;

    for (message, author) in
        [("Add the checkout page", "Ada <ada@example.com>"), ("Speed up search", "Linus <l@example.com>")]
    {
        let revision = account.push("main", message, author)?;
        let record = pipeline.run(revision).await?;
        println!("  record {}:", record.id);
        print_record(&record);
        println!("  weights now: {}\n", account.weights()?);
        assert_eq!(record.outcome, Outcome::Succeeded);
    }

    println!("deployed 2 revisions in {} of simulated time, {:.1?} of real time", clock(sim.elapsed()), wall.elapsed());
    Ok(())
}
