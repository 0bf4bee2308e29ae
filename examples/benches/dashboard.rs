//! The dashboard under load (figures in `docs/benchmarks.md`).
//!
//! `cargo bench -p sendy-cd-examples --features dashboard,sqlite --bench dashboard`: a SQLite store
//! holding 1,000 executions of the pipeline, 50 clients holding its event stream open while a
//! deployment runs (every event goes to each of them), and the execution page of the newest stored
//! execution fetched 200 times over loopback (HTTP/1.1, a new connection each time, one at a time):
//! the median, p90 and worst times, and the same for the JSON history page and the DORA page (which
//! reads the 1,000 records). Without `--bench` (as under `cargo test --benches`) it stores 100
//! executions, opens 5 streams and fetches 20 times, as a smoke test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sendy_cd::dashboard::Dashboard;
use sendy_cd::memory::{Account, SimConfig};
use sendy_cd::store::Store;
use sendy_cd::store::sqlite::SqliteStore;
use sendy_cd::{CancellationToken, Id, Pipeline};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn fetch(addr: std::net::SocketAddr, path: &str) -> (Duration, usize) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut body = vec![];
    s.read_to_end(&mut body).await.expect("read");
    assert!(body.starts_with(b"HTTP/1.1 200"), "{path}: {}", String::from_utf8_lossy(&body[..body.len().min(200)]));
    (started.elapsed(), body.len())
}

fn summary(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    format!("median {:.1} ms, p90 {:.1} ms, worst {:.1} ms", ms(at(0.5)), ms(at(0.9)), ms(*v.last().unwrap()))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> sendy_cd::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let (records, clients, fetches) = if full { (1000, 50, 200) } else { (100, 5, 20) };
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime").block_on(
        async move {
            let dir = std::env::temp_dir().join(format!("sendy-dashboard-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a scratch directory");
            let store = Arc::new(SqliteStore::open(dir.join("state.db"))?);
            // Fast real-time durations: a deployment runs while the clients listen.
            let cfg = SimConfig::default()
                .build_duration(Duration::from_secs(2))
                .stack_duration(Duration::from_secs(1))
                .rollout_duration(Duration::from_secs(1))
                .dns_propagation(Duration::from_millis(200))
                .ttl(Duration::from_millis(500));
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
                    .store(Arc::clone(&store))
                    .build()?,
            );
            // One real execution, copied under new ids: the store holds `records` of them.
            let template = pipeline.run(account.push("main", "template", "Ada")?).await?;
            for n in 2..=records {
                let mut r = template.clone();
                r.id = Id::parse(format!("exec-{n}-bench"))?;
                store.save("shop", &r).await?;
            }
            let newest = store.history("shop", 1, None).await?.records.remove(0).id;
            let stop = CancellationToken::new();
            let dashboard = Dashboard::builder().pipeline(Arc::clone(&pipeline)).build()?;
            let (addr, server) = dashboard.serve(([127, 0, 0, 1], 0).into(), stop.clone()).await?;
            let server = tokio::spawn(server);
            // The stream clients: each reads everything the stream sends.
            let mut streams = vec![];
            for _ in 0..clients {
                let mut s = TcpStream::connect(addr).await.expect("connect");
                s.write_all(b"GET /api/pipelines/shop/events HTTP/1.1\r\nHost: bench\r\n\r\n").await.expect("write");
                streams.push(tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut got = 0usize;
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        got += n;
                    }
                    got
                }));
            }
            // A deployment runs meanwhile: its events go to every client.
            let deploying = tokio::spawn({
                let (p, a) = (Arc::clone(&pipeline), account.clone());
                async move { p.run(a.push("main", "during the measure", "Ada").expect("push")).await }
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut page = vec![];
            let mut size = 0;
            for _ in 0..fetches {
                let (d, n) = fetch(addr, &format!("/pipelines/shop/executions/{newest}")).await;
                page.push(d);
                size = n;
            }
            let mut history = vec![];
            for _ in 0..fetches {
                history.push(fetch(addr, "/api/pipelines/shop/executions?limit=20").await.0);
            }
            let mut dora = vec![];
            for _ in 0..fetches.min(20) {
                dora.push(fetch(addr, "/pipelines/shop/dora?days=30").await.0);
            }
            let record = deploying.await.expect("the deployment task")?;
            stop.cancel();
            server.await.expect("the server task")?;
            let mut received = 0;
            for s in streams {
                received += s.await.expect("a client");
            }
            println!(
                "store: {records} executions (SQLite); {clients} event-stream clients received {received} bytes in all"
            );
            println!("a deployment ran during the measure: {:?}", sendy_cd::dashboard::outcome_name(&record.outcome));
            println!("execution page ({size} bytes), {fetches} fetches: {}", summary(page));
            println!("history JSON (20 of them), {fetches} fetches: {}", summary(history));
            println!("DORA page (reads {} records), {} fetches: {}", records.min(1000), fetches.min(20), summary(dora));
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        },
    )
}
