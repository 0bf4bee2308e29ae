//! [`HttpVerifier`]: checks an environment over real HTTP (feature `http`, on by default).

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::model::ServiceUrl;
use crate::verify::{ProbeRequest, ProbeResponse, Verifier};

/// Sends each probe as an HTTP `GET` (rustls; no redirects followed, so a redirect is reported as its
/// 3xx status), as a [`Verifier`].
///
/// ```
/// use std::time::Duration;
/// use sendy_cd::{HealthCheck, ServiceUrl, verify::http::HttpVerifier};
/// # async fn f() -> sendy_cd::Result<()> {
/// let verifier = HttpVerifier::new()?;
/// let url = ServiceUrl::parse("https://green.shop.example.com/")?;
/// HealthCheck::default().run(&verifier, &url, Duration::from_secs(300)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct HttpVerifier {
    client: reqwest::Client,
}

impl HttpVerifier {
    /// A verifier with its own connection pool.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the TLS backend cannot be set up.
    pub fn new() -> Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sendy-cd/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(HttpVerifier { client })
    }

    /// A verifier using `client` (its timeouts, proxies and certificates).
    pub fn with_client(client: reqwest::Client) -> Self {
        HttpVerifier { client }
    }
}

#[async_trait]
impl Verifier for HttpVerifier {
    async fn probe(&self, url: &ServiceUrl, request: &ProbeRequest) -> Result<ProbeResponse> {
        let target = url.join(&request.path);
        let started = Instant::now();
        let answer = self.client.get(target.clone()).timeout(request.timeout).send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "no answer in time"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            Error::Transient(format!("GET {target}: {what}: {e}").into())
        })?;
        Ok(ProbeResponse { status: answer.status().as_u16(), latency: started.elapsed() })
    }
}
