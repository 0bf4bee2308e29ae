//! The `kill -9` drill against the emulator (issue 11): a process runs a blue/green deployment of
//! every AWS backend with its journal in SQLite (`src/bin/sendy-deploy-aws.rs`); the driver kills it
//! with SIGKILL at a random instant, starts it again with the same commit, and checks what the
//! account and the store say: every execution ends succeeded, resumed where it stood; traffic only on
//! the environment that passed verification and runs the commit; at most one build per commit; the
//! store opens cleanly with nothing left unfinished.
//!
//! `SENDY_KILL_POINTS` (default 30) sets how many deployments are killed; `SENDY_KILL_SEED` replays
//! a run. The figures of the long run are in `docs/reliability.md`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use sendy_cd::store::Store;
use sendy_cd::store::sqlite::SqliteStore;
use sendy_cd::{ExecutionRecord, Outcome, StepOutcome};
use sendy_cd_tests::world::{PROJECT, RECORD, World};
use sendy_cd_tests::{emulator, scratch};

/// Starts one deploying process for `commit`.
fn spawn(world: &Path, store: &Path, commit: &str) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_sendy-deploy-aws"))
        .args([world.to_str().unwrap(), store.to_str().unwrap(), commit])
        .env("AWS_ENDPOINT_URL", emulator::endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the deploying process starts")
}

/// Runs one process for `commit` to its end and returns its JSON line.
async fn run_to_end(world: &Path, store: &Path, commit: &str) -> serde_json::Value {
    let out = spawn(world, store, commit).wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Where the newest execution of `commit` in the store stood: its last step and how that step stood.
async fn stood(store: &Path, commit: &str) -> String {
    let store = SqliteStore::open(store).expect("the store opens cleanly after kill -9");
    let page = store.history("drill", 1, None).await.expect("history");
    let of_commit = page.records.into_iter().find(|r| r.revision.as_ref().is_some_and(|r| r.commit.as_str() == commit));
    match of_commit.as_ref() {
        Some(r) if r.outcome.is_final() => "after its end".into(),
        Some(r) => match r.steps.last() {
            Some(s) if s.outcome == StepOutcome::Started => format!("in {:?}", s.step),
            Some(s) => format!("after {:?}", s.step),
            None => "before its first step".into(),
        },
        None => "before its first write".into(),
    }
}

/// How many builds of `commit` the project has.
async fn builds_of(codebuild: &aws_sdk_codebuild::Client, commit: &str) -> usize {
    let ids = codebuild.list_builds_for_project().project_name(PROJECT).send().await.unwrap().ids().to_vec();
    if ids.is_empty() {
        return 0;
    }
    let mut n = 0;
    for chunk in ids.chunks(100) {
        let out = codebuild.batch_get_builds().set_ids(Some(chunk.to_vec())).send().await.unwrap();
        n += out.builds().iter().filter(|b| b.source_version() == Some(commit)).count();
    }
    n
}

/// The weights of the record's set identifiers, and the image each service's task definition runs.
async fn account_state(
    config: &sendy_cd::aws::AwsConfig,
    zone: &str,
) -> (BTreeMap<String, i64>, BTreeMap<String, String>) {
    let r53 = aws_sdk_route53::Client::new(config.sdk_config());
    let sets = r53.list_resource_record_sets().hosted_zone_id(zone).send().await.unwrap();
    let weights = sets
        .resource_record_sets()
        .iter()
        .filter(|s| s.name().trim_end_matches('.') == RECORD)
        .filter_map(|s| Some((s.set_identifier()?.to_owned(), s.weight()?)))
        .collect();
    let ecs = aws_sdk_ecs::Client::new(config.sdk_config());
    let mut images = BTreeMap::new();
    for env in ["blue", "green"] {
        let svc = ecs.describe_services().cluster(format!("app-{env}")).services(env).send().await.unwrap();
        let td = svc.services()[0].task_definition().unwrap().to_owned();
        let td = ecs.describe_task_definition().task_definition(td).send().await.unwrap();
        let image = td.task_definition().unwrap().container_definitions()[0].image().unwrap_or_default().to_owned();
        images.insert(env.to_owned(), image);
    }
    (weights, images)
}

fn seed() -> u64 {
    std::env::var("SENDY_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn a_deployment_killed_at_random_instants_is_resumed_on_the_emulator() {
    let points: usize = std::env::var("SENDY_KILL_POINTS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let seed = seed();
    eprintln!("kill drill: {points} deployments, SENDY_KILL_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let world = World::create(&config, &sendy_cd_tests::healthy_endpoint().await).await;
    let scratch = scratch("kill-drill");
    let dir = scratch.path();
    let (world_file, store) = (dir.join("world.json"), dir.join("state.db"));
    std::fs::write(&world_file, world.to_json()).unwrap();
    let codebuild = aws_sdk_codebuild::Client::new(config.sdk_config());
    let commit =
        |rng: &mut fastrand::Rng| (0..40).map(|_| char::from(b"0123456789abcdef"[rng.usize(..16)])).collect::<String>();

    // One whole deployment, unkilled: how long the window to kill in is.
    let first = commit(&mut rng);
    World::push_image(&config, &first).await;
    let began = Instant::now();
    let line = run_to_end(&world_file, &store, &first).await;
    let whole = began.elapsed();
    assert_eq!(line["result"], "succeeded", "{line}");
    eprintln!("one whole deployment (a process start included): {whole:?}");
    // Where each step of that run lay, from the process's start: a kill instant is drawn in a step
    // drawn uniformly, so that kills spread over every step, not in proportion to their durations.
    let calibration = SqliteStore::open(&store).unwrap().history("drill", 1, None).await.unwrap().records;
    let calibration = &calibration[0];
    let offset = whole.saturating_sub(Duration::from_millis(calibration.duration_ms.unwrap()));
    let steps: Vec<(Duration, Duration)> = calibration
        .steps
        .iter()
        .map(|s| {
            let start = offset + Duration::from_millis(s.started_ms);
            (start, offset + Duration::from_millis(s.finished_ms.unwrap_or(s.started_ms)) - start)
        })
        .collect();

    let mut landed = BTreeMap::<String, u32>::new();
    let mut ended = BTreeMap::<String, u32>::new();
    for point in 0..points {
        let commit = commit(&mut rng);
        World::push_image(&config, &commit).await;
        // Kill once, or twice (the second time while it resumes), at a uniform instant of a whole run.
        let kills = 1 + usize::from(rng.bool());
        let mut here = vec![];
        for kill in 0..kills {
            let mut child = spawn(&world_file, &store, &commit);
            let at = if kill == 0 {
                let (start, length) = steps[rng.usize(..steps.len())];
                start + length.mul_f64(rng.f64())
            } else {
                whole.mul_f64(rng.f64())
            };
            match tokio::time::timeout(at, child.wait()).await {
                Err(_) => {
                    child.start_kill().unwrap(); // SIGKILL
                    child.wait().await.unwrap();
                    let stood = stood(&store, &commit).await;
                    here.push(stood.clone());
                    *landed.entry(stood).or_default() += 1;
                }
                Ok(status) => {
                    assert!(status.unwrap().success());
                    *landed.entry("not killed: it ended first".into()).or_default() += 1;
                }
            }
        }
        // A process that lost its lease (a loaded machine kept its renewal late) stops before its
        // next change, as designed; the next process resumes what it left.
        let mut line = run_to_end(&world_file, &store, &commit).await;
        for _ in 0..5 {
            if line["result"] != "lease_lost" {
                break;
            }
            *landed.entry("stopped itself: lease lost".into()).or_default() += 1;
            line = run_to_end(&world_file, &store, &commit).await;
        }
        let how = match line["resumed_by"].as_str() {
            Some(r) if r.contains("resumed forward") => "succeeded, resumed forward",
            Some(_) => "resumed otherwise",
            None => "succeeded without resuming",
        };
        assert_eq!(line["result"], "succeeded", "point {point} (seed {seed}): {line}");
        *ended.entry(how.into()).or_default() += 1;

        // What the account and the store say now.
        let reopened = SqliteStore::open(&store).expect("the store opens cleanly");
        let records: Vec<ExecutionRecord> = reopened.history("drill", 100, None).await.unwrap().records;
        assert!(records.iter().all(|r| r.is_complete()), "point {point} (seed {seed}): a record left unfinished");
        let record = records.iter().find(|r| r.revision.as_ref().is_some_and(|r| r.commit.as_str() == commit)).unwrap();
        assert_eq!(record.outcome, Outcome::Succeeded, "point {point} (seed {seed})");
        // A process started again after the deployment ended runs it again: a second execution
        // of the commit, with no build (nothing changes while it is live).
        let of_commit: Vec<_> =
            records.iter().filter(|r| r.revision.as_ref().is_some_and(|r| r.commit.as_str() == commit)).collect();
        assert!(
            of_commit.iter().all(|r| r.outcome == Outcome::Succeeded),
            "point {point} (seed {seed}): {of_commit:#?}"
        );
        let builds = builds_of(&codebuild, &commit).await;
        let journal = |r: &&ExecutionRecord| {
            let steps: Vec<_> =
                r.steps.iter().map(|s| format!("{:?} {:?} {:?}", s.step, s.outcome, s.detail)).collect();
            format!("{} {:?} {:?}\n  {}", r.id, r.outcome, r.resumed_by, steps.join("\n  "))
        };
        assert!(
            builds <= 1,
            "point {point} (seed {seed}): {builds} builds of {commit} (kills: {here:?}):\n{}",
            of_commit.iter().map(journal).collect::<Vec<_>>().join("\n")
        );
        let (weights, images) = account_state(&config, &world.zone).await;
        let target = record.target.as_ref().unwrap().as_str();
        let live: Vec<_> = weights.iter().filter(|(_, w)| **w > 0).map(|(s, _)| s.as_str()).collect();
        assert_eq!(live, [target], "point {point} (seed {seed}): all traffic on the target {weights:?}");
        assert!(
            images[target].contains(&format!(":{commit}")),
            "point {point} (seed {seed}): the target runs the commit: {images:?}"
        );
        let verified =
            |r: &&ExecutionRecord| r.verifications.iter().any(|v| v.passed && v.environment.as_str() == target);
        assert!(of_commit.iter().any(verified), "point {point} (seed {seed}): the target passed its checks");
    }
    eprintln!("kill points by where the process stood: {landed:?}");
    eprintln!("deployments by how they ended: {ended:?}");
    let killed: u32 = landed.iter().filter(|(k, _)| !k.starts_with("not killed")).map(|(_, n)| n).sum();
    assert!(killed as usize >= points / 2, "most kills landed mid-run: {landed:?}");
}

/// Resuming an execution killed just after its weights moved costs only the reads that reconcile it,
/// counted on the emulator's recorder: the weights read back (and the verification, over HTTP, which
/// the emulator does not see); no weight change, build, change set or rollout is made again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn resuming_after_the_weights_moved_costs_only_reads() {
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let world = World::create(&config, &sendy_cd_tests::healthy_endpoint().await).await;
    let scratch = scratch("kill-after-weights");
    let dir = scratch.path();
    let (world_file, store) = (dir.join("world.json"), dir.join("state.db"));
    std::fs::write(&world_file, world.to_json()).unwrap();
    let commit = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
    World::push_image(&config, commit).await;
    let mut child = spawn(&world_file, &store, commit);
    // Kill it as soon as its journal says the weights moved.
    let moved = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(reader) = SqliteStore::open(&store)
                && let Ok(page) = reader.history("drill", 1, None).await
                && page.records.first().is_some_and(|r| {
                    r.steps.iter().any(|s| s.step == sendy_cd::Step::SetWeights && s.outcome == StepOutcome::Done)
                })
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(moved.is_ok(), "the weights never moved");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let at_death = stood(&store, commit).await;

    emulator::start_recording().await;
    let line = run_to_end(&world_file, &store, commit).await;
    emulator::stop_recording().await;
    let mut requests = BTreeMap::<String, u32>::new();
    for op in emulator::recorded().await {
        *requests.entry(op).or_default() += 1;
    }
    eprintln!("killed {at_death}; resuming cost {requests:?}");
    assert_eq!(line["result"], "succeeded", "{line}");
    assert!(line["resumed_by"].as_str().is_some_and(|r| r.contains("resumed forward")), "{line}");
    let reads = ["ListResourceRecordSets", "GetChange"];
    assert!(requests.keys().all(|op| reads.contains(&op.as_str())), "only reads: {requests:?}");
    assert!(requests.values().sum::<u32>() <= 3, "{requests:?}");
}
