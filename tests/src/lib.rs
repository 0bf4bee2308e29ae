//! Fixtures shared by the cross-crate integration tests of sendy-cd (see `tests/`).

pub mod emulator;
pub mod world;

/// Runs `git args` in `dir` as author Ada, returning its output.
///
/// # Panics
/// If git fails.
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// An empty directory under the system's temporary directory, removed with everything in it when
/// the returned guard is dropped (at the end of the test, pass or fail): a test run leaves nothing
/// behind in `/tmp`. Keep the guard alive as long as the directory is used.
pub fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("sendy-cd-{name}-")).tempdir().expect("a scratch directory")
}

use std::sync::Arc;
use std::time::Duration;

use sendy_cd::memory::{Account, SimConfig};
use sendy_cd::{
    Canary, EnvironmentName, ExecutionKind, ExecutionRecord, ImageRef, Outcome, Pipeline, PipelineBuilder, Recovery,
    SetIdentifier, Stage, StageOutcome, Strategy,
};

/// An account with environments `blue` (live) and `green` (idle), realistic durations.
pub fn account() -> Account {
    account_with(SimConfig::default())
}

/// An account with environments `blue` (live) and `green` (idle).
pub fn account_with(cfg: SimConfig) -> Account {
    let account = Account::with_config(cfg).expect("a valid simulated configuration");
    account.create_environment("blue").expect("create blue");
    account.create_environment("green").expect("create green");
    account
}

/// A pipeline builder over `account`'s blue and green environments with `strategy`.
pub fn pipeline_builder(account: &Account, strategy: Strategy) -> PipelineBuilder {
    Pipeline::builder()
        .source(Arc::new(account.source()))
        .image_builder(Arc::new(account.image_builder()))
        .environment(account.environment("blue").expect("blue"))
        .environment(account.environment("green").expect("green"))
        .dns(Arc::new(account.dns()))
        .strategy(strategy)
}

/// A pipeline over `account`'s blue and green environments with `strategy`.
pub fn pipeline(account: &Account, strategy: Strategy) -> Pipeline {
    pipeline_builder(account, strategy).build().expect("a valid pipeline")
}

/// A canary with 10 %, 50 %, 100 % steps and a one-minute bake.
pub fn canary() -> Strategy {
    Strategy::Canary(Canary::new([10, 50, 100], Duration::from_secs(60)))
}

/// The image each environment serves now, by environment name.
pub fn serving(account: &Account) -> Vec<(String, Option<ImageRef>)> {
    ["blue", "green"].iter().map(|e| ((*e).to_owned(), account.serving(e))).collect()
}

/// Asserts what every execution must hold, whatever happened:
/// - the record is complete: it ended, and every stage and step it started ended;
/// - on success, the revision's image is what the target serves, and (blue/green, canary) the target
///   has all the traffic;
/// - on failure or cancellation, undoing never failed, and no environment that serves the new image
///   has traffic (the weights are back where they were before);
/// - `serving_before` is what each environment served before the execution.
///
/// # Panics
/// On any violation, with the record.
pub fn assert_invariants(account: &Account, record: &ExecutionRecord, serving_before: &[(String, Option<ImageRef>)]) {
    let dump = || serde_json::to_string_pretty(record).unwrap_or_default();
    assert!(record.is_complete(), "the record is complete: {}", dump());
    let weights = account.weights().expect("weights");
    let new_image = record.image.as_ref().map(|b| b.image.clone());
    match &record.outcome {
        Outcome::Succeeded => {
            let target = record.target.as_ref().expect("a target");
            if record.kind != ExecutionKind::SwitchBack {
                let served = account.serving(target.as_str());
                assert_eq!(served, new_image, "the target serves the new image: {}", dump());
            }
            if record.strategy != "all_at_once" {
                let live: Vec<_> = weights.live().collect();
                assert_eq!(live, vec![&SetIdentifier::from(target)], "all traffic on the target: {}", dump());
            }
            let stages: Vec<Stage> = record.stages.iter().map(|s| s.stage).collect();
            assert!(!stages.contains(&Stage::Rollback), "a success rolls nothing back: {}", dump());
            // A resumed execution's stage that its first process left is closed as cancelled; the
            // process that resumed it did that stage again, and it succeeded.
            let redone = |at: usize| {
                record.resumed_by.is_some()
                    && record.stages[at].outcome == StageOutcome::Cancelled
                    && record.stages[at + 1..]
                        .iter()
                        .any(|s| s.stage == record.stages[at].stage && s.outcome == StageOutcome::Succeeded)
            };
            assert!(
                (0..record.stages.len()).all(|at| record.stages[at].outcome == StageOutcome::Succeeded || redone(at)),
                "every stage of a success succeeded: {}",
                dump()
            );
        }
        Outcome::Failed { recovery, .. } | Outcome::Cancelled { recovery, .. } => {
            assert!(!matches!(recovery, Recovery::Failed { .. }), "undoing succeeded: {}", dump());
            if let Some(before) = &record.traffic_before
                && record.strategy != "all_at_once"
            {
                assert_eq!(&weights, before, "the weights are back as they were: {}", dump());
            }
            for (env, _) in serving_before {
                let id = SetIdentifier::parse(env.as_str()).expect("valid");
                if weights.weight(&id) > 0 {
                    let now = account.serving(env);
                    let was = &serving_before.iter().find(|(e, _)| e == env).expect("known").1;
                    assert_eq!(&now, was, "a live environment serves what it served before ({env}): {}", dump());
                }
            }
        }
        Outcome::Running => panic!("the execution is over: {}", dump()),
        other => panic!("an outcome these invariants do not know: {other:?}"),
    }
    if let Some(target) = &record.target {
        EnvironmentName::parse(target.as_str()).expect("a valid target");
    }
}

/// Serves `200 ok` to every request on a loopback port, in the background; returns its URL.
///
/// # Panics
/// If no loopback port can be bound.
pub async fn healthy_endpoint() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
            });
        }
    });
    format!("http://{addr}/")
}
