//! The webhook sink against a loopback server: Slack-compatible and JSON payloads, retries after a
//! 5xx, no retry after a 4xx, a timeout, no secret in the payload, and a pipeline's events end to end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sendy_cd::memory::{Account, SimConfig};
use sendy_cd::notify::{WebhookFormat, WebhookSink};
use sendy_cd::{Event, EventSink, Pipeline};
use serde_json::Value;

const SECRET: &str = "T000/B000/XXXXXXXXsecretXXXXXXXX";

#[derive(Clone, Default)]
struct Hook {
    received: Arc<Mutex<Vec<Value>>>,
    calls: Arc<AtomicUsize>,
    /// Answer this status to the first `fail` calls.
    fail: usize,
    status: u16,
    delay: Duration,
}

async fn receive(State(h): State<Hook>, Json(body): Json<Value>) -> StatusCode {
    let n = h.calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(h.delay).await;
    if n < h.fail {
        return StatusCode::from_u16(h.status).unwrap();
    }
    h.received.lock().unwrap().push(body);
    StatusCode::OK
}

async fn server(hook: Hook) -> String {
    let app = axum::Router::new().route(&format!("/services/{SECRET}"), axum::routing::post(receive)).with_state(hook);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/services/{SECRET}")
}

fn event(json: &str) -> Event {
    serde_json::from_str(json).unwrap()
}

fn started() -> Event {
    event(
        r#"{"execution": "exec-7-0123456", "elapsed_ms": 0, "event": "execution_started", "strategy": "canary",
            "revision": {"commit": "0123456789abcdef0123456789abcdef01234567", "branch": "main",
                         "message": "Faster search", "author": "Ada", "time": "2026-11-27T10:00:00Z"}}"#,
    )
}

fn finished() -> Event {
    event(
        r#"{"execution": "exec-7-0123456", "elapsed_ms": 725000, "event": "execution_finished", "duration_ms": 725000,
            "outcome": {"status": "failed", "stage": "traffic", "reason": "green (canary 10%): 3 of 3 probes failed",
                        "recovery": {"action": "traffic_restored", "to": "blue"}}}"#,
    )
}

fn progress() -> Event {
    event(
        r#"{"execution": "exec-7-0123456", "elapsed_ms": 5, "event": "stage_progress", "stage": "build", "message": "x"}"#,
    )
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_messages_of_the_chosen_events_carry_no_secret() {
    let hook = Hook::default();
    let url = server(hook.clone()).await;
    let sink = WebhookSink::builder(&url).pipeline("shop").build().unwrap();
    assert!(!format!("{sink:?}").contains(SECRET), "Debug shows the host only");
    for e in [started(), progress(), finished()] {
        sink.on_event(&e);
    }
    until("two messages", || sink.delivered() == 2).await;
    let received = hook.received.lock().unwrap().clone();
    let texts: Vec<&str> = received.iter().map(|v| v["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        vec![
            "shop exec-7-0123456: deploying 0123456 (Faster search) by Ada, canary",
            "shop exec-7-0123456: FAILED at traffic after 12m05s: green (canary 10%): 3 of 3 probes failed",
        ]
    );
    assert!(received.iter().all(|v| !v.to_string().contains(SECRET) && v.as_object().unwrap().len() == 1));
    assert_eq!(hook.calls.load(Ordering::SeqCst), 2, "the progress event is not posted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_is_retried_a_4xx_is_not_and_a_slow_receiver_times_out() {
    // Two 503s, then accepted: delivered on the third attempt.
    let hook = Hook { fail: 2, status: 503, ..Hook::default() };
    let url = server(hook.clone()).await;
    let sink = WebhookSink::builder(&url).backoff(Duration::from_millis(10)).build().unwrap();
    sink.on_event(&finished());
    until("delivered", || sink.delivered() == 1).await;
    assert_eq!((hook.calls.load(Ordering::SeqCst), sink.failed()), (3, 0));

    // A 404 will not change: one call, dropped.
    let hook = Hook { fail: 10, status: 404, ..Hook::default() };
    let url = server(hook.clone()).await;
    let sink = WebhookSink::builder(&url).backoff(Duration::from_millis(10)).build().unwrap();
    sink.on_event(&finished());
    until("dropped", || sink.failed() == 1).await;
    assert_eq!(hook.calls.load(Ordering::SeqCst), 1);

    // A receiver slower than the timeout: each attempt times out, then the event is dropped.
    let hook = Hook { delay: Duration::from_secs(3), ..Hook::default() };
    let url = server(hook.clone()).await;
    let sink = WebhookSink::builder(&url)
        .timeout(Duration::from_millis(200))
        .attempts(2)
        .backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    sink.on_event(&finished());
    until("timed out twice", || sink.failed() == 1).await;
    assert_eq!((hook.calls.load(Ordering::SeqCst), sink.delivered()), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelines_events_as_json_end_to_end() {
    let hook = Hook::default();
    let url = server(hook.clone()).await;
    let sink =
        Arc::new(WebhookSink::builder(&url).format(WebhookFormat::Json).pipeline("shop").all_events().build().unwrap());
    let cfg = SimConfig::default()
        .build_duration(Duration::from_millis(300))
        .stack_duration(Duration::from_millis(200))
        .rollout_duration(Duration::from_millis(200))
        .dns_propagation(Duration::from_millis(50))
        .ttl(Duration::from_millis(100));
    let account = Account::with_config(cfg).unwrap();
    account.create_environment("blue").unwrap();
    account.create_environment("green").unwrap();
    let pipeline = Pipeline::builder()
        .image_builder(account.image_builder())
        .environment(account.environment("blue").unwrap())
        .environment(account.environment("green").unwrap())
        .dns(account.dns())
        .sink(sink.clone())
        .health_check(sendy_cd::HealthCheck::default().interval(Duration::from_millis(50)))
        .build()
        .unwrap();
    let mut events = pipeline.subscribe();
    let record = pipeline.run(account.push("main", "notified", "Ada").unwrap()).await.unwrap();
    let mut count = 0;
    while events.try_recv().is_some() {
        count += 1;
    }
    until("every event", || sink.delivered() == count).await;
    let received = hook.received.lock().unwrap().clone();
    assert_eq!(received.len() as u64, count);
    assert!(received.iter().all(|v| v["pipeline"] == "shop" && v["event"]["execution"] == record.id.as_str()));
    assert_eq!(received.last().unwrap()["event"]["event"], "execution_finished", "in order");
}

#[tokio::test]
async fn bad_settings_are_refused() {
    for url in ["not a url", "ftp://host/x", "http://", "mailto:a@b.c"] {
        assert!(WebhookSink::builder(url).build().is_err(), "{url}");
    }
    let ok = "https://hooks.example.com/services/x";
    assert!(WebhookSink::builder(ok).attempts(0).build().is_err());
    assert!(WebhookSink::builder(ok).attempts(11).build().is_err());
    assert!(WebhookSink::builder(ok).timeout(Duration::ZERO).build().is_err());
    assert!(WebhookSink::builder(ok).timeout(Duration::from_secs(61)).build().is_err());
    assert!(WebhookSink::builder(ok).build().is_ok());
}
