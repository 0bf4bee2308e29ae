//! Requests per operation against the local emulator (figures in `docs/benchmarks.md`): one ECS image
//! rollout through `EcsDeployer`, and the same rollout the AWS CLI way (`register-task-definition`,
//! `update-service`, `wait services-stable`). Needs the emulator: run
//! `bash scripts/bench-aws` (or `cargo bench -p sendy-cd-tests --bench aws_requests` with
//! `SENDY_TEST_EMULATOR` and `SENDY_TEST_PYTHON` set, as `scripts/test` sets them).

use std::collections::BTreeMap;
use std::time::Duration;

use sendy_cd::aws::EcsDeployer;
use sendy_cd::wait::{Check, PollPolicy, Wait};
use sendy_cd::{Deployer, ImageRef, RolloutStatus};
use sendy_cd_tests::emulator;

fn tally(ops: &[String]) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for op in ops {
        *counts.entry(op.clone()).or_insert(0) += 1;
    }
    counts
}

fn line(name: &str, counts: &BTreeMap<String, u32>, polls: u32) {
    let total: u32 = counts.values().sum();
    let per_op: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("| {name} | {} | {polls} | {total} | {} |", total - polls, per_op.join(", "));
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::var("SENDY_TEST_EMULATOR").is_err() {
        println!("aws_requests: SENDY_TEST_EMULATOR is not set; run `bash scripts/bench-aws`");
        return;
    }
    let python = std::env::var("SENDY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    println!("| rollout | requests besides status polls | status polls | all requests | per operation |");
    println!("|---|---|---|---|---|");

    // sendy-cd: DescribeServices, DescribeTaskDefinition, RegisterTaskDefinition, UpdateService, then
    // DescribeServices per status poll.
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    emulator::ecs_service(&aws_sdk_ecs::Client::new(config.sdk_config())).await;
    let deployer = EcsDeployer::new(&config, "shop", "api").unwrap();
    let poll = PollPolicy::default().first(Duration::from_millis(200)).max(Duration::from_millis(200)).jitter(0.0);
    emulator::start_recording().await;
    let rollout = deployer.deploy(&ImageRef::parse("registry.example.com/shop/api:v2").unwrap()).await.unwrap();
    let (status, stats) = Wait::new(&poll, "rollout", Duration::from_secs(60))
        .until(|| async {
            let s = deployer.status(&rollout).await?;
            Ok(if s.is_final() { Check::Ready(s) } else { Check::Pending })
        })
        .await
        .unwrap();
    emulator::stop_recording().await;
    assert!(matches!(status, RolloutStatus::Completed { .. }), "{status:?}");
    let ours = tally(&emulator::recorded().await);
    // A completed rollout also records the revision as good: ListTagsForResource + TagResource, once.
    line("sendy-cd `EcsDeployer` (deploy + status until completed)", &ours, stats.calls);
    assert!(!ours.contains_key("ListTasks") && !ours.contains_key("DescribeTasks"), "{ours:?}");
    drop(_emulator);

    // The AWS CLI way, on a fresh service.
    let _emulator = emulator::acquire().await;
    let arn = emulator::ecs_service(&aws_sdk_ecs::Client::new(config.sdk_config())).await;
    emulator::start_recording().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/emulator/cli_rollout.py");
    let out = std::process::Command::new(&python)
        .args([script, &emulator::endpoint(), &arn, "registry.example.com/shop/api:v2"])
        .output()
        .expect("python runs");
    emulator::stop_recording().await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli = tally(&emulator::recorded().await);
    let cli_polls = cli.get("DescribeServices").copied().unwrap_or(0);
    line("AWS CLI way (`register-task-definition` + `update-service` + `wait services-stable`)", &cli, cli_polls);
}
