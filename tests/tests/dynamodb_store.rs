//! The DynamoDB store on the emulator (issue 11): its contract, racing processes, and executions of
//! any length stored one item per step. Run through `bash scripts/test`.

use std::sync::Arc;

use sendy_cd::conformance;
use sendy_cd::store::Store;
use sendy_cd::store::dynamodb::DynamoDbStore;
use sendy_cd::{ExecutionRecord, Id};
use sendy_cd_tests::emulator;

/// The DynamoDB store on the emulator: its contract (the conformance suite, with a clock moved by
/// hand), then 4 processes racing for one pipeline's lease: one deploys, three are refused with the
/// typed error, and the acquisitions never overlap.
#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn dynamodb_store_conforms_and_serializes_racing_processes() {
    use sendy_cd::conformance::StoreHarness;
    use sendy_cd::store::dynamodb::DynamoDbStore;
    use sendy_cd::store::{ManualClock, Store};
    struct Harness(Arc<dyn Store>, ManualClock);
    impl StoreHarness for Harness {
        fn store(&self) -> Arc<dyn Store> {
            self.0.clone()
        }
        fn clock(&self) -> &ManualClock {
            &self.1
        }
    }
    let _guard = emulator::acquire().await;
    let config = emulator::config().await;
    let clock = ManualClock::new(jiff::Timestamp::from_second(2_000_000_000).unwrap());
    let table = emulator::unique("sendy-state");
    let store = DynamoDbStore::new(&config, &table).unwrap().clock(Arc::new(clock.clone()));
    assert!(store.create_table().await.unwrap(), "the table is created");
    assert!(!store.create_table().await.unwrap(), "and only once");
    conformance::store(&Harness(Arc::new(store), clock)).await;

    let race_table = emulator::unique("sendy-race");
    DynamoDbStore::new(&config, &race_table).unwrap().create_table().await.unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_sendy-deploy"))
                .args([&format!("dynamodb:{race_table}"), "fail", "1500"])
                .env("AWS_ENDPOINT_URL", emulator::endpoint())
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_REGION", "us-east-1")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<serde_json::Value> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{out:?}");
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    let won = results.iter().filter(|r| r["result"] == "succeeded").count();
    let refused = results.iter().filter(|r| r["result"] == "lease_held").count();
    assert_eq!((won, refused), (1, 3), "{results:?}");
    let store = DynamoDbStore::new(&config, &race_table).unwrap();
    let log = store.acquisitions("race").await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    for pair in log.windows(2) {
        assert!(pair[0].ended_at <= pair[1].acquired_at, "{pair:?}");
    }
    assert_eq!(store.count("race").await.unwrap(), 1);
}

/// A record with `steps` steps, each with a 300-character detail (1,500 of them are 600 KB: more
/// than DynamoDB's 400 KB item limit).
fn long_record(id: &str, steps: usize) -> ExecutionRecord {
    let step = serde_json::json!({
        "step": "verify", "stage": "verify", "environment": "green", "started_ms": 1, "finished_ms": 2,
        "outcome": {"status": "done"}, "detail": "x".repeat(300), "calls": 1
    });
    serde_json::from_value(serde_json::json!({
        "schema_version": 2, "id": id, "kind": "deploy", "revision": null, "strategy": "blue_green",
        "started_at": "2026-11-27T08:00:00Z", "duration_ms": null, "target": "green", "previous": "blue",
        "image": null, "traffic_before": null, "traffic_after": null, "stages": [],
        "steps": vec![step; steps], "verifications": [], "outcome": {"status": "running"}
    }))
    .unwrap()
}

/// An execution of any length is stored, one item per step: a record of 1,500 steps (600 KB, more
/// than a DynamoDB item holds) is saved and read back whole; a save after one more step changed
/// writes one transaction; a step item lost (a torn write) makes the read skip that record, never
/// fail.
#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn an_execution_of_any_length_is_stored_one_item_per_step() {
    let _guard = emulator::acquire().await;
    let config = emulator::config().await;
    let table = emulator::unique("sendy-long");
    let store = DynamoDbStore::new(&config, &table).unwrap();
    store.create_table().await.unwrap();
    let mut record = long_record("exec-1-long", 1500);
    store.save("p", &record).await.unwrap();
    assert_eq!(store.execution("p", &Id::parse("exec-1-long").unwrap()).await.unwrap().as_ref(), Some(&record));

    record = long_record("exec-1-long", 1501);
    emulator::start_recording().await;
    store.save("p", &record).await.unwrap();
    emulator::stop_recording().await;
    assert_eq!(emulator::recorded().await, ["TransactWriteItems"], "one step more: one request");
    let page = store.history("p", 10, None).await.unwrap();
    assert_eq!(page.records, [record.clone()]);

    // A torn write: the execution's item says 1,501 steps, one of them is gone.
    let dynamo = aws_sdk_dynamodb::Client::new(config.sdk_config());
    let items = dynamo
        .scan()
        .table_name(&table)
        .filter_expression("contains(sk, :step)")
        .expression_attribute_values(":step", aws_sdk_dynamodb::types::AttributeValue::S("#step#000007".into()))
        .send()
        .await
        .unwrap();
    let key = items.items()[0].clone();
    dynamo
        .delete_item()
        .table_name(&table)
        .key("pk", key["pk"].clone())
        .key("sk", key["sk"].clone())
        .send()
        .await
        .unwrap();
    let fresh = DynamoDbStore::new(&config, &table).unwrap();
    assert_eq!(fresh.history("p", 10, None).await.unwrap().records, [], "skipped, not fatal");
    assert_eq!(fresh.execution("p", &record.id).await.unwrap(), None);
}
