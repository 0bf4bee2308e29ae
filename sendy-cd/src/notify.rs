//! Notifications (feature `http`): [`WebhookSink`] posts a pipeline's events to a webhook, as a
//! Slack-compatible message or as their JSON.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::events::{Event, EventKind, EventSink};
use crate::record::Outcome;

/// What a webhook receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookFormat {
    /// `{"text": "..."}`: one line per event, as Slack's incoming webhooks (and Mattermost, Teams'
    /// workflows, Discord's `/slack` endpoint) take it.
    Slack,
    /// `{"pipeline": "...", "event": {...}}`: the event's JSON, for a receiver of your own.
    Json,
}

/// Posts events to a webhook, in the background: [`on_event`](EventSink::on_event) only queues
/// (a sink must be quick), a task on the runtime that built the sink posts them in order, each with a
/// timeout, trying again after a connection error, a timeout, a 429 or a 5xx (backing off), and
/// dropping an event that still fails (counted in [`failed`](Self::failed)). The payload carries the
/// event only: never the webhook's URL (which holds its secret) nor any credential; `Debug` shows the
/// URL's host only.
pub struct WebhookSink {
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
    host: String,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink").field("host", &self.host).finish_non_exhaustive()
    }
}

/// Describes a [`WebhookSink`].
#[must_use]
pub struct WebhookBuilder {
    url: String,
    format: WebhookFormat,
    pipeline: String,
    kinds: Option<Vec<String>>,
    attempts: u32,
    timeout: Duration,
    backoff: Duration,
}

impl std::fmt::Debug for WebhookBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookBuilder").field("format", &self.format).finish_non_exhaustive()
    }
}

/// The event kinds posted by default: an execution's start and end, and each ECS hook decided.
pub const DEFAULT_KINDS: [&str; 3] = ["execution_started", "execution_finished", "hook_decided"];

impl WebhookBuilder {
    /// The payload's format. Default [`WebhookFormat::Slack`].
    pub fn format(mut self, format: WebhookFormat) -> Self {
        self.format = format;
        self
    }

    /// The pipeline's name, as the messages say it. Default `pipeline`.
    pub fn pipeline(mut self, name: &str) -> Self {
        self.pipeline = name.to_owned();
        self
    }

    /// The event kinds to post (as the JSON names them: `execution_finished`, `stage_started`,
    /// ...). Default [`DEFAULT_KINDS`].
    pub fn kinds<I: IntoIterator<Item = S>, S: Into<String>>(mut self, kinds: I) -> Self {
        self.kinds = Some(kinds.into_iter().map(Into::into).collect());
        self
    }

    /// Every event kind.
    pub fn all_events(mut self) -> Self {
        self.kinds = None;
        self
    }

    /// Attempts per event (1 to 10). Default 3.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// Each attempt's timeout (up to a minute). Default 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The wait before the second attempt, doubled for each next one (up to a minute). Default 1 s.
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Validates, and starts the task that posts on the current tokio runtime.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a URL that is not `http(s)://host/...`, attempts outside 1 to 10,
    /// a zero or too long timeout or backoff, or no tokio runtime to run on.
    pub fn build(self) -> Result<WebhookSink> {
        let bad = |m: String| Err(Error::InvalidConfig(format!("webhook: {m}")));
        let url = match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
            _ => return bad("the URL must be http(s)://host/...".into()),
        };
        if !(1..=10).contains(&self.attempts) {
            return bad(format!("{} attempts: 1 to 10", self.attempts));
        }
        let minute = Duration::from_secs(60);
        if self.timeout.is_zero() || self.timeout > minute || self.backoff > minute {
            return bad("the timeout must be above zero, it and the backoff at most a minute".into());
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::InvalidConfig("webhook: build it inside a tokio runtime".into()))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .build()
            .map_err(|e| Error::InvalidConfig(format!("webhook: {e}")))?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let stats = Arc::new(Stats::default());
        let task_stats = Arc::clone(&stats);
        let Self { format, pipeline, kinds, attempts, backoff, .. } = self;
        runtime.spawn(async move {
            while let Some(event) = rx.recv().await {
                let kind = kind_name(&event);
                if kinds.as_ref().is_some_and(|k| !k.contains(&kind)) {
                    continue;
                }
                let body = payload(format, &pipeline, &event);
                let mut wait = backoff;
                let mut delivered = false;
                for attempt in 1..=attempts {
                    match client.post(url.clone()).json(&body).send().await {
                        Ok(r) if r.status().is_success() => {
                            delivered = true;
                            break;
                        }
                        // A refusal that another try will not change.
                        Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => break,
                        Ok(_) | Err(_) if attempt < attempts => {
                            tokio::time::sleep(wait).await;
                            wait = wait.saturating_mul(2).min(Duration::from_secs(60));
                        }
                        Ok(_) | Err(_) => {}
                    }
                }
                let counter = if delivered { &task_stats.delivered } else { &task_stats.failed };
                counter.fetch_add(1, Ordering::Relaxed);
                if !delivered {
                    tracing::warn!(event = %kind, "webhook: an event could not be delivered; dropped");
                }
            }
        });
        Ok(WebhookSink { tx, host, stats })
    }
}

fn kind_name(event: &Event) -> String {
    serde_json::to_value(&event.kind)
        .ok()
        .and_then(|v| v.get("event").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

fn span(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 60 { format!("{}m{:02}s", s / 60, s % 60) } else { format!("{s}s") }
}

/// The message of `event` in `format`.
fn payload(format: WebhookFormat, pipeline: &str, event: &Event) -> serde_json::Value {
    match format {
        WebhookFormat::Json => serde_json::json!({ "pipeline": pipeline, "event": event }),
        WebhookFormat::Slack => serde_json::json!({ "text": text(pipeline, event) }),
    }
}

fn text(pipeline: &str, event: &Event) -> String {
    let head = format!("{pipeline} {}", event.execution);
    match &event.kind {
        EventKind::ExecutionStarted { revision, strategy } => match revision {
            Some(r) => format!("{head}: deploying {} ({}) by {}, {strategy}", r.commit.short(), r.message, r.author),
            None => format!("{head}: started ({strategy})"),
        },
        EventKind::ExecutionFinished { outcome, duration_ms } => match outcome {
            Outcome::Succeeded => format!("{head}: succeeded in {}", span(*duration_ms)),
            Outcome::Failed { stage, reason, .. } => {
                format!("{head}: FAILED at {stage} after {}: {reason}", span(*duration_ms))
            }
            Outcome::Cancelled { .. } => format!("{head}: cancelled after {}", span(*duration_ms)),
            Outcome::Interrupted { .. } => format!("{head}: interrupted, settled after {}", span(*duration_ms)),
            Outcome::Running => format!("{head}: running"),
        },
        EventKind::HookDecided { stage, action, production_percent, because, .. } => {
            format!("{head}: {stage} at {production_percent}% answered {action}: {because}")
        }
        other => format!("{head}: {}", serde_json::to_string(other).unwrap_or_default()),
    }
}

impl WebhookSink {
    /// Starts describing a sink posting to `url`.
    pub fn builder(url: &str) -> WebhookBuilder {
        WebhookBuilder {
            url: url.to_owned(),
            format: WebhookFormat::Slack,
            pipeline: "pipeline".into(),
            kinds: Some(DEFAULT_KINDS.iter().map(|s| (*s).to_owned()).collect()),
            attempts: 3,
            timeout: Duration::from_secs(5),
            backoff: Duration::from_secs(1),
        }
    }

    /// Events posted.
    pub fn delivered(&self) -> u64 {
        self.stats.delivered.load(Ordering::Relaxed)
    }

    /// Events dropped after their last attempt failed.
    pub fn failed(&self) -> u64 {
        self.stats.failed.load(Ordering::Relaxed)
    }
}

impl EventSink for WebhookSink {
    fn on_event(&self, event: &Event) {
        // The task ends only with the runtime: an event sent after that is lost, as the runtime is.
        let _ = self.tx.send(event.clone());
    }
}

/// Sends a pipeline's events to Amazon EventBridge (feature `aws`): one `PutEvents` entry per event,
/// `Source` `sendy-cd`, `DetailType` the event's kind (`execution_finished`, ...), `Detail`
/// `{"pipeline": ..., "event": {...}}`, on the default bus or a named one, so that teams route
/// deployment events with their own rules. Like [`WebhookSink`], it queues on
/// [`on_event`](EventSink::on_event) and sends from a task, in order, up to 10 entries a request; the
/// SDK retries throttling and transient errors; an entry EventBridge refuses is counted in
/// [`failed`](Self::failed).
#[cfg(feature = "aws")]
pub struct EventBridgeSink {
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
    stats: Arc<Stats>,
}

#[cfg(feature = "aws")]
impl std::fmt::Debug for EventBridgeSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBridgeSink").finish_non_exhaustive()
    }
}

/// The `Source` of the events [`EventBridgeSink`] puts.
#[cfg(feature = "aws")]
pub const EVENT_SOURCE: &str = "sendy-cd";

#[cfg(feature = "aws")]
impl EventBridgeSink {
    /// A sink putting the events of pipeline `pipeline` on bus `bus` (`None`: the default bus),
    /// through `config`; every event kind unless `kinds` names some.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] without a tokio runtime to run on, or for an empty bus name.
    pub fn new(
        config: &crate::aws::AwsConfig,
        pipeline: &str,
        bus: Option<&str>,
        kinds: Option<Vec<String>>,
    ) -> Result<Self> {
        Self::from_client(aws_sdk_eventbridge::Client::new(config.sdk_config()), pipeline, bus, kinds)
    }

    /// As [`new`](Self::new), with a client of your own.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_client(
        client: aws_sdk_eventbridge::Client,
        pipeline: &str,
        bus: Option<&str>,
        kinds: Option<Vec<String>>,
    ) -> Result<Self> {
        if bus.is_some_and(str::is_empty) {
            return Err(Error::InvalidConfig("EventBridge: an empty bus name".into()));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::InvalidConfig("EventBridge sink: build it inside a tokio runtime".into()))?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let stats = Arc::new(Stats::default());
        let task_stats = Arc::clone(&stats);
        let (pipeline, bus) = (pipeline.to_owned(), bus.map(str::to_owned));
        runtime.spawn(async move {
            while let Some(first) = rx.recv().await {
                // Up to 10 entries a request: what is queued already goes along.
                let mut batch = vec![first];
                while batch.len() < 10 {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                let entries: Vec<_> = batch
                    .iter()
                    .filter(|e| kinds.as_ref().is_none_or(|k| k.contains(&kind_name(e))))
                    .map(|e| {
                        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                            .source(EVENT_SOURCE)
                            .detail_type(kind_name(e))
                            .detail(serde_json::json!({ "pipeline": pipeline, "event": e }).to_string())
                            .set_event_bus_name(bus.clone())
                            .build()
                    })
                    .collect();
                if entries.is_empty() {
                    continue;
                }
                let n = entries.len() as u64;
                match client.put_events().set_entries(Some(entries)).send().await {
                    Ok(out) => {
                        let failed = u64::try_from(out.failed_entry_count()).unwrap_or(0).min(n);
                        task_stats.delivered.fetch_add(n - failed, Ordering::Relaxed);
                        task_stats.failed.fetch_add(failed, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(error = %crate::aws::error::from_sdk("events:PutEvents", e), "EventBridge: events dropped");
                        task_stats.failed.fetch_add(n, Ordering::Relaxed);
                    }
                }
            }
        });
        Ok(EventBridgeSink { tx, stats })
    }

    /// Events put.
    pub fn delivered(&self) -> u64 {
        self.stats.delivered.load(Ordering::Relaxed)
    }

    /// Events EventBridge refused, or that could not be sent.
    pub fn failed(&self) -> u64 {
        self.stats.failed.load(Ordering::Relaxed)
    }
}

#[cfg(feature = "aws")]
impl EventSink for EventBridgeSink {
    fn on_event(&self, event: &Event) {
        let _ = self.tx.send(event.clone());
    }
}
