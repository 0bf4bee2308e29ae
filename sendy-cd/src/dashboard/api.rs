//! The JSON API behind each page, the event stream, and the actions.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{Dashboard, MAX_RECORDS, Shown, figures};
use crate::error::Error;
use crate::model::{CommitId, Id};
use crate::pipeline::Strategy;
use crate::record::{ExecutionRecord, Outcome};
use crate::store::Cursor;

/// An API error: a status and a message, as `{"error": "..."}`.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::InvalidInput(_) | Error::InvalidConfig(_) => StatusCode::BAD_REQUEST,
            Error::LeaseHeld { .. } | Error::Conflict(_) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

pub(crate) type ApiResult<T> = std::result::Result<T, ApiError>;

impl Dashboard {
    pub(crate) fn shown(&self, name: &str) -> ApiResult<&Shown> {
        self.find(name).ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no pipeline {name:?}")))
    }
}

/// One execution in a list.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) id: Id,
    pub(crate) kind: crate::record::ExecutionKind,
    pub(crate) strategy: String,
    pub(crate) commit: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) started_at: jiff::Timestamp,
    pub(crate) duration_ms: Option<u64>,
    pub(crate) outcome: &'static str,
    pub(crate) target: Option<String>,
    pub(crate) reason: Option<String>,
}

impl Summary {
    pub(crate) fn of(r: &ExecutionRecord) -> Self {
        Summary {
            id: r.id.clone(),
            kind: r.kind.clone(),
            strategy: r.strategy.clone(),
            commit: r.revision.as_ref().map(|v| v.commit.to_string()),
            message: r.revision.as_ref().map(|v| v.message.clone()),
            started_at: r.started_at,
            duration_ms: r.duration_ms,
            outcome: figures::outcome_name(&r.outcome),
            target: r.target.as_ref().map(ToString::to_string),
            reason: match &r.outcome {
                Outcome::Failed { reason, .. } => Some(reason.clone()),
                _ => None,
            },
        }
    }
}

/// A pipeline, as its page's first lines show it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PipelineView {
    pub(crate) name: String,
    /// A live pipeline (events, weights, actions) or records in a store.
    pub(crate) live: bool,
    pub(crate) strategy: Option<String>,
    pub(crate) environments: Vec<String>,
    pub(crate) weights: Option<std::collections::BTreeMap<String, u8>>,
    pub(crate) live_environment: Option<String>,
    pub(crate) executions: u64,
    pub(crate) last: Option<Summary>,
    pub(crate) running: Option<Summary>,
    pub(crate) actions: bool,
}

pub(crate) async fn view(d: &Dashboard, shown: &Shown) -> ApiResult<PipelineView> {
    let store = shown.store();
    let executions = store.count(shown.name()).await?;
    let recent = shown.records(20).await?;
    let running = recent.iter().find(|r| r.outcome == Outcome::Running).map(Summary::of);
    let last = recent.iter().find(|r| r.outcome != Outcome::Running).map(Summary::of);
    let (strategy, environments, weights, live_environment) = match shown {
        Shown::Live(p) => {
            let envs: Vec<String> = p.environments().iter().map(|e| e.name().to_string()).collect();
            // The weights are read live; a DNS switch that does not answer leaves them out.
            let split = p.weights().await.ok().flatten();
            let live = match &split {
                Some(split) => {
                    p.environments().iter().max_by_key(|e| split.weight(e.dns_target())).map(|e| e.name().to_string())
                }
                None => envs.first().cloned(),
            };
            let weights = split.map(|s| s.iter().map(|(k, v)| (k.to_string(), v)).collect());
            (Some(strategy_name(p.strategy())), envs, weights, live)
        }
        Shown::Stored { .. } => (None, vec![], None, None),
    };
    Ok(PipelineView {
        name: shown.name().to_owned(),
        live: matches!(shown, Shown::Live(_)),
        strategy,
        environments,
        weights,
        live_environment,
        executions,
        last,
        running,
        actions: d.token.is_some() && matches!(shown, Shown::Live(_)),
    })
}

fn strategy_name(s: &Strategy) -> String {
    s.name().to_owned()
}

pub(crate) async fn pipelines(State(d): State<Dashboard>) -> ApiResult<Json<Vec<PipelineView>>> {
    let mut out = vec![];
    for shown in d.shown.iter() {
        out.push(view(&d, shown).await?);
    }
    Ok(Json(out))
}

pub(crate) async fn pipeline(State(d): State<Dashboard>, Path(name): Path<String>) -> ApiResult<Json<PipelineView>> {
    let shown = d.shown(&name)?;
    Ok(Json(view(&d, shown).await?))
}

/// `?outcome=&limit=&before=`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    pub(crate) outcome: Option<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) before: Option<u64>,
}

/// A page of executions and where the next one starts.
#[derive(Debug, Serialize)]
pub(crate) struct ListPage {
    pub(crate) executions: Vec<Summary>,
    pub(crate) next: Option<u64>,
}

const OUTCOMES: [&str; 5] = ["running", "succeeded", "failed", "cancelled", "interrupted"];

/// A page of `shown`'s history: newest first, `outcome` only if given; cursors are exact (a page is
/// read `limit` at a time, so every record before the cursor was seen).
pub(crate) async fn list(shown: &Shown, q: &ListQuery) -> ApiResult<ListPage> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("limit {limit} is not 1 to 100")));
    }
    if let Some(o) = &q.outcome
        && !OUTCOMES.contains(&o.as_str())
    {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("outcome {o:?} is not one of {}", OUTCOMES.join(", "))));
    }
    let store = shown.store();
    let mut before = q.before.map(Cursor);
    let (mut out, mut scanned) = (vec![], 0usize);
    loop {
        let need = limit - out.len();
        let page = store.history(shown.name(), need, before).await?;
        scanned += page.records.len();
        out.extend(
            page.records
                .iter()
                .filter(|r| q.outcome.as_deref().is_none_or(|o| figures::outcome_name(&r.outcome) == o))
                .map(Summary::of),
        );
        before = page.next;
        if out.len() >= limit || before.is_none() || scanned >= MAX_RECORDS {
            break;
        }
    }
    Ok(ListPage { executions: out, next: before.map(|Cursor(c)| c) })
}

pub(crate) async fn executions(
    State(d): State<Dashboard>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<ListPage>> {
    let shown = d.shown(&name)?;
    Ok(Json(list(shown, &q).await?))
}

pub(crate) async fn record(d: &Dashboard, name: &str, id: &str) -> ApiResult<ExecutionRecord> {
    let shown = d.shown(name)?;
    let id = Id::parse(id).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    shown
        .store()
        .execution(shown.name(), &id)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no execution {id} of pipeline {name:?}")))
}

pub(crate) async fn execution(
    State(d): State<Dashboard>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Json<ExecutionRecord>> {
    Ok(Json(record(&d, &name, &id).await?))
}

/// `?n=` (baselines) and `?days=` (DORA).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WindowQuery {
    pub(crate) n: Option<usize>,
    pub(crate) days: Option<u32>,
}

pub(crate) async fn baselines_of(d: &Dashboard, name: &str, q: &WindowQuery) -> ApiResult<figures::Baselines> {
    let shown = d.shown(name)?;
    let n = q.n.unwrap_or(20);
    if !(1..=MAX_RECORDS).contains(&n) {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("n {n} is not 1 to {MAX_RECORDS}")));
    }
    let records = shown.records(MAX_RECORDS.min(n.saturating_mul(3).max(50))).await?;
    Ok(figures::baselines(&records, n))
}

pub(crate) async fn baselines(
    State(d): State<Dashboard>,
    Path(name): Path<String>,
    Query(q): Query<WindowQuery>,
) -> ApiResult<Json<figures::Baselines>> {
    Ok(Json(baselines_of(&d, &name, &q).await?))
}

pub(crate) async fn dora_of(d: &Dashboard, name: &str, q: &WindowQuery) -> ApiResult<figures::Dora> {
    let shown = d.shown(name)?;
    let days = q.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("days {days} is not 1 to 366")));
    }
    let records = shown.records(MAX_RECORDS).await?;
    Ok(figures::dora(&records, d.clock.now(), days))
}

pub(crate) async fn dora(
    State(d): State<Dashboard>,
    Path(name): Path<String>,
    Query(q): Query<WindowQuery>,
) -> ApiResult<Json<figures::Dora>> {
    Ok(Json(dora_of(&d, &name, &q).await?))
}

/// The pipeline's events as server-sent events (`event:` the kind, `data:` the event's JSON).
pub(crate) async fn events(
    State(d): State<Dashboard>,
    Path(name): Path<String>,
) -> ApiResult<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>> {
    let Shown::Live(pipeline) = d.shown(&name)? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("pipeline {name:?} is shown from a store: no live events"),
        ));
    };
    let stream = pipeline.subscribe();
    let closing = d.closing.clone();
    let events = futures_util::stream::unfold((stream, closing), |(mut stream, closing)| async move {
        let event = tokio::select! {
            () = closing.cancelled() => return None,
            event = stream.recv() => event?,
        };
        let data = serde_json::to_string(&event).unwrap_or_default();
        let kind = serde_json::to_value(&event.kind)
            .ok()
            .and_then(|v| v.get("event").and_then(|k| k.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "event".into());
        Some((Ok(SseEvent::default().event(kind).data(data)), (stream, closing)))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The action token check: 403 without the token, or when actions are off.
fn authorize(d: &Dashboard, headers: &HeaderMap) -> ApiResult<()> {
    let Some(token) = &d.token else {
        return Err(ApiError(StatusCode::FORBIDDEN, "this dashboard is read-only".into()));
    };
    let given = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let expected = format!("Bearer {token}");
    // Compared in full whatever the length, not stopping at the first difference.
    let same = given.is_some_and(|g| {
        g.len() == expected.len() && g.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    if same { Ok(()) } else { Err(ApiError(StatusCode::FORBIDDEN, "a valid action token is needed".into())) }
}

fn live(d: &Dashboard, name: &str) -> ApiResult<std::sync::Arc<crate::pipeline::Pipeline>> {
    match d.shown(name)? {
        Shown::Live(p) => Ok(std::sync::Arc::clone(p)),
        Shown::Stored { .. } => {
            Err(ApiError(StatusCode::FORBIDDEN, format!("pipeline {name:?} is shown from a store: no actions")))
        }
    }
}

/// An action's answer: the execution it started (it runs on; follow it on its page).
#[derive(Debug, Serialize)]
pub(crate) struct Started {
    pub(crate) started: bool,
    pub(crate) detail: String,
}

pub(crate) async fn switch_back(
    State(d): State<Dashboard>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<Started>)> {
    authorize(&d, &headers)?;
    let pipeline = live(&d, &name)?;
    tokio::spawn(async move {
        if let Err(e) = pipeline.switch_back().await {
            tracing::warn!(error = %e, "switch back from the dashboard failed");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(Started { started: true, detail: "switching back".into() })))
}

/// `{"commit": "..."}`.
#[derive(Debug, Deserialize)]
pub(crate) struct RedeployBody {
    pub(crate) commit: String,
}

pub(crate) async fn redeploy(
    State(d): State<Dashboard>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Started>)> {
    authorize(&d, &headers)?;
    let pipeline = live(&d, &name)?;
    let body: RedeployBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError(StatusCode::BAD_REQUEST, format!("a JSON body {{\"commit\": \"...\"}} is needed: {e}"))
    })?;
    let commit = CommitId::parse(body.commit).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let detail = format!("redeploying {commit}");
    tokio::spawn(async move {
        if let Err(e) = pipeline.redeploy(&commit).await {
            tracing::warn!(error = %e, "redeploy from the dashboard failed");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(Started { started: true, detail })))
}

pub(crate) async fn cancel(
    State(d): State<Dashboard>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Started>> {
    authorize(&d, &headers)?;
    let pipeline = live(&d, &name)?;
    let cancelled = pipeline.cancel_running();
    let detail = if cancelled { "cancelling the running execution" } else { "no execution is running here" };
    Ok(Json(Started { started: cancelled, detail: detail.into() }))
}
