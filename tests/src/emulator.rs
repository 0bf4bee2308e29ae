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
