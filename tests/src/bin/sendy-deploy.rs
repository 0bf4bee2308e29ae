//! One deployment on a simulated account, on the real clock, with its executions and lease in a
//! SQLite store: the process the durability tests start several of at once, or kill.
//!
//! `sendy-deploy STORE MODE BUILD_MS`: STORE is a SQLite file, or `dynamodb:TABLE` (a table on the
//! endpoint `AWS_ENDPOINT_URL` names, with the environment's credentials); MODE `fail` fails at once when another process holds the
//! pipeline's lease, `wait` waits for it (up to 60 s). Prints one JSON line: the process id, the
//! result (`succeeded`, `failed`, `lease_held`, or the error's kind) and the execution id.

use std::time::Duration;

use sendy_cd::memory::{Account, SimConfig};
use sendy_cd::store::sqlite::SqliteStore;
use sendy_cd::wait::PollPolicy;
use sendy_cd::{HealthCheck, Outcome, Pipeline, Strategy};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (store, mode, build_ms) = match args.as_slice() {
        [_, store, mode, build_ms] => (store.clone(), mode.clone(), build_ms.parse::<u64>().unwrap_or(500)),
        _ => {
            eprintln!("usage: sendy-deploy STORE fail|wait BUILD_MS");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let line = rt.block_on(async move {
        let quick = Duration::from_millis(50);
        let cfg = SimConfig::default()
            .build_duration(Duration::from_millis(build_ms))
            .stack_duration(quick)
            .rollout_duration(quick)
            .dns_propagation(quick)
            .ttl(quick)
            .probe_latency(Duration::from_millis(1));
        let account = Account::with_config(cfg).expect("a valid configuration");
        account.create_environment("blue").expect("blue");
        account.create_environment("green").expect("green");
        let store: std::sync::Arc<dyn sendy_cd::store::Store> = match store.strip_prefix("dynamodb:") {
            Some(table) => {
                let config = sendy_cd::aws::AwsConfig::builder().region("us-east-1").load().await.expect("AWS config");
                std::sync::Arc::new(sendy_cd::store::dynamodb::DynamoDbStore::new(&config, table).expect("a table"))
            }
            None => std::sync::Arc::new(SqliteStore::open(&store).expect("the store opens")),
        };
        let mut builder = Pipeline::builder()
            .name("race")
            .store(store)
            .lease_time(Duration::from_secs(2))
            .image_builder(account.image_builder())
            .environment(account.environment("blue").expect("blue"))
            .environment(account.environment("green").expect("green"))
            .dns(account.dns())
            .strategy(Strategy::BlueGreen)
            .poll_policy(PollPolicy::default().first(Duration::from_millis(20)).max(Duration::from_millis(100)))
            .health_check(HealthCheck::default().interval(Duration::from_millis(10)));
        if mode == "wait" {
            builder = builder.wait_for_lease(Duration::from_secs(60));
        }
        let pipeline = builder.build().expect("a valid pipeline");
        let revision = account.push("main", "a change", "Ada <ada@example.com>").expect("push");
        match pipeline.run(revision).await {
            Ok(record) => {
                let result = if record.outcome == Outcome::Succeeded { "succeeded" } else { "failed" };
                serde_json::json!({"pid": std::process::id(), "result": result, "execution": record.id.to_string()})
            }
            Err(e) => serde_json::json!({"pid": std::process::id(), "result": e.kind(), "error": e.to_string()}),
        }
    });
    println!("{line}");
}
