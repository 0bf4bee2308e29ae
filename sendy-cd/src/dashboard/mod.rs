//! The deployment dashboard (feature `dashboard`): an [`axum::Router`] that an embedding service
//! mounts under any path, or [`Dashboard::serve`] for scripts.
//!
//! Pages (server-rendered HTML, charts as inline SVG, no asset from a CDN: it works offline), each
//! with the JSON API it is made from:
//!
//! | page | JSON |
//! |---|---|
//! | `/`: every pipeline, its live environment, weights, last outcome, running execution | `/api/pipelines` |
//! | `/pipelines/{name}`: history, newest first, filtered by outcome, paginated | `/api/pipelines/{name}/executions?outcome=&limit=&before=` |
//! | `/pipelines/{name}/executions/{id}`: stages as a timeline, steps with their handles, checks, analyses, ECS hooks, recovery; live | `/api/pipelines/{name}/executions/{id}` |
//! | `/pipelines/{name}/baselines?n=20`: per stage median and p90, executions marked | `/api/pipelines/{name}/baselines?n=20` |
//! | `/pipelines/{name}/dora?days=30`: frequency, lead time, change failure rate, time to restore | `/api/pipelines/{name}/dora?days=30` |
//!
//! `/api/pipelines/{name}/events` streams the pipeline's events (server-sent events): the pages
//! update from it without a reload. Read-only unless the embedding code enables actions
//! ([`DashboardBuilder::actions`]) with a token of its own: `POST /api/pipelines/{name}/switch_back`,
//! `/redeploy` (`{"commit": "..."}`) and `/cancel`, each with `Authorization: Bearer <token>`; a
//! request without it is refused with 403. [`report`] renders one execution as a single HTML file.

mod api;
mod figures;
mod pages;
pub mod report;
mod svg;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::record::ExecutionRecord;
use crate::store::Store;

pub use figures::{
    Baselines, Day, Dora, ExecutionMarks, StageBaseline, StageMark, baselines, dora, ended_at, outcome_name,
    stage_durations,
};

/// The most records a baselines or DORA view reads from the store.
pub const MAX_RECORDS: usize = 1000;

/// One pipeline the dashboard shows: a live one (its events, weights and actions), or the records a
/// store keeps under a name.
#[derive(Clone)]
pub(crate) enum Shown {
    Live(Arc<Pipeline>),
    Stored { name: String, store: Arc<dyn Store> },
}

impl Shown {
    fn name(&self) -> &str {
        match self {
            Shown::Live(p) => p.name(),
            Shown::Stored { name, .. } => name,
        }
    }

    fn store(&self) -> Arc<dyn Store> {
        match self {
            Shown::Live(p) => p.store(),
            Shown::Stored { store, .. } => Arc::clone(store),
        }
    }

    /// The newest `limit` records, newest first.
    async fn records(&self, limit: usize) -> Result<Vec<ExecutionRecord>> {
        let store = self.store();
        let mut out = vec![];
        let mut before = None;
        while out.len() < limit {
            let page = store.history(self.name(), (limit - out.len()).min(200), before).await?;
            out.extend(page.records);
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

/// The dashboard: built by [`Dashboard::builder`], served by [`router`](Self::router) or
/// [`serve`](Self::serve).
#[derive(Clone)]
pub struct Dashboard {
    pub(crate) shown: Arc<Vec<Shown>>,
    pub(crate) token: Option<Arc<str>>,
    pub(crate) clock: Arc<dyn crate::store::Clock>,
    /// Cancelled when a server of this dashboard shuts down: the event streams end, so that a
    /// graceful shutdown does not wait for their clients forever.
    pub(crate) closing: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("pipelines", &self.shown.iter().map(Shown::name).collect::<Vec<_>>())
            .field("actions", &self.token.is_some())
            .finish()
    }
}

/// Describes a [`Dashboard`].
#[derive(Default)]
#[must_use]
pub struct DashboardBuilder {
    shown: Vec<Shown>,
    token: Option<String>,
    clock: Option<Arc<dyn crate::store::Clock>>,
}

impl DashboardBuilder {
    /// Shows `pipeline`: its records (from its store), its live events, its weights; its actions
    /// when enabled.
    pub fn pipeline(mut self, pipeline: Arc<Pipeline>) -> Self {
        self.shown.push(Shown::Live(pipeline));
        self
    }

    /// Shows the records `store` keeps for pipeline `name` (read-only: no live events, no actions).
    pub fn stored(mut self, name: &str, store: Arc<dyn Store>) -> Self {
        self.shown.push(Shown::Stored { name: name.to_owned(), store });
        self
    }

    /// Enables the actions (`switch_back`, `redeploy`, `cancel`) for requests carrying
    /// `Authorization: Bearer <token>`. Default: none (read-only).
    pub fn actions(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// The clock "now" is read from (the end of the DORA window, a running execution's length).
    /// Default the system's; [`Account::clock`](crate::memory::Account::clock) for pipelines on the
    /// simulated account.
    pub fn clock(mut self, clock: impl crate::store::Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for no pipeline, a malformed name, two with the same name, or a token
    /// shorter than 16 characters or with characters outside printable ASCII.
    pub fn build(self) -> Result<Dashboard> {
        if self.shown.is_empty() {
            return Err(Error::InvalidConfig("a dashboard needs at least one pipeline".into()));
        }
        let name_ok =
            |n: &str| (1..=200).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if let Some(bad) = self.shown.iter().map(Shown::name).find(|n| !name_ok(n)) {
            return Err(Error::InvalidConfig(format!(
                "pipeline name {:?} must be 1 to 200 letters, digits, '.', '_' or '-'",
                crate::error::truncate(bad)
            )));
        }
        let mut names: Vec<&str> = self.shown.iter().map(Shown::name).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::InvalidConfig("a dashboard shows each pipeline name once".into()));
        }
        if let Some(t) = &self.token
            && (t.len() < 16 || !t.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(Error::InvalidConfig(
                "the dashboard's action token must be at least 16 printable ASCII characters".into(),
            ));
        }
        Ok(Dashboard {
            shown: Arc::new(self.shown),
            token: self.token.map(Arc::from),
            clock: self.clock.unwrap_or_else(|| Arc::new(crate::store::SystemClock)),
            closing: tokio_util::sync::CancellationToken::new(),
        })
    }
}

impl Dashboard {
    /// Starts describing a dashboard.
    pub fn builder() -> DashboardBuilder {
        DashboardBuilder::default()
    }

    fn find(&self, name: &str) -> Option<&Shown> {
        self.shown.iter().find(|s| s.name() == name)
    }

    /// The router: pages and JSON API, to mount under any path (`Router::nest`): every link the
    /// pages make is relative.
    pub fn router(&self) -> axum::Router {
        use axum::routing::{get, post};
        axum::Router::new()
            .route("/", get(pages::pipelines))
            .route("/pipelines/{name}", get(pages::history))
            .route("/pipelines/{name}/executions/{id}", get(pages::execution))
            .route("/pipelines/{name}/executions/{id}/live", get(pages::execution_live))
            .route("/pipelines/{name}/baselines", get(pages::baselines))
            .route("/pipelines/{name}/dora", get(pages::dora))
            .route("/api/pipelines", get(api::pipelines))
            .route("/api/pipelines/{name}", get(api::pipeline))
            .route("/api/pipelines/{name}/executions", get(api::executions))
            .route("/api/pipelines/{name}/executions/{id}", get(api::execution))
            .route("/api/pipelines/{name}/baselines", get(api::baselines))
            .route("/api/pipelines/{name}/dora", get(api::dora))
            .route("/api/pipelines/{name}/events", get(api::events))
            .route("/api/pipelines/{name}/switch_back", post(api::switch_back))
            .route("/api/pipelines/{name}/redeploy", post(api::redeploy))
            .route("/api/pipelines/{name}/cancel", post(api::cancel))
            .with_state(self.clone())
    }

    /// Serves the dashboard on `listener` until `shutdown` is cancelled.
    ///
    /// # Errors
    /// [`Error::Backend`] if the server fails.
    pub async fn serve_on(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<()> {
        let closing = self.closing.clone();
        axum::serve(listener, self.router())
            .with_graceful_shutdown(async move {
                shutdown.cancelled().await;
                // The event streams end with the server.
                closing.cancel();
            })
            .await
            .map_err(|e| Error::Backend(format!("dashboard server: {e}").into()))
    }

    /// Binds `addr` and serves the dashboard until `shutdown` is cancelled; returns the address
    /// bound (port 0 picks a free one) once listening, and the server's future.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `addr` cannot be bound.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<(SocketAddr, impl Future<Output = Result<()>> + Send + 'static)> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::InvalidConfig(format!("the dashboard cannot listen on {addr}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::InvalidConfig(format!("the dashboard cannot listen on {addr}: {e}")))?;
        let this = self.clone();
        Ok((bound, async move { this.serve_on(listener, shutdown).await }))
    }
}
