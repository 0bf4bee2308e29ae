//! The HTTP verifier against a real HTTP server on loopback.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sendy_cd::conformance::{self, VerifierHarness};
use sendy_cd::verify::http::HttpVerifier;
use sendy_cd::{Error, HealthCheck, ProbeRequest, Result, ServiceUrl, Verifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server on 127.0.0.1 answering `/health` 200, `/broken` 500, `/slow` after 2 s, anything else 404.
async fn server() -> ServiceUrl {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let status = match path.as_str() {
                    "/health" => "200 OK",
                    "/broken" => "500 Internal Server Error",
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        "200 OK"
                    }
                    _ => "404 Not Found",
                };
                let body = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                let _ = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    ServiceUrl::parse(&format!("http://{addr}/")).unwrap()
}

/// A loopback URL nothing listens on.
async fn nobody() -> ServiceUrl {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    ServiceUrl::parse(&format!("http://{addr}/")).unwrap()
}

struct Harness(ServiceUrl, ServiceUrl);

#[async_trait]
impl VerifierHarness for Harness {
    fn verifier(&self) -> Arc<dyn Verifier> {
        Arc::new(HttpVerifier::new().unwrap())
    }
    async fn healthy(&self) -> Result<ServiceUrl> {
        Ok(self.0.clone())
    }
    fn unreachable(&self) -> ServiceUrl {
        self.1.clone()
    }
}

#[tokio::test]
async fn http_verifier_conforms() {
    conformance::verifier(&Harness(server().await, nobody().await)).await;
}

#[tokio::test]
async fn a_health_check_passes_and_fails_on_real_answers() {
    let url = server().await;
    let verifier = HttpVerifier::new().unwrap();
    let quick = HealthCheck::default().interval(Duration::from_millis(10));
    let report = quick.run(&verifier, &url, Duration::from_secs(30)).await.unwrap();
    assert_eq!((report.probes, report.successes, report.failures), (3, 3, 0));
    assert!(report.latency_max_ms > 0.0);

    let broken = quick.clone().path("/broken");
    let err = broken.run(&verifier, &url, Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(&err, Error::StageFailed { reason, .. } if reason.contains("answered 500")), "{err}");

    let wrong_status = quick.expected_status(204);
    assert!(wrong_status.run(&verifier, &url, Duration::from_secs(30)).await.is_err());
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let url = server().await;
    let request = ProbeRequest { path: "/slow".into(), timeout: Duration::from_millis(200) };
    let err = HttpVerifier::new().unwrap().probe(&url, &request).await.unwrap_err();
    assert!(matches!(&err, Error::Transient(m) if m.contains("no answer in time")), "{err}");
}
