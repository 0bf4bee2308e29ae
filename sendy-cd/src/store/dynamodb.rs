//! [`DynamoDbStore`]: executions, learned durations and leases in one DynamoDB table (feature
//! `aws`), for runners on many machines.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue, ScalarAttributeType,
    TransactWriteItem,
};

use super::{
    Acquisition, Clock, Cursor, HistoryPage, Holder, LEARNED, Lease, Store, SystemClock, add, check_ttl, lost,
};
use crate::aws::AwsConfig;
use crate::aws::error::from_sdk;
use crate::error::{Error, Result};
use crate::model::Id;
use crate::record::{ExecutionRecord, Step};

/// Executions, learned durations and leases of any number of pipelines in one DynamoDB table, whose
/// key is `pk` (string, the pipeline) and `sk` (string, what the item is), shared by runners on many
/// machines.
///
/// Items per pipeline `p` (`pk = "pipeline#p"`): one per execution (`exec#<sequence>`, its record's
/// JSON without its steps, the number of steps, and a checksum) and one per step
/// (`exec#<sequence>#step#<index>`, the step's JSON and checksum), so that no item grows with the
/// execution (DynamoDB refuses items over 400 KB) and a save writes only the steps that changed
/// (usually one), with the execution's item, in one transaction; a pointer by id (`id#<id>`);
/// `unfinished` (the set of executions not over yet, kept in the same transactions) and one
/// `built#<commit>` pointer per commit built, so that what resume and `run` ask first costs a few
/// reads, not the history;
/// `counter` (executions saved, the last
/// fencing token); `durations`; `lease` (holder, token, expiry), and one `acq#<token>` per
/// acquisition. The lease is taken with a conditional write (`attribute_not_exists(pk) OR
/// expires_ms <= now`), renewed and released only while its token is the one stored, and its token
/// comes from an atomic counter, so it only grows. Every write is acknowledged by DynamoDB before the
/// call returns (durable).
#[derive(Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
    /// What this store last wrote of the executions it saved: the item key, and each step's
    /// checksum, so that a save writes only what changed.
    written: Arc<std::sync::Mutex<HashMap<(String, String), Written>>>,
}

#[derive(Clone, Default)]
struct Written {
    sk: String,
    steps: Vec<String>,
    /// Whether the `unfinished` item lists it, as last written.
    listed: Option<bool>,
    /// Whether its `built#<commit>` pointer was written.
    built: bool,
}

/// How many executions' written steps a store remembers (the running one is what matters).
const REMEMBERED: usize = 16;

/// The most items one `TransactWriteItems` takes.
const TRANSACTION: usize = 100;

impl std::fmt::Debug for DynamoDbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoDbStore").field("table", &self.table).finish_non_exhaustive()
    }
}

mod items;
use items::{checksum, decode, encode, exec_sk, get_n, get_s, n, pk, s, step_sk};

impl DynamoDbStore {
    /// The store in table `table` (see [`create_table`](Self::create_table)).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a malformed table name (3 to 255 letters, digits, `_`, `-`, `.`).
    pub fn new(config: &AwsConfig, table: &str) -> Result<Self> {
        Self::from_client(Client::new(config.sdk_config()), table)
    }

    /// As [`new`](Self::new), with a client of your own.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_client(client: Client, table: &str) -> Result<Self> {
        let ok =
            (3..=255).contains(&table.len()) && table.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !ok {
            return Err(Error::InvalidConfig(format!(
                "DynamoDB table name {:?} is malformed",
                crate::error::truncate(table)
            )));
        }
        Ok(DynamoDbStore { client, table: table.to_owned(), clock: Arc::new(SystemClock), written: Arc::default() })
    }

    /// Measures leases with `clock` (tests).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Creates the table (on-demand capacity, key `pk`/`sk`) if it does not exist, and waits until it
    /// is active. Returns whether it created it.
    ///
    /// # Errors
    /// AWS errors.
    pub async fn create_table(&self) -> Result<bool> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(_) => return Ok(false),
            Err(e) => match from_sdk("dynamodb:DescribeTable", e) {
                Error::NotFound { .. } => {}
                other => return Err(other),
            },
        }
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| Error::InvalidConfig(format!("dynamodb key schema: {e}")))
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| Error::InvalidConfig(format!("dynamodb attribute: {e}")))
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .send()
            .await
            .map_err(|e| from_sdk("dynamodb:CreateTable", e))?;
        for _ in 0..120 {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| from_sdk("dynamodb:DescribeTable", e))?;
            if out.table().and_then(|t| t.table_status()).is_some_and(|s| s.as_str() == "ACTIVE") {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(Error::Timeout {
            operation: format!("DynamoDB table {} to become active", self.table),
            after: Duration::from_secs(60),
        })
    }

    async fn item(&self, pipeline: &str, sk: &str) -> Result<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk(pipeline))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| from_sdk("dynamodb:GetItem", e))?;
        Ok(out.item)
    }

    /// Adds `by` to number `attr` of the counter item and returns the new value.
    async fn bump(&self, pipeline: &str, attr: &str, by: i64) -> Result<i64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk(pipeline))
            .key("sk", s("counter"))
            .update_expression("ADD #a :by")
            .expression_attribute_names("#a", attr)
            .expression_attribute_values(":by", n(by))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| from_sdk("dynamodb:UpdateItem", e))?;
        out.attributes().and_then(|a| get_n(a, attr)).ok_or_else(|| Error::Backend("dynamodb: no counter value".into()))
    }

    /// The execution whose item is `sk`, with its steps.
    async fn execution_at(&self, pipeline: &str, sk: &str) -> Result<Option<ExecutionRecord>> {
        let items = self.query_between(pipeline, sk, &format!("{sk}$"), usize::MAX, |_| false).await?;
        let Some(header) = items.iter().find(|i| get_s(i, "sk") == Some(sk)) else { return Ok(None) };
        let steps: Vec<_> = items.iter().filter(|i| get_s(i, "sk") != Some(sk)).collect();
        Ok(decode(header, &steps))
    }

    /// The sequence key of `record`'s execution: the one it has, or a new one (the next sequence
    /// number, with a pointer by id to it).
    async fn sequence_of(&self, pipeline: &str, record: &ExecutionRecord) -> Result<String> {
        let pointer_sk = format!("id#{}", record.id);
        if let Some(sk) = self.item(pipeline, &pointer_sk).await?.as_ref().and_then(|p| get_s(p, "exec")) {
            return Ok(sk.to_owned());
        }
        let sk = exec_sk(self.bump(pipeline, "saved", 1).await?);
        let pointer = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(pipeline))
            .item("sk", s(&pointer_sk))
            .item("exec", s(&sk))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match pointer {
            Ok(_) => Ok(sk),
            // Saved at once by another call: use its sequence number.
            Err(e) if Self::conditional_failed(&e) => Ok(self
                .item(pipeline, &pointer_sk)
                .await?
                .as_ref()
                .and_then(|p| get_s(p, "exec").map(str::to_owned))
                .unwrap_or(sk)),
            Err(e) => Err(from_sdk("dynamodb:PutItem", e)),
        }
    }

    /// Writes `items` in one transaction.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<()> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|e| from_sdk("dynamodb:TransactWriteItems", e))?;
        Ok(())
    }

    /// The items whose key lies in `lo..=hi`, newest first, until `enough` of them satisfy `counted`
    /// (and every item of the last page read).
    async fn query_between(
        &self,
        pipeline: &str,
        lo: &str,
        hi: &str,
        enough: usize,
        counted: impl Fn(&HashMap<String, AttributeValue>) -> bool,
    ) -> Result<Vec<HashMap<String, AttributeValue>>> {
        let mut items = vec![];
        let mut found = 0;
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", pk(pipeline))
                .expression_attribute_values(":lo", s(lo))
                .expression_attribute_values(":hi", s(hi))
                .scan_index_forward(false)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| from_sdk("dynamodb:Query", e))?;
            for item in out.items() {
                found += usize::from(counted(item));
                items.push(item.clone());
            }
            match out.last_evaluated_key {
                Some(key) if found < enough => start = Some(key),
                _ => break,
            }
        }
        Ok(items)
    }

    fn conditional_failed<E>(
        e: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> bool
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
    {
        e.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
    }
}

#[async_trait]
impl Store for DynamoDbStore {
    async fn save(&self, pipeline: &str, record: &ExecutionRecord) -> Result<()> {
        let key = (pipeline.to_owned(), record.id.to_string());
        let known = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key).cloned();
        let mut written = match known {
            Some(w) => w,
            None => Written { sk: self.sequence_of(pipeline, record).await?, ..Written::default() },
        };
        // The steps that changed since this store last wrote them (all of them the first time).
        let mut items = vec![];
        let mut checksums = Vec::with_capacity(record.steps.len());
        for (index, step) in record.steps.iter().enumerate() {
            let json = encode("step", step)?;
            let sum = checksum(&json);
            if written.steps.get(index) != Some(&sum) {
                items.push(
                    aws_sdk_dynamodb::types::Put::builder()
                        .table_name(&self.table)
                        .item("pk", pk(pipeline))
                        .item("sk", s(step_sk(&written.sk, index)))
                        .item("checksum", s(&sum))
                        .item("step", s(json))
                        .build()
                        .map_err(|e| Error::Backend(format!("dynamodb store: {e}").into()))?,
                );
            }
            checksums.push(sum);
        }
        let mut header = record.clone();
        header.steps = vec![];
        let json = encode("record", &header)?;
        let header = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .item("pk", pk(pipeline))
            .item("sk", s(&written.sk))
            .item("id", s(record.id.as_str()))
            .item("steps", n(record.steps.len()))
            .item("checksum", s(checksum(&json)))
            .item("record", s(json))
            .build()
            .map_err(|e| Error::Backend(format!("dynamodb store: {e}").into()))?;
        let mut items: Vec<TransactWriteItem> =
            items.into_iter().map(|p| TransactWriteItem::builder().put(p).build()).collect();
        // The indexes: the set of unfinished executions, and the commit it built.
        let running = !record.outcome.is_final();
        let mut index = vec![];
        if written.listed != Some(running) {
            let update = aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .key("pk", pk(pipeline))
                .key("sk", s("unfinished"))
                .update_expression(if running { "ADD execs :e" } else { "DELETE execs :e" })
                .expression_attribute_values(":e", AttributeValue::Ss(vec![written.sk.clone()]))
                .build()
                .map_err(|e| Error::Backend(format!("dynamodb store: {e}").into()))?;
            index.push(TransactWriteItem::builder().update(update).build());
        }
        let built = record.image.as_ref().map(|i| i.commit.to_string());
        if let (Some(commit), false) = (&built, written.built) {
            let put = aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .item("pk", pk(pipeline))
                .item("sk", s(format!("built#{commit}")))
                .item("exec", s(&written.sk))
                .build()
                .map_err(|e| Error::Backend(format!("dynamodb store: {e}").into()))?;
            index.push(TransactWriteItem::builder().put(put).build());
        }
        // Steps first, the execution's item and the indexes last (it says how many steps there
        // are): in one transaction when they fit, else the steps in transactions of their own.
        while items.len() + 1 + index.len() > TRANSACTION {
            let rest = items.split_off(TRANSACTION.min(items.len()));
            self.transact(std::mem::replace(&mut items, rest)).await?;
        }
        items.push(TransactWriteItem::builder().put(header).build());
        items.extend(index);
        self.transact(items).await?;
        written.steps = checksums;
        written.listed = Some(running);
        written.built |= built.is_some();
        let mut cache = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= REMEMBERED && !cache.contains_key(&key) {
            cache.clear();
        }
        cache.insert(key, written);
        Ok(())
    }

    async fn execution(&self, pipeline: &str, id: &Id) -> Result<Option<ExecutionRecord>> {
        let Some(pointer) = self.item(pipeline, &format!("id#{id}")).await? else { return Ok(None) };
        let Some(sk) = get_s(&pointer, "exec") else { return Ok(None) };
        self.execution_at(pipeline, sk).await
    }

    /// One `GetItem` of the `unfinished` item, and one `Query` per execution it lists.
    async fn unfinished(&self, pipeline: &str) -> Result<Vec<ExecutionRecord>> {
        let Some(item) = self.item(pipeline, "unfinished").await? else { return Ok(vec![]) };
        let mut sks: Vec<String> = match item.get("execs") {
            Some(AttributeValue::Ss(set)) => set.clone(),
            _ => vec![],
        };
        sks.sort(); // oldest first: the sequence numbers are zero-padded
        let mut out = vec![];
        for sk in sks {
            out.extend(self.execution_at(pipeline, &sk).await?);
        }
        Ok(out)
    }

    /// One `GetItem` of the commit's pointer, and one `Query`.
    async fn built(&self, pipeline: &str, commit: &crate::model::CommitId) -> Result<Option<ExecutionRecord>> {
        let Some(pointer) = self.item(pipeline, &format!("built#{commit}")).await? else { return Ok(None) };
        let Some(sk) = get_s(&pointer, "exec") else { return Ok(None) };
        self.execution_at(pipeline, sk).await
    }

    async fn history(&self, pipeline: &str, limit: usize, before: Option<Cursor>) -> Result<HistoryPage> {
        let upper = match before {
            Some(Cursor(seq)) => format!("{}$", exec_sk(i64::try_from(seq).unwrap_or(i64::MAX).saturating_sub(1))),
            None => "exec$".to_owned(), // '$' sorts right after '#'
        };
        // Newest first: each execution's steps, then its item. One more execution than asked tells
        // whether there are more.
        let wanted = limit.saturating_add(1);
        let is_header = |i: &HashMap<String, AttributeValue>| get_s(i, "sk").is_some_and(|sk| !sk.contains("#step#"));
        let items = self.query_between(pipeline, "exec#", &upper, wanted, is_header).await?;
        let mut records = vec![];
        let mut steps: Vec<&HashMap<String, AttributeValue>> = vec![];
        let mut last_seq = None;
        let mut headers = 0;
        for item in &items {
            if !is_header(item) {
                steps.push(item);
                continue;
            }
            headers += 1;
            if headers > limit {
                break;
            }
            let sk = get_s(item, "sk").unwrap_or_default();
            let own: Vec<_> =
                steps.iter().copied().filter(|i| get_s(i, "sk").is_some_and(|s| s.starts_with(sk))).collect();
            if let Some(record) = decode(item, &own) {
                records.push(record);
            }
            last_seq = sk.strip_prefix("exec#").and_then(|seq| seq.parse::<u64>().ok());
            steps.clear();
        }
        Ok(HistoryPage { records, next: last_seq.filter(|_| headers > limit).map(Cursor) })
    }

    async fn count(&self, pipeline: &str) -> Result<u64> {
        let counter = self.item(pipeline, "counter").await?;
        Ok(counter.and_then(|c| get_n(&c, "saved")).map_or(0, |v| u64::try_from(v).unwrap_or(0)))
    }

    async fn durations(&self, pipeline: &str) -> Result<BTreeMap<Step, Vec<Duration>>> {
        let Some(item) = self.item(pipeline, "durations").await? else { return Ok(BTreeMap::new()) };
        let json = get_s(&item, "durations").unwrap_or("{}");
        let millis: BTreeMap<Step, Vec<u64>> = serde_json::from_str(json).unwrap_or_default();
        Ok(millis.into_iter().map(|(k, v)| (k, v.into_iter().map(Duration::from_millis).collect())).collect())
    }

    async fn learn(&self, pipeline: &str, step: Step, took: Duration) -> Result<()> {
        let mut all = self.durations(pipeline).await?;
        let seen = all.entry(step).or_default();
        seen.push(took);
        while seen.len() > LEARNED {
            seen.remove(0);
        }
        let millis: BTreeMap<Step, Vec<u64>> = all
            .into_iter()
            .map(|(k, v)| (k, v.iter().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).collect()))
            .collect();
        let json = serde_json::to_string(&millis).unwrap_or_else(|_| "{}".into());
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(pipeline))
            .item("sk", s("durations"))
            .item("durations", s(json))
            .send()
            .await
            .map_err(|e| from_sdk("dynamodb:PutItem", e))?;
        Ok(())
    }

    async fn acquire(&self, pipeline: &str, holder: &Holder, ttl: Duration) -> Result<Lease> {
        check_ttl(ttl)?;
        let holder_json =
            serde_json::to_string(holder).map_err(|e| Error::Backend(format!("dynamodb store: {e}").into()))?;
        let now = self.clock.now();
        let held = |item: Option<HashMap<String, AttributeValue>>| {
            let item = item?;
            let expires = get_n(&item, "expires_ms")?;
            (expires > now.as_millisecond()).then(|| {
                let raw = get_s(&item, "holder").unwrap_or("unknown").to_owned();
                let holder = serde_json::from_str::<Holder>(&raw).map_or(raw, |h| h.to_string());
                Error::LeaseHeld {
                    holder,
                    expires_at: jiff::Timestamp::from_millisecond(expires).unwrap_or(jiff::Timestamp::MAX),
                }
            })
        };
        // Refused without spending a token while the lease is plainly held.
        if let Some(e) = held(self.item(pipeline, "lease").await?) {
            return Err(e);
        }
        let token = self.bump(pipeline, "last_token", 1).await?;
        let expires_at = add(now, ttl);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(pipeline))
            .item("sk", s("lease"))
            .item("holder", s(&holder_json))
            .item("token", n(token))
            .item("expires_ms", n(expires_at.as_millisecond()))
            .condition_expression("attribute_not_exists(pk) OR expires_ms <= :now")
            .expression_attribute_values(":now", n(now.as_millisecond()))
            .send()
            .await;
        match put {
            Ok(_) => {}
            Err(e) if Self::conditional_failed(&e) => {
                return Err(held(self.item(pipeline, "lease").await?).unwrap_or_else(|| {
                    Error::Conflict("the lease was taken and released while this process asked for it".into())
                }));
            }
            Err(e) => return Err(from_sdk("dynamodb:PutItem", e)),
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(pipeline))
            .item("sk", s(format!("acq#{token:020}")))
            .item("holder", s(&holder_json))
            .item("token", n(token))
            .item("acquired_ms", n(now.as_millisecond()))
            .item("ended_ms", n(expires_at.as_millisecond()))
            .send()
            .await
            .map_err(|e| from_sdk("dynamodb:PutItem", e))?;
        Ok(Lease {
            pipeline: pipeline.to_owned(),
            holder: holder.clone(),
            token: u64::try_from(token).unwrap_or(0),
            expires_at,
        })
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        check_ttl(ttl)?;
        let now = self.clock.now();
        let expires_at = add(now, ttl);
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk(&lease.pipeline))
            .key("sk", s("lease"))
            .update_expression("SET expires_ms = :exp")
            .condition_expression("#t = :token AND expires_ms > :now")
            .expression_attribute_names("#t", "token")
            .expression_attribute_values(":exp", n(expires_at.as_millisecond()))
            .expression_attribute_values(":token", n(lease.token))
            .expression_attribute_values(":now", n(now.as_millisecond()))
            .send()
            .await;
        match update {
            Ok(_) => {}
            Err(e) if Self::conditional_failed(&e) => return Err(lost(lease)),
            Err(e) => return Err(from_sdk("dynamodb:UpdateItem", e)),
        }
        self.end_acquisition(lease, expires_at).await?;
        Ok(Lease { expires_at, ..lease.clone() })
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let now = self.clock.now();
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk(&lease.pipeline))
            .key("sk", s("lease"))
            .update_expression("SET expires_ms = :zero")
            .condition_expression("#t = :token AND expires_ms > :now")
            .expression_attribute_names("#t", "token")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":token", n(lease.token))
            .expression_attribute_values(":now", n(now.as_millisecond()))
            .send()
            .await;
        match update {
            Ok(_) => self.end_acquisition(lease, now).await,
            Err(e) if Self::conditional_failed(&e) => Ok(()),
            Err(e) => Err(from_sdk("dynamodb:UpdateItem", e)),
        }
    }

    async fn acquisitions(&self, pipeline: &str) -> Result<Vec<Acquisition>> {
        let mut out = vec![];
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :acq)")
                .expression_attribute_values(":pk", pk(pipeline))
                .expression_attribute_values(":acq", s("acq#"))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| from_sdk("dynamodb:Query", e))?;
            out.extend(page.items().iter().filter_map(|item| {
                Some(Acquisition {
                    token: u64::try_from(get_n(item, "token")?).ok()?,
                    holder: serde_json::from_str(get_s(item, "holder")?).ok()?,
                    acquired_at: jiff::Timestamp::from_millisecond(get_n(item, "acquired_ms")?).ok()?,
                    ended_at: jiff::Timestamp::from_millisecond(get_n(item, "ended_ms")?).ok()?,
                })
            }));
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok(out)
    }
}

impl DynamoDbStore {
    async fn end_acquisition(&self, lease: &Lease, at: jiff::Timestamp) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk(&lease.pipeline))
            .key("sk", s(format!("acq#{:020}", lease.token)))
            .update_expression("SET ended_ms = :at")
            .expression_attribute_values(":at", n(at.as_millisecond()))
            .send()
            .await
            .map_err(|e| from_sdk("dynamodb:UpdateItem", e))?;
        Ok(())
    }
}
