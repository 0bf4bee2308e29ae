//! The dashboard's JSON API and pages, on the simulated account: every endpoint, pagination, unknown
//! ids (404), bad queries (400), the action token (403 without it), the live event stream, a router
//! mounted under a path, and the static report.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sendy_cd::dashboard::{self, Dashboard};
use sendy_cd::memory::{Account, Behavior, Health};
use sendy_cd::store::{MemoryStore, Store};
use sendy_cd::{Outcome, Pipeline, Strategy};
use serde_json::Value;
use tower::ServiceExt;

const TOKEN: &str = "a-test-token-of-32-characters-ok";

fn account() -> Account {
    let account = Account::new();
    account.create_environment("blue").unwrap();
    account.create_environment("green").unwrap();
    account
}

fn pipeline(account: &Account, store: Arc<MemoryStore>) -> Arc<Pipeline> {
    Arc::new(
        Pipeline::builder()
            .name("shop")
            .image_builder(account.image_builder())
            .environment(account.environment("blue").unwrap())
            .environment(account.environment("green").unwrap())
            .dns(account.dns())
            .strategy(Strategy::BlueGreen)
            .store(store)
            .clock(account.clock())
            .build()
            .unwrap(),
    )
}

async fn get(router: &axum::Router, uri: &str) -> (StatusCode, String) {
    let res = router.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn json(router: &axum::Router, uri: &str) -> Value {
    let (status, body) = get(router, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn post(router: &axum::Router, uri: &str, token: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut req = Request::post(uri).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = router.clone().oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Runs `n` deployments; every third one fails its checks before traffic moves.
async fn deploy(account: &Account, pipeline: &Pipeline, n: usize) {
    for i in 0..n {
        let revision = account.push("main", &format!("change {i}"), "Ada").unwrap();
        if i % 3 == 2 {
            account.set_behavior(&revision.commit, Behavior::default().health(Health::Unhealthy));
        }
        pipeline.run(revision).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn the_api_shows_pipelines_pages_of_history_executions_baselines_and_dora() {
    let account = account();
    let store = Arc::new(MemoryStore::new());
    let pipeline = pipeline(&account, store.clone());
    deploy(&account, &pipeline, 25).await;
    let router = Dashboard::builder().pipeline(pipeline.clone()).clock(account.clock()).build().unwrap().router();

    let list = json(&router, "/api/pipelines").await;
    let shop = &list[0];
    assert_eq!(shop["name"], "shop");
    assert_eq!(shop["strategy"], "blue_green");
    assert_eq!(shop["executions"], 25);
    assert_eq!(shop["actions"], false);
    let weights = account.weights().unwrap();
    let live = if weights.weight(&sendy_cd::SetIdentifier::parse("blue").unwrap()) == 100 { "blue" } else { "green" };
    assert_eq!(shop["live_environment"], live);
    assert_eq!(shop["weights"][live], 100);
    let newest = store.history("shop", 1, None).await.unwrap().records.remove(0);
    assert_eq!(shop["last"]["id"], newest.id.as_str());
    assert!(shop["running"].is_null());
    assert_eq!(json(&router, "/api/pipelines/shop").await["name"], "shop");

    // Pages of ten, newest first, with exact cursors.
    let mut seen = vec![];
    let mut uri = "/api/pipelines/shop/executions?limit=10".to_owned();
    loop {
        let page = json(&router, &uri).await;
        let ids: Vec<String> =
            page["executions"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
        assert!(ids.len() <= 10);
        seen.extend(ids);
        match page["next"].as_u64() {
            Some(next) => uri = format!("/api/pipelines/shop/executions?limit=10&before={next}"),
            None => break,
        }
    }
    let all: Vec<String> =
        store.history("shop", 100, None).await.unwrap().records.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(seen, all, "every execution once, newest first");
    // Filtered by outcome, still exact.
    let failed = json(&router, "/api/pipelines/shop/executions?outcome=failed&limit=100").await;
    let failed: Vec<&str> =
        failed["executions"].as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(failed.len(), 8);
    assert!(failed.iter().all(|o| *o == "failed"));
    let two = json(&router, "/api/pipelines/shop/executions?outcome=failed&limit=2").await;
    let rest =
        json(&router, &format!("/api/pipelines/shop/executions?outcome=failed&limit=100&before={}", two["next"])).await;
    assert_eq!(rest["executions"].as_array().unwrap().len(), 6, "the cursor after two failed ones");

    // One execution, as the store has it.
    let record = json(&router, &format!("/api/pipelines/shop/executions/{}", newest.id)).await;
    assert_eq!(record, serde_json::to_value(&newest).unwrap());

    // Baselines and DORA equal what the figures make of the store's records.
    let records = store.history("shop", 1000, None).await.unwrap().records;
    let b = json(&router, "/api/pipelines/shop/baselines?n=10").await;
    assert_eq!(b, serde_json::to_value(dashboard::baselines(&records, 10)).unwrap());
    let d = json(&router, "/api/pipelines/shop/dora?days=7").await;
    assert_eq!(d["deployments"], 17);
    assert_eq!(d["caught_failures"], 8);
    assert_eq!(d["change_failures"], 0);
    let to: jiff::Timestamp = d["to"].as_str().unwrap().parse().unwrap();
    assert_eq!(d, serde_json::to_value(dashboard::dora(&records, to, 7)).unwrap());
}

#[tokio::test(start_paused = true)]
async fn unknown_ids_are_404_and_bad_queries_400() {
    let account = account();
    let pipeline = pipeline(&account, Arc::new(MemoryStore::new()));
    deploy(&account, &pipeline, 1).await;
    let router = Dashboard::builder().pipeline(pipeline).build().unwrap().router();
    for uri in [
        "/api/pipelines/nope",
        "/api/pipelines/nope/executions",
        "/api/pipelines/shop/executions/exec-999-nothing",
        "/pipelines/shop/executions/exec-999-nothing",
        "/pipelines/nope",
    ] {
        assert_eq!(get(&router, uri).await.0, StatusCode::NOT_FOUND, "{uri}");
    }
    for uri in [
        "/api/pipelines/shop/executions?limit=0",
        "/api/pipelines/shop/executions?limit=101",
        "/api/pipelines/shop/executions?outcome=great",
        "/api/pipelines/shop/executions?limit=ten",
        "/api/pipelines/shop/baselines?n=0",
        "/api/pipelines/shop/dora?days=0",
        "/api/pipelines/shop/dora?days=400",
    ] {
        assert_eq!(get(&router, uri).await.0, StatusCode::BAD_REQUEST, "{uri}");
    }
}

#[tokio::test(start_paused = true)]
async fn actions_need_the_token_and_do_what_they_say() {
    let account = account();
    let pipeline = pipeline(&account, Arc::new(MemoryStore::new()));
    deploy(&account, &pipeline, 2).await;
    // Read-only by default: every action is refused.
    let read_only = Dashboard::builder().pipeline(pipeline.clone()).clock(account.clock()).build().unwrap().router();
    for action in ["switch_back", "redeploy", "cancel"] {
        let (status, _) = post(&read_only, &format!("/api/pipelines/shop/{action}"), Some(TOKEN), "{}").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}");
    }
    let router = Dashboard::builder().pipeline(pipeline.clone()).actions(TOKEN).build().unwrap().router();
    for token in [None, Some("wrong-token-wrong-token-wrong-tok"), Some(&TOKEN[..31])] {
        for action in ["switch_back", "redeploy", "cancel"] {
            let (status, _) = post(&router, &format!("/api/pipelines/shop/{action}"), token, "{}").await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{action} with {token:?}");
        }
    }
    assert_eq!(json(&router, "/api/pipelines").await[0]["actions"], true);
    // Nothing runs: cancel says so.
    let (status, body) = post(&router, "/api/pipelines/shop/cancel", Some(TOKEN), "").await;
    assert_eq!((status, body["started"].clone()), (StatusCode::OK, Value::Bool(false)));
    // Switch back moves the traffic back.
    let before = account.weights().unwrap();
    let (status, _) = post(&router, "/api/pipelines/shop/switch_back", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_ne!(account.weights().unwrap(), before, "traffic switched back");
    // A redeploy needs a commit.
    let (status, _) = post(&router, "/api/pipelines/shop/redeploy", Some(TOKEN), r#"{"commit": "not a commit"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Cancel a running execution.
    let revision = account.push("main", "to cancel", "Ada").unwrap();
    let running = tokio::spawn({
        let p = pipeline.clone();
        async move { p.run(revision).await }
    });
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!json(&router, "/api/pipelines/shop").await["running"].is_null(), "shown running");
    let (status, body) = post(&router, "/api/pipelines/shop/cancel", Some(TOKEN), "").await;
    assert_eq!((status, body["started"].clone()), (StatusCode::OK, Value::Bool(true)));
    let record = running.await.unwrap().unwrap();
    assert!(matches!(record.outcome, Outcome::Cancelled { .. }), "{:?}", record.outcome);
}

#[tokio::test(start_paused = true)]
async fn the_event_stream_carries_a_running_deployment() {
    let account = account();
    let pipeline = pipeline(&account, Arc::new(MemoryStore::new()));
    let router = Dashboard::builder().pipeline(pipeline.clone()).clock(account.clock()).build().unwrap().router();
    let res =
        router.clone().oneshot(Request::get("/api/pipelines/shop/events").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let revision = account.push("main", "streamed", "Ada").unwrap();
    let run = tokio::spawn({
        let p = pipeline.clone();
        async move { p.run(revision).await }
    });
    let mut body = res.into_body();
    let mut text = String::new();
    while !text.contains("event: execution_finished") {
        let frame = body.frame().await.unwrap().unwrap();
        if let Some(data) = frame.data_ref() {
            text.push_str(std::str::from_utf8(data).unwrap());
        }
    }
    run.await.unwrap().unwrap();
    for kind in ["execution_started", "stage_started", "step_finished", "traffic_shifted"] {
        assert!(text.contains(&format!("event: {kind}\ndata: {{")), "{kind} in the stream");
    }
}

#[tokio::test(start_paused = true)]
async fn the_pages_render_every_view_and_link_under_the_mount_path() {
    let account = account();
    let store = Arc::new(MemoryStore::new());
    let pipeline = pipeline(&account, store.clone());
    deploy(&account, &pipeline, 4).await;
    let dash = Dashboard::builder().pipeline(pipeline.clone()).build().unwrap();
    let router = axum::Router::new().nest("/dash", dash.router());
    let newest = store.history("shop", 1, None).await.unwrap().records.remove(0);
    let (status, home) = get(&router, "/dash").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains(r#"href="/dash/pipelines/shop""#), "links under the mount path");
    assert!(home.contains("new EventSource(\"/dash/api/pipelines/shop/events\")"));
    let (_, history) = get(&router, "/dash/pipelines/shop").await;
    assert!(history.contains(&format!("/dash/pipelines/shop/executions/{}", newest.id)));
    let (_, failed) = get(&router, "/dash/pipelines/shop?outcome=failed").await;
    assert_eq!(failed.matches(r#"data-outcome="failed""#).count(), 1);
    assert!(!failed.contains(r#"data-outcome="succeeded""#));
    let (_, page) = get(&router, &format!("/dash/pipelines/shop/executions/{}", newest.id)).await;
    assert!(page.contains(r#"<svg class="timeline""#) && page.contains(r#"id="steps""#));
    assert!(page.contains(r#"data-stage="build""#));
    let (_, fragment) = get(&router, &format!("/dash/pipelines/shop/executions/{}/live", newest.id)).await;
    assert!(fragment.starts_with("<table class=\"summary\">"), "the live part alone");
    let (_, baselines) = get(&router, "/dash/pipelines/shop/baselines").await;
    assert!(baselines.contains(r#"id="baselines""#) && baselines.contains(r#"data-stage="build""#));
    let (_, dora) = get(&router, "/dash/pipelines/shop/dora?days=7").await;
    assert!(dora.contains(r#"id="frequency""#) && dora.contains(r#"<svg class="daily""#));
    // Values are escaped: a commit message with markup is text.
    let revision = account.push("main", "<script>alert(1)</script>", "Ada").unwrap();
    let record = pipeline.run(revision).await.unwrap();
    let (_, page) = get(&router, &format!("/dash/pipelines/shop/executions/{}", record.id)).await;
    assert!(!page.contains("<script>alert(1)</script>") && page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // The static report: one file, no script.
    let report = dashboard::report::html(&record);
    assert!(report.starts_with("<!DOCTYPE html>") && report.contains(record.id.as_str()));
    assert!(!report.contains("<script"), "a report runs no script");
}

#[tokio::test(start_paused = true)]
async fn a_store_alone_is_shown_read_only() {
    let account = account();
    let store = Arc::new(MemoryStore::new());
    let pipeline = pipeline(&account, store.clone());
    deploy(&account, &pipeline, 2).await;
    let router = Dashboard::builder().stored("shop", store).actions(TOKEN).build().unwrap().router();
    let shop = json(&router, "/api/pipelines/shop").await;
    assert_eq!((shop["live"].clone(), shop["executions"].clone()), (Value::Bool(false), Value::from(2)));
    assert_eq!(get(&router, "/api/pipelines/shop/events").await.0, StatusCode::NOT_FOUND);
    assert_eq!(post(&router, "/api/pipelines/shop/switch_back", Some(TOKEN), "").await.0, StatusCode::FORBIDDEN);
    // Bad configurations are refused.
    assert!(Dashboard::builder().build().is_err());
    let s: Arc<dyn Store> = Arc::new(MemoryStore::new());
    assert!(Dashboard::builder().stored("a", s.clone()).stored("a", s.clone()).build().is_err());
    assert!(Dashboard::builder().stored("a", s.clone()).actions("short").build().is_err());
    assert!(Dashboard::builder().stored("a b/c", s).build().is_err());
}

/// A server shutting down ends its event streams: a graceful shutdown does not wait for their
/// clients forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_ends_the_event_streams() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let account = account();
    let pipeline = pipeline(&account, Arc::new(MemoryStore::new()));
    let stop = sendy_cd::CancellationToken::new();
    let dash = Dashboard::builder().pipeline(pipeline).build().unwrap();
    let (addr, server) = dash.serve(([127, 0, 0, 1], 0).into(), stop.clone()).await.unwrap();
    let server = tokio::spawn(server);
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client.write_all(b"GET /api/pipelines/shop/events HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let mut head = [0u8; 64];
    let n = client.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..n]));
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("the server ends").unwrap().unwrap();
    let mut rest = vec![];
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut rest))
        .await
        .expect("the stream ends")
        .unwrap();
}
