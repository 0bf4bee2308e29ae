//! The local AWS emulator (moto_server) the AWS backends are tested against.
//!
//! `scripts/test` starts it on a free loopback port and exports its URL as `SENDY_TEST_EMULATOR`. Tests
//! that use it are `#[ignore]`d (so a plain `cargo test` says they did not run) and run with
//! `--include-ignored` under `scripts/test`. They are serialized, and the emulator is reset before each.

use std::time::{SystemTime, UNIX_EPOCH};

use sendy_cd::aws::AwsConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, MutexGuard};

static LOCK: Mutex<()> = Mutex::const_new(());

/// The emulator's URL.
///
/// # Panics
/// When `SENDY_TEST_EMULATOR` is not set: run the tests through `bash scripts/test`.
pub fn endpoint() -> String {
    std::env::var("SENDY_TEST_EMULATOR")
        .expect("SENDY_TEST_EMULATOR is not set: run the emulator tests through `bash scripts/test`")
}

/// Exclusive use of the emulator, freshly reset.
pub async fn acquire() -> MutexGuard<'static, ()> {
    let guard = LOCK.lock().await;
    post("/moto-api/reset", "").await;
    guard
}

/// Sends a POST to the emulator's own API and returns the response body.
///
/// # Panics
/// If the emulator does not answer 200.
pub async fn post(path: &str, body: &str) -> String {
    request("POST", path, body).await
}

/// Sends a GET to the emulator's own API and returns the response body.
///
/// # Panics
/// If the emulator does not answer 200.
pub async fn get(path: &str) -> String {
    request("GET", path, "").await
}

async fn request(method: &str, path: &str, body: &str) -> String {
    let url = endpoint();
    let host = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.expect("the emulator accepts connections");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let (status_line, rest) = answer.split_once("\r\n").unwrap_or((&answer, ""));
    assert!(status_line.contains(" 200 "), "{method} {path}: {status_line}");
    rest.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}

/// A configuration reaching the emulator: region us-east-1, dummy credentials.
pub async fn config() -> AwsConfig {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_route53::config::Credentials::new("testing", "testing", None, None, "emulator"))
        .endpoint_url(endpoint())
        .load()
        .await;
    AwsConfig::from_sdk_config(sdk)
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}-{}", nanos % 1_000_000_000_000)
}

/// Creates a cluster `shop` with service `api` (bridge networking, one container `web`). The emulator's ECS
/// deployments progress only because `tests/emulator/serve.py` makes them (see there). Returns
/// the task definition's ARN.
///
/// # Panics
/// If the emulator refuses a call.
pub async fn ecs_service(ecs: &aws_sdk_ecs::Client) -> String {
    use aws_sdk_ecs::types::{ContainerDefinition, NetworkMode};
    ecs.create_cluster().cluster_name("shop").send().await.unwrap();
    let td = ecs
        .register_task_definition()
        .family("shop-api")
        .network_mode(NetworkMode::Bridge)
        .container_definitions(
            ContainerDefinition::builder().name("web").image("registry.example.com/shop/api:v0").memory(256).build(),
        )
        .send()
        .await
        .unwrap();
    let arn = td.task_definition().unwrap().task_definition_arn().unwrap().to_owned();
    ecs.create_service()
        .cluster("shop")
        .service_name("api")
        .task_definition(&arn)
        .desired_count(2)
        .send()
        .await
        .unwrap();
    arn
}

/// Every request the emulator recorded since [`start_recording`], by operation: from `X-Amz-Target`
/// (JSON protocols), `Action=` in the body (query protocols), or the method and path (REST: Route 53).
///
/// # Panics
/// If the recording is empty or holds a line that is not a recorded request: a request count read
/// from a recording that lost lines would pass while proving nothing.
pub async fn recorded() -> Vec<String> {
    let lines = get("/moto-api/recorder/download-recording").await;
    parse_recording(&lines)
}

/// As [`recorded`], where no request at all is the expected answer (a refused configuration).
///
/// # Panics
/// If the recording holds a line that is not a recorded request.
pub async fn recorded_maybe_none() -> Vec<String> {
    let lines = get("/moto-api/recorder/download-recording").await;
    if lines.trim().is_empty() { Vec::new() } else { parse_recording(&lines) }
}

/// The operations of a recording (see [`recorded`]).
///
/// # Panics
/// As [`recorded`].
pub fn parse_recording(lines: &str) -> Vec<String> {
    use base64::Engine as _;
    let records: Vec<serde_json::Value> = lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("an unreadable line in the emulator's recording ({e}): {l:.200}"))
        })
        .collect();
    assert!(!records.is_empty(), "the emulator recorded no request: nothing to count");
    records
        .into_iter()
        .map(|r| {
            let headers = &r["headers"];
            if let Some(t) = headers["X-Amz-Target"].as_str().or(headers["x-amz-target"].as_str()) {
                return t.rsplit('.').next().unwrap_or(t).to_owned();
            }
            let raw = r["body"].as_str().unwrap_or_default();
            let body = if r["body_encoded"].as_bool() == Some(true) {
                base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            } else {
                raw.to_owned()
            };
            if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
                return action.to_owned();
            }
            let method = r["method"].as_str().unwrap_or("?");
            let url = r["url"].as_str().unwrap_or("?");
            let path = url.split("://").nth(1).and_then(|u| u.split_once('/')).map_or("", |(_, p)| p);
            let path = path.split('?').next().unwrap_or_default();
            match (method, path.split('/').collect::<Vec<_>>().as_slice()) {
                ("GET", [_, "hostedzone", _, "rrset"]) => "ListResourceRecordSets".into(),
                ("POST", [_, "hostedzone", _, "rrset", ..]) => "ChangeResourceRecordSets".into(),
                ("GET", [_, "change", _]) => "GetChange".into(),
                _ => format!("{method} /{path}"),
            }
        })
        .collect()
}

/// Starts recording requests afresh.
pub async fn start_recording() {
    post("/moto-api/recorder/reset-recording", "").await;
    post("/moto-api/recorder/start-recording", "").await;
}

/// Stops recording.
pub async fn stop_recording() {
    post("/moto-api/recorder/stop-recording", "").await;
}
