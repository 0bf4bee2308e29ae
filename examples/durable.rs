//! Executions that outlast their process: a canary dies (as with `kill -9`) after traffic moved to
//! it, and a new pipeline on the same SQLite file resumes it from its journal: it bakes the 10 % step
//! again, checks it, and goes on to 100 % without building the commit again; the record says who
//! resumed it and where the first process stood. (A canary that failed its check there would have
//! sent the traffic back to the environment that had it.)
//!
//! Run: `cargo run --example durable --features sqlite`

use std::sync::Arc;
use std::time::Duration;

use sendy_cd::memory::Account;
use sendy_cd::store::DyingStore;
use sendy_cd::store::sqlite::SqliteStore;
use sendy_cd::{Canary, Pipeline, PipelineBuilder, Strategy};
use sendy_cd_examples::{describe, print_record, simulated};

fn main() -> sendy_cd::Result<()> {
    simulated(durable())
}

fn pipeline(account: &Account) -> sendy_cd::Result<PipelineBuilder> {
    Ok(Pipeline::builder()
        .name("shop-api")
        .image_builder(account.image_builder())
        .environment(account.environment("blue")?)
        .environment(account.environment("green")?)
        .dns(account.dns())
        .strategy(Strategy::Canary(Canary::default().steps(vec![10, 50, 100]).bake(Duration::from_secs(300))))
        .lease_time(Duration::from_secs(2)))
}

async fn durable() -> sendy_cd::Result<()> {
    let dir = std::env::temp_dir().join(format!("sendy-durable-{}", std::process::id()));
    let path = dir.join(".sendy").join("state.db");
    let account = Account::new();
    account.create_environment("blue")?;
    account.create_environment("green")?;
    println!("store: {}", path.display());

    // The first process: its store stops answering after 32 journal writes, during the bake of the
    // 10 % canary step, which is what a process killed at that instant leaves on disk.
    let dying = Arc::new(DyingStore::new(SqliteStore::open(&path)?, 32));
    let first = pipeline(&account)?.store(Arc::clone(&dying)).build()?;
    let mut run = Box::pin(first.run(account.push("main", "Cache sessions in memory", "Ada")?));
    while !dying.died() {
        tokio::select! {
            r = &mut run => { r?; break; }
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    drop(run);
    drop(first);
    println!("the first process died; weights left: {}", account.weights()?);

    // Its lease expires (2 s here, 60 s by default) on the wall clock, as another process sees it.
    std::thread::sleep(Duration::from_millis(2100));

    // A new process: the same file, a new pipeline. `run` would resume what was left first; here it
    // is asked for explicitly.
    let second = pipeline(&account)?.store(SqliteStore::open(&path)?).build()?;
    for record in second.resume().await? {
        println!("\nresumed {}:", record.id);
        print_record(&record);
        println!("resumed by: {}", record.resumed_by.as_deref().unwrap_or("-"));
        println!("outcome: {}", describe(&record.outcome));
        assert!(record.resumed_by.as_deref().is_some_and(|r| r.contains("resumed forward")));
    }
    println!("weights now: {}; builds of the commit: {}", account.weights()?, account.builds().len());
    assert_eq!(account.weights()?.to_string(), "blue=0 green=100", "the canary went on to 100 %");
    assert_eq!(account.builds().len(), 1, "the commit was built once");
    let next = second.run(account.push("main", "Cache sessions in Redis", "Ada")?).await?;
    println!("\nnext deployment: {} -> {}", next.id, describe(&next.outcome));
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
