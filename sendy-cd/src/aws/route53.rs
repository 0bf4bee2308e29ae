//! [`DnsSwitch`] on Route 53 weighted records.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType};

use super::AwsConfig;
use super::error::from_sdk;
use crate::dns::{ChangeStatus, DnsSwitch};
use crate::error::Detail;
use crate::error::{Error, Result};
use crate::model::{Id, SetIdentifier, TrafficSplit};

/// The weighted records of one DNS name in a Route 53 hosted zone, one per environment (set
/// identifier), as a [`DnsSwitch`].
///
/// A weight change is one `ChangeResourceRecordSets` batch of `UPSERT`s that keeps each record's
/// targets (values or alias) and sets the TTL (60 s by default; alias records have none). Set
/// identifiers are checked against the record before the change is sent.
///
/// ```
/// # async fn f() -> sendy_cd::Result<()> {
/// use sendy_cd::aws::{AwsConfig, RecordType, Route53Dns};
/// let config = AwsConfig::builder().region("us-east-1").load().await?;
/// let dns = Route53Dns::builder("Z0123456789ABCDEFGHIJ", "shop.example.com").record_type(RecordType::Cname).build(&config)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Route53Dns {
    client: aws_sdk_route53::Client,
    zone_id: String,
    name: String,
    record_type: RrType,
    ttl: Duration,
}

/// `shop.example.com` → `shop.example.com.`, lowercase.
fn fqdn(name: &str) -> String {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    format!("{name}.")
}

impl Route53Dns {
    /// The weighted `A` records of `name` in hosted zone `zone_id`, with a 60 s TTL; see
    /// [`builder`](Self::builder) for another record type or TTL.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty zone id or a malformed name.
    pub fn new(config: &AwsConfig, zone_id: &str, name: &str) -> Result<Self> {
        Self::builder(zone_id, name).build(config)
    }

    /// As [`new`](Self::new), with a client of your own.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_client(client: aws_sdk_route53::Client, zone_id: &str, name: &str) -> Result<Self> {
        Self::builder(zone_id, name).build_with_client(client)
    }

    /// The weighted records of `name` in hosted zone `zone_id`, with the record type and TTL to set;
    /// everything is checked by [`build`](Route53DnsBuilder::build).
    pub fn builder(zone_id: impl Into<String>, name: impl Into<String>) -> Route53DnsBuilder {
        Route53DnsBuilder {
            zone_id: zone_id.into(),
            name: name.into(),
            record_type: RecordType::A,
            ttl: Duration::from_secs(60),
        }
    }
}

/// Builds a [`Route53Dns`]: the setters never fail, [`build`](Self::build) checks everything.
#[derive(Clone, Debug)]
#[must_use]
pub struct Route53DnsBuilder {
    zone_id: String,
    name: String,
    record_type: RecordType,
    ttl: Duration,
}

impl Route53DnsBuilder {
    /// The record type. Default [`RecordType::A`].
    pub fn record_type(mut self, record_type: RecordType) -> Self {
        self.record_type = record_type;
        self
    }

    /// The TTL set on every change: 1 s to 2^31 - 1 s. Default 60 s.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The switch, on a client made from `config`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty zone id, a malformed name or a TTL out of range; nothing
    /// is sent.
    pub fn build(self, config: &AwsConfig) -> Result<Route53Dns> {
        self.build_with_client(aws_sdk_route53::Client::new(config.sdk_config()))
    }

    /// The switch, on a client of your own.
    ///
    /// # Errors
    /// As [`build`](Self::build).
    pub fn build_with_client(self, client: aws_sdk_route53::Client) -> Result<Route53Dns> {
        let Route53DnsBuilder { zone_id, name, record_type, ttl } = self;
        let zone_id = zone_id.trim_start_matches("/hostedzone/");
        if zone_id.is_empty() || !zone_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::InvalidConfig(format!(
                "hosted zone id {:?} is malformed",
                crate::error::truncate(zone_id)
            )));
        }
        let ok_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '*')
        };
        let trimmed = name.trim_end_matches('.');
        if trimmed.len() > 253 || !trimmed.split('.').all(ok_label) {
            return Err(Error::InvalidConfig(format!("DNS name {:?} is malformed", crate::error::truncate(&name))));
        }
        if ttl.as_secs() == 0 || ttl.as_secs() > i32::MAX as u64 {
            return Err(Error::InvalidConfig(format!("TTL {ttl:?} is out of range (1 s to 2^31 - 1 s)")));
        }
        let record_type = match record_type {
            RecordType::A => RrType::A,
            RecordType::Aaaa => RrType::Aaaa,
            RecordType::Cname => RrType::Cname,
        };
        Ok(Route53Dns { client, zone_id: zone_id.to_owned(), name: fqdn(&name), record_type, ttl })
    }
}

impl Route53Dns {
    /// The weighted record sets of the name, by set identifier.
    async fn record_sets(&self) -> Result<BTreeMap<SetIdentifier, ResourceRecordSet>> {
        let mut sets = BTreeMap::new();
        let mut start = (Some(self.name.clone()), Some(self.record_type.clone()), None::<String>);
        loop {
            let page = self
                .client
                .list_resource_record_sets()
                .hosted_zone_id(&self.zone_id)
                .set_start_record_name(start.0.take())
                .set_start_record_type(start.1.take())
                .set_start_record_identifier(start.2.take())
                .send()
                .await
                .map_err(|e| from_sdk("route53:ListResourceRecordSets", e))?;
            let mut past = false;
            for set in page.resource_record_sets() {
                if fqdn(set.name()) != self.name || set.r#type() != &self.record_type {
                    past = true;
                    break;
                }
                if let (Some(id), Some(_)) = (set.set_identifier(), set.weight())
                    && let Some(earlier) = sets.insert(SetIdentifier::parse(id)?, set.clone())
                {
                    // Route 53 keeps one record per name, type and set identifier: two are a
                    // misreading (or a misbehaving endpoint), never something to pick one of.
                    let show =
                        |s: &ResourceRecordSet| format!("{} {} weight {:?}", s.name(), s.r#type().as_str(), s.weight());
                    return Err(Error::Conflict(
                        (format!(
                            "two weighted records of {} with set identifier {id:?}: {} and {}",
                            self.name,
                            show(&earlier),
                            show(set)
                        ))
                        .into(),
                    ));
                }
            }
            if past || !page.is_truncated() {
                break;
            }
            start = (
                page.next_record_name().map(str::to_owned),
                page.next_record_type().cloned(),
                page.next_record_identifier().map(str::to_owned),
            );
        }
        Ok(sets)
    }
}

/// The types of weighted record [`Route53Dns`] switches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// An IPv4 address (or an alias to a load balancer).
    #[default]
    A,
    /// An IPv6 address (or an alias to a load balancer).
    Aaaa,
    /// Another name.
    Cname,
}

impl std::str::FromStr for RecordType {
    type Err = Error;

    /// `A`, `AAAA` or `CNAME`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "A" => Ok(RecordType::A),
            "AAAA" => Ok(RecordType::Aaaa),
            "CNAME" => Ok(RecordType::Cname),
            other => Err(Error::InvalidConfig(format!(
                "record type {:?}: expected A, AAAA or CNAME",
                crate::error::truncate(other)
            ))),
        }
    }
}

#[async_trait]
impl DnsSwitch for Route53Dns {
    async fn weights(&self) -> Result<TrafficSplit> {
        let sets = self.record_sets().await?;
        let weights = sets.iter().map(|(id, set)| {
            let w = set.weight().unwrap_or(0).clamp(0, 255);
            (id.clone(), u8::try_from(w).unwrap_or(u8::MAX))
        });
        TrafficSplit::new(weights).map_err(|_| Error::NotFound {
            kind: "weighted record with a non-zero weight",
            id: format!("{} {} in {}", self.name, self.record_type.as_str(), self.zone_id).into(),
        })
    }

    async fn set_weights(&self, split: &TrafficSplit) -> Result<Id> {
        let sets = self.record_sets().await?;
        let mut changes = vec![];
        for (id, weight) in split.iter() {
            let Some(set) = sets.get(id) else {
                return Err(Error::Conflict(
                    (format!(
                        "{} {} has no weighted record with set identifier {id:?}",
                        self.name,
                        self.record_type.as_str()
                    ))
                    .into(),
                ));
            };
            let mut record = ResourceRecordSet::builder()
                .name(set.name())
                .r#type(set.r#type().clone())
                .set_identifier(id.as_str())
                .weight(i64::from(weight))
                .set_health_check_id(set.health_check_id().map(str::to_owned))
                .set_alias_target(set.alias_target().cloned());
            if set.alias_target().is_none() {
                record = record
                    .set_resource_records(Some(set.resource_records().to_vec()))
                    .ttl(i64::try_from(self.ttl.as_secs()).unwrap_or(60));
            }
            let record =
                record.build().map_err(|e| Error::Backend(Detail::new(format!("route53: {e}")).with_cause(e)))?;
            let change = Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(record)
                .build()
                .map_err(|e| Error::Backend(Detail::new(format!("route53: {e}")).with_cause(e)))?;
            changes.push(change);
        }
        let batch = ChangeBatch::builder()
            .comment(format!("sendy-cd: {split}"))
            .set_changes(Some(changes))
            .build()
            .map_err(|e| Error::Backend(Detail::new(format!("route53: {e}")).with_cause(e)))?;
        let out = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| from_sdk("route53:ChangeResourceRecordSets", e))?;
        let info = out.change_info().ok_or_else(|| Error::Backend("route53: no ChangeInfo in the answer".into()))?;
        Ok(Id::parse(info.id())?)
    }

    async fn change_status(&self, change: &Id) -> Result<ChangeStatus> {
        let out = self
            .client
            .get_change()
            .id(change.as_str().trim_start_matches("/change/"))
            .send()
            .await
            .map_err(|e| from_sdk("route53:GetChange", e))?;
        let info = out.change_info().ok_or_else(|| Error::Backend("route53: no ChangeInfo in the answer".into()))?;
        Ok(match info.status() {
            aws_sdk_route53::types::ChangeStatus::Insync => ChangeStatus::Applied,
            _ => ChangeStatus::Pending,
        })
    }

    fn ttl(&self) -> Duration {
        self.ttl
    }
}
