//! The deployment dashboard over a simulated account that deploys a revision after another: first
//! a history of 40 deployments in simulated time (one in four fails its checks, one in ten is a slow
//! canary step sent back), then, in real time, a new revision every few seconds while the dashboard
//! serves on loopback. Open the URL it prints: the pipelines page, the history, an execution's
//! timeline that moves as the deployment does, the baselines and DORA pages.
//!
//! Run: `cargo run --example dashboard --features dashboard` (then open http://127.0.0.1:8080/).
//! Options: `--port P` (0 picks a free port), `--seconds N` (stop after N seconds), `--token T`
//! (enable the actions, with this token).

use std::sync::Arc;
use std::time::Duration;

use sendy_cd::dashboard::Dashboard;
use sendy_cd::memory::{Account, Behavior, Health, SimConfig};
use sendy_cd::store::MemoryStore;
use sendy_cd::{Canary, CancellationToken, Pipeline, Strategy};

struct Args {
    port: u16,
    seconds: Option<u64>,
    token: Option<String>,
}

fn args() -> Args {
    let mut out = Args { port: 8080, seconds: None, token: None };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--port" => out.port = value.parse().expect("--port takes a port number"),
            "--seconds" => out.seconds = Some(value.parse().expect("--seconds takes a number")),
            "--token" => out.token = Some(value),
            other => panic!("unknown option {other}: --port, --seconds, --token"),
        }
    }
    out
}

fn main() -> sendy_cd::Result<()> {
    let args = args();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime")
        .block_on(run(args))
}

async fn run(args: Args) -> sendy_cd::Result<()> {
    // Short durations: a deployment takes about 25 s of real time once the history is made.
    let cfg = SimConfig::default()
        .build_duration(Duration::from_secs(8))
        .stack_duration(Duration::from_secs(4))
        .rollout_duration(Duration::from_secs(4))
        .dns_propagation(Duration::from_secs(1))
        .ttl(Duration::from_secs(2));
    let account = Account::with_config(cfg)?;
    account.create_environment("blue")?;
    account.create_environment("green")?;
    let pipeline = Arc::new(
        Pipeline::builder()
            .name("shop")
            .image_builder(account.image_builder())
            .environment(account.environment("blue")?)
            .environment(account.environment("green")?)
            .dns(account.dns())
            .strategy(Strategy::Canary(Canary::new([25, 100], Duration::from_secs(3))))
            .store(MemoryStore::new())
            .clock(account.clock())
            .build()?,
    );

    // A history, in simulated time (the clock is paused: hours pass in moments).
    for n in 0..40 {
        let revision = account.push("main", &format!("change {n}"), "Ada")?;
        if n % 4 == 3 {
            account.set_behavior(&revision.commit, Behavior::default().health(Health::Unhealthy));
        } else if n % 10 == 5 {
            account.set_behavior(&revision.commit, Behavior::default().health(Health::UnhealthyUnderTraffic));
        }
        pipeline.run(revision).await?;
        // A few hours between deployments.
        tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    }

    // From here on, real time.
    tokio::time::resume();
    let mut dashboard = Dashboard::builder().pipeline(Arc::clone(&pipeline)).clock(account.clock());
    if let Some(token) = &args.token {
        dashboard = dashboard.actions(token);
    }
    let dashboard = dashboard.build()?;
    let stop = CancellationToken::new();
    let (addr, server) = dashboard.serve(([127, 0, 0, 1], args.port).into(), stop.clone()).await?;
    println!("dashboard on http://{addr}/ ({} executions so far)", pipeline.executions(100).await?.len());
    let server = tokio::spawn(server);
    if let Some(seconds) = args.seconds {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stop.cancel();
        });
    }
    let mut n = 40;
    loop {
        let revision = account.push("main", &format!("live change {n}"), "Grace")?;
        if n % 4 == 3 {
            account.set_behavior(&revision.commit, Behavior::default().health(Health::UnhealthyUnderTraffic));
        }
        tokio::select! {
            () = stop.cancelled() => break,
            record = pipeline.run_until_cancelled(revision, &stop) => {
                let record = record?;
                println!("{}: {}", record.id, sendy_cd_examples::describe(&record.outcome));
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(3)) => {}
        }
        n += 1;
    }
    server.await.map_err(|e| sendy_cd::Error::Backend(e.to_string().into()))??;
    Ok(())
}
