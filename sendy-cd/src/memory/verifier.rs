//! The simulated HTTP endpoints of the environments.

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Account, Health, Op, deployer};
use crate::error::{Error, Result};
use crate::model::{ServiceUrl, SetIdentifier};
use crate::verify::{ProbeRequest, ProbeResponse, Verifier};

/// Reaches the account's environments by URL, as a [`Verifier`]. An environment answers with the health
/// of the image its newest completed deployment runs ([`Behavior::health`](super::Behavior::health)):
/// 200, or 500 when unhealthy; 503 while no deployment has completed. An unknown host refuses the
/// connection. Answers take [`SimConfig::probe_latency`](super::SimConfig::probe_latency).
#[derive(Clone, Debug)]
pub struct MemoryVerifier {
    account: Account,
}

impl MemoryVerifier {
    pub(crate) fn new(account: Account) -> Self {
        MemoryVerifier { account }
    }
}

#[async_trait]
impl Verifier for MemoryVerifier {
    async fn probe(&self, url: &ServiceUrl, request: &ProbeRequest) -> Result<ProbeResponse> {
        self.account.enter(Op::Probe).await?;
        let started = Instant::now();
        let (status, latency) = {
            let mut s = self.account.lock();
            if let Some(status) = super::managed::probe(&mut s, url.host()) {
                (status, s.cfg.probe_latency)
            } else {
                let env = s
                    .endpoints
                    .get(url.host())
                    .cloned()
                    .ok_or_else(|| Error::Transient(format!("connection to {} refused", url.host()).into()))?;
                let status = match deployer::serving(&mut s, &env) {
                    None => 503,
                    Some(image) => {
                        let live = s.record.weights.get(&SetIdentifier::from(&env)).copied().unwrap_or(0) > 0;
                        match s.behavior_of(&image).health {
                            Health::Healthy => 200,
                            Health::Unhealthy => 500,
                            Health::UnhealthyUnderTraffic if live => 500,
                            Health::UnhealthyUnderTraffic => 200,
                        }
                    }
                };
                (status, s.cfg.probe_latency)
            }
        };
        answer_after(status, latency, started, url, request).await
    }
}

/// `status`, after `latency` (a timeout if that is longer than the request allows).
async fn answer_after(
    status: u16,
    latency: std::time::Duration,
    started: Instant,
    url: &ServiceUrl,
    request: &ProbeRequest,
) -> Result<ProbeResponse> {
    if latency > request.timeout {
        tokio::time::sleep(request.timeout).await;
        return Err(Error::Transient(format!("{url}: no answer within {:?}", request.timeout).into()));
    }
    tokio::time::sleep(latency).await;
    Ok(ProbeResponse { status, latency: started.elapsed() })
}
