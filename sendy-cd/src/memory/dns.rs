//! The simulated weighted DNS name.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Account, Op};
use crate::dns::{ChangeStatus, DnsSwitch};
use crate::error::{Error, Result};
use crate::model::{Id, SetIdentifier, TrafficSplit};

#[derive(Default)]
pub(crate) struct RecordRec {
    pub(crate) weights: BTreeMap<SetIdentifier, u8>,
    changes: BTreeMap<String, Instant>,
}

/// The account's weighted DNS name, as a [`DnsSwitch`]: one record per environment (set identifier =
/// environment name). A change is visible at once in [`weights`](DnsSwitch::weights) and applied after
/// [`SimConfig::dns_propagation`](super::SimConfig::dns_propagation).
#[derive(Clone, Debug)]
pub struct MemoryDns {
    account: Account,
    ttl: Duration,
}

impl MemoryDns {
    pub(crate) fn new(account: Account) -> Self {
        let ttl = account.lock().cfg.ttl;
        MemoryDns { account, ttl }
    }
}

#[async_trait]
impl DnsSwitch for MemoryDns {
    async fn weights(&self) -> Result<TrafficSplit> {
        self.account.enter(Op::DnsWeights).await?;
        self.account.weights()
    }

    async fn set_weights(&self, split: &TrafficSplit) -> Result<Id> {
        let answer = self.account.enter(Op::DnsSetWeights).await?;
        let mut s = self.account.lock();
        if let Some((unknown, _)) = split.iter().find(|(id, _)| !s.record.weights.contains_key(*id)) {
            return Err(Error::Conflict(format!("the record has no set identifier {unknown:?}").into()));
        }
        for (id, weight) in split.iter() {
            s.record.weights.insert(id.clone(), weight);
        }
        let id = s.next_id("/change/C");
        let applied_at = super::later(Instant::now(), s.cfg.dns_propagation);
        s.record.changes.insert(id.clone(), applied_at);
        answer.deliver(Ok(Id::parse(id)?))
    }

    async fn change_status(&self, change: &Id) -> Result<ChangeStatus> {
        self.account.enter(Op::DnsChangeStatus).await?;
        let s = self.account.lock();
        let applied_at = s
            .record
            .changes
            .get(change.as_str())
            .ok_or_else(|| Error::NotFound { kind: "change", id: change.to_string().into() })?;
        Ok(if Instant::now() >= *applied_at { ChangeStatus::Applied } else { ChangeStatus::Pending })
    }

    fn ttl(&self) -> Duration {
        self.ttl
    }
}
