//! The pages: server-rendered HTML (maud escapes every value), made from the same functions as the
//! JSON API; a few lines of JavaScript keep them live from the event stream without a reload.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::Uri;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::api::{self, ApiResult, ListQuery, PipelineView, WindowQuery};
use super::{Dashboard, Shown, svg};
use crate::record::{ExecutionRecord, Outcome, Recovery};

pub(crate) const STYLE: &str = "
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1f2937;background:#f8fafc}
header{background:#111827;color:#fff;padding:10px 20px}header a{color:#fff;margin-right:16px;text-decoration:none}
main{padding:16px 20px}table{border-collapse:collapse;margin:8px 0 16px;background:#fff}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;font-size:14px;vertical-align:top}
th{background:#f3f4f6}.succeeded{color:#166534}.failed,.interrupted{color:#b91c1c}.running{color:#1d4ed8}
.cancelled{color:#6b7280}td.slower{background:#fee2e2;font-weight:600}.figure{display:inline-block;
background:#fff;border:1px solid #e5e7eb;padding:10px 16px;margin:0 12px 12px 0}.figure b{font-size:22px;
display:block}code{font-size:13px}nav a{margin-right:10px}svg{background:#fff;border:1px solid #e5e7eb}
";

/// Where the router is mounted: the part of the request's path the router did not see.
pub(crate) fn prefix(original: &Uri, uri: &Uri) -> String {
    let (full, seen) = (original.path(), uri.path());
    let mounted = if seen == "/" { full } else { full.strip_suffix(seen).unwrap_or("") };
    mounted.trim_end_matches('/').to_owned()
}

pub(crate) fn layout(base: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No favicon request (a 404 in every browser's console).
                link rel="icon" href="data:,";
                title { (title) " - sendy-cd" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { a href={(base) "/"} { "sendy-cd" } span { (title) } }
                main { (body) }
            }
        }
    }
}

fn outcome_cell(outcome: &str) -> Markup {
    html! { span class=(outcome) { (outcome) } }
}

fn pipeline_nav(base: &str, name: &str) -> Markup {
    html! {
        nav {
            a href={(base) "/pipelines/" (name)} { "history" }
            a href={(base) "/pipelines/" (name) "/baselines"} { "baselines" }
            a href={(base) "/pipelines/" (name) "/dora"} { "DORA" }
        }
    }
}

fn pipelines_table(base: &str, views: &[PipelineView]) -> Markup {
    html! {
        table id="pipelines" {
            tr { th { "pipeline" } th { "strategy" } th { "live" } th { "weights" } th { "last execution" } th { "running" } th { "executions" } }
            @for v in views {
                tr data-pipeline=(v.name) {
                    td { a href={(base) "/pipelines/" (v.name)} { (v.name) } }
                    td { (v.strategy.as_deref().unwrap_or("-")) }
                    td class="live-env" { (v.live_environment.as_deref().unwrap_or("-")) }
                    td class="weights" {
                        @match &v.weights {
                            Some(w) => { @for (env, weight) in w { code { (env) "=" (weight) } " " } }
                            None => { "-" }
                        }
                    }
                    td class="last" {
                        @if let Some(l) = &v.last {
                            a href={(base) "/pipelines/" (v.name) "/executions/" (l.id)} { (l.id) } " " (outcome_cell(l.outcome))
                        } @else { "-" }
                    }
                    td class="running" {
                        @if let Some(r) = &v.running {
                            a href={(base) "/pipelines/" (v.name) "/executions/" (r.id)} { (r.id) }
                        } @else { "-" }
                    }
                    td class="count" { (v.executions) }
                }
            }
        }
    }
}

/// A script that re-renders `#live` from `fragment` on each event of the pipeline's stream (for
/// `execution`, only its own events), without reloading the page.
fn live_script(events: &str, fragment: &str, execution: Option<&str>, kinds: &[&str]) -> Markup {
    let execution = serde_json::to_string(&execution).unwrap_or_else(|_| "null".into());
    let kinds = serde_json::to_string(kinds).unwrap_or_else(|_| "[]".into());
    let events = serde_json::to_string(events).unwrap_or_default();
    let fragment = serde_json::to_string(fragment).unwrap_or_default();
    html! {
        script {
            (PreEscaped(format!(r#"
(function() {{
  var only = {execution}; var pending = false;
  var es = new EventSource({events});
  function refresh() {{
    if (pending) return; pending = true;
    fetch({fragment}, {{cache: "no-store"}}).then(function(r) {{ return r.text(); }}).then(function(t) {{
      document.getElementById("live").innerHTML = t; pending = false;
      document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
    }}).catch(function() {{ pending = false; }});
  }}
  es.onmessage = null;
  {kinds}.forEach(function(k) {{
    es.addEventListener(k, function(e) {{
      var ev = JSON.parse(e.data);
      if (only !== null && ev.execution !== only) return;
      refresh();
    }});
  }});
  document.body.dataset.live = "on";
}})();
"#)))
        }
    }
}

/// `?fragment=1`: the part the live script replaces, alone.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct FragmentQuery {
    fragment: Option<u8>,
}

pub(crate) async fn pipelines(
    State(d): State<Dashboard>,
    Query(q): Query<FragmentQuery>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
) -> ApiResult<Markup> {
    let base = prefix(&original, &uri);
    let mut views = vec![];
    for shown in d.shown.iter() {
        views.push(api::view(&d, shown).await?);
    }
    if q.fragment.is_some() {
        return Ok(pipelines_table(&base, &views));
    }
    let live: Vec<&str> = d
        .shown
        .iter()
        .filter_map(|s| match s {
            Shown::Live(p) => Some(p.name()),
            Shown::Stored { .. } => None,
        })
        .collect();
    Ok(layout(
        &base,
        "pipelines",
        html! {
            div id="live" { (pipelines_table(&base, &views)) }
            @if let Some(first) = live.first() {
                // The table follows the first live pipeline's events (re-rendered whole).
                // Coarse events only: each refresh reads the weights from the DNS switch (an AWS
                // call), which need not happen for every step.
                (live_script(
                    &format!("{base}/api/pipelines/{first}/events"),
                    &format!("{base}/?fragment=1"),
                    None,
                    &["execution_started", "stage_finished", "traffic_shifted", "execution_finished"],
                ))
            }
        },
    ))
}

pub(crate) async fn history(
    State(d): State<Dashboard>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
) -> ApiResult<Markup> {
    let base = prefix(&original, &uri);
    let shown = d.shown(&name)?;
    let page = api::list(shown, &q).await?;
    let filter = q.outcome.clone().unwrap_or_default();
    Ok(layout(
        &base,
        &format!("{name}: history"),
        html! {
            (pipeline_nav(&base, &name))
            p class="filters" {
                "outcome: "
                a href={(base) "/pipelines/" (name)} { "all" } " "
                @for o in ["succeeded", "failed", "cancelled", "interrupted", "running"] {
                    a href={(base) "/pipelines/" (name) "?outcome=" (o)} class=(if filter == o { "current" } else { "" }) { (o) } " "
                }
            }
            table id="history" {
                tr { th { "execution" } th { "kind" } th { "commit" } th { "started" } th { "duration" } th { "outcome" } th { "reason" } }
                @for e in &page.executions {
                    tr data-outcome=(e.outcome) {
                        td { a href={(base) "/pipelines/" (name) "/executions/" (e.id)} { (e.id) } }
                        td { (format!("{:?}", e.kind).to_lowercase()) }
                        td { code { (e.commit.as_deref().map(|c| &c[..c.len().min(12)]).unwrap_or("-")) } " " (e.message.as_deref().unwrap_or("")) }
                        td { (e.started_at.strftime("%Y-%m-%d %H:%M:%S").to_string()) }
                        td { (e.duration_ms.map(svg::span).unwrap_or_else(|| "-".into())) }
                        td { (outcome_cell(e.outcome)) }
                        td { (e.reason.as_deref().unwrap_or("")) }
                    }
                }
            }
            @if let Some(next) = page.next {
                a id="older" href={(base) "/pipelines/" (name) "?before=" (next)
                    @if !filter.is_empty() { "&outcome=" (filter) }
                    @if let Some(limit) = q.limit { "&limit=" (limit) } } { "older" }
            }
        },
    ))
}

/// The body of an execution's page (what the live script re-renders), and of the static report.
pub(crate) fn execution_body(r: &ExecutionRecord, now_ms: u64) -> Markup {
    let outcome = super::figures::outcome_name(&r.outcome);
    html! {
        table class="summary" {
            tr { th { "execution" } td id="execution-id" { (r.id) } }
            tr { th { "outcome" } td id="outcome" { (outcome_cell(outcome)) } }
            @if let Some(rev) = &r.revision {
                tr { th { "revision" } td { code { (rev.commit) } " " (rev.message) " (" (rev.author) ")" } }
            }
            tr { th { "kind / strategy" } td { (format!("{:?}", r.kind).to_lowercase()) " / " (r.strategy) } }
            tr { th { "started" } td { (r.started_at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()) } }
            tr { th { "duration" } td { (r.duration_ms.map(svg::span).unwrap_or_else(|| "running".into())) } }
            @if let Some(t) = &r.target { tr { th { "target" } td { (t) @if let Some(p) = &r.previous { " (from " (p) ")" } } } }
            @if let Some(img) = &r.image { tr { th { "image" } td { code { (img.image) } } } }
            @if let Some(b) = &r.traffic_before { tr { th { "traffic before" } td { (b) } } }
            @if let Some(a) = &r.traffic_after { tr { th { "traffic after" } td { (a) } } }
            @match &r.outcome {
                Outcome::Failed { stage, reason, recovery } => {
                    tr { th { "failed at" } td { (stage.as_str()) ": " (reason) } }
                    tr { th { "recovery" } td id="recovery" { (recovery_words(recovery)) } }
                }
                Outcome::Cancelled { recovery, .. } | Outcome::Interrupted { recovery, .. } => {
                    tr { th { "recovery" } td id="recovery" { (recovery_words(recovery)) } }
                }
                _ => {}
            }
            @if let Some(by) = &r.resumed_by { tr { th { "resumed by" } td { (by) } } }
        }
        h3 { "Stages" }
        (svg::timeline(r, now_ms))
        h3 { "Steps" }
        table id="steps" {
            tr { th { "step" } th { "stage" } th { "environment" } th { "at" } th { "took" } th { "outcome" } th { "handle / detail" } th { "calls" } }
            @for s in &r.steps {
                tr {
                    td { (format!("{:?}", s.step)) }
                    td { (s.stage.as_str()) }
                    td { (s.environment.as_ref().map(ToString::to_string).unwrap_or_default()) }
                    td { (svg::span(s.started_ms)) }
                    td { (s.finished_ms.map(|f| svg::span(f.saturating_sub(s.started_ms))).unwrap_or_else(|| "running".into())) }
                    td { (format!("{:?}", s.outcome)) }
                    td { code { (s.detail.as_deref().unwrap_or("")) } }
                    td { (s.calls) }
                }
            }
        }
        @if !r.verifications.is_empty() {
            h3 { "Verifications" }
            table id="verifications" {
                tr { th { "environment" } th { "phase" } th { "passed" } th { "probes" } }
                @for v in &r.verifications {
                    tr { td { (v.environment) } td { (v.phase) } td { (v.passed) } td { (v.report.successes) "/" (v.report.probes) " ok" } }
                }
            }
        }
        @if !r.analyses.is_empty() {
            h3 { "Analyses" }
            table id="analyses" {
                tr { th { "phase" } th { "canary / baseline" } th { "verdict" } th { "score" } th { "intervals" } th { "metrics" } }
                @for a in &r.analyses {
                    tr {
                        td { (a.phase) }
                        td { (a.environment) " / " (a.baseline) }
                        td { (a.judgement.verdict.map(|v| v.to_string()).unwrap_or_else(|| "undecided".into())) }
                        td { (format!("{:.0}", a.judgement.score)) }
                        td { (a.judgement.intervals) }
                        td { @for m in &a.judgement.metrics { div { b { (m.measure.to_string()) } ": " (m.statistic) } } }
                    }
                }
            }
        }
        @if let Some(m) = &r.managed {
            h3 { "ECS deployment" }
            p { code { (m.deployment) } ": " (m.revisions_before.join(", ")) " → " (m.revision_after.as_deref().unwrap_or("?"))
                @if let Some(s) = &m.state { " (" (s) ")" } }
            table id="hooks" {
                tr { th { "hook" } th { "production" } th { "decision" } th { "because" } }
                @for h in &m.hooks { tr { td { (h.stage) } td { (h.production_percent) "%" } td { (h.action) } td { (h.because) } } }
            }
        }
    }
}

fn recovery_words(r: &Recovery) -> String {
    match r {
        Recovery::NotNeeded => "nothing users saw had changed".into(),
        Recovery::TrafficRestored { to } => format!("all traffic back on {to}"),
        Recovery::ServiceRolledBack { revision } => format!("service rolled back to {revision}"),
        Recovery::Failed { reason } => format!("undoing FAILED: {reason}"),
    }
}

fn now_ms(d: &Dashboard, r: &ExecutionRecord) -> u64 {
    r.duration_ms.unwrap_or_else(|| u64::try_from(d.clock.now().duration_since(r.started_at).as_millis()).unwrap_or(0))
}

pub(crate) async fn execution(
    State(d): State<Dashboard>,
    Path((name, id)): Path<(String, String)>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
) -> ApiResult<Markup> {
    let base = prefix(&original, &uri);
    let r = api::record(&d, &name, &id).await?;
    let live = matches!(d.shown(&name)?, Shown::Live(_));
    Ok(layout(
        &base,
        &format!("{name}: {id}"),
        html! {
            (pipeline_nav(&base, &name))
            p { a href={(base) "/api/pipelines/" (name) "/executions/" (id)} { "JSON" } }
            div id="live" { (execution_body(&r, now_ms(&d, &r))) }
            @if live {
                (live_script(
                    &format!("{base}/api/pipelines/{name}/events"),
                    &format!("{base}/pipelines/{name}/executions/{id}/live"),
                    Some(&id),
                    &[
                        "execution_started", "stage_started", "stage_progress", "step_started", "step_finished",
                        "traffic_shifted", "analysis_judged", "managed_stage", "hook_decided", "stage_finished",
                        "execution_finished",
                    ],
                ))
            }
        },
    ))
}

/// The part of an execution's page the live script replaces.
pub(crate) async fn execution_live(
    State(d): State<Dashboard>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Markup> {
    let r = api::record(&d, &name, &id).await?;
    Ok(execution_body(&r, now_ms(&d, &r)))
}

pub(crate) async fn baselines(
    State(d): State<Dashboard>,
    Path(name): Path<String>,
    Query(q): Query<WindowQuery>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
) -> ApiResult<Markup> {
    let base = prefix(&original, &uri);
    let b = api::baselines_of(&d, &name, &q).await?;
    let stages: Vec<crate::model::Stage> = b.stages.iter().map(|s| s.stage).collect();
    Ok(layout(
        &base,
        &format!("{name}: baselines"),
        html! {
            (pipeline_nav(&base, &name))
            p { "Over the last " (b.samples) " successful executions (a stage is marked slower above its 90th percentile once it has 3 samples)." }
            table id="baselines" {
                tr { th { "stage" } th { "samples" } th { "median" } th { "p90" } }
                @for s in &b.stages { tr data-stage=(s.stage.as_str()) { td { (s.stage.as_str()) } td { (s.samples) } td { (svg::span(s.median_ms)) } td { (svg::span(s.p90_ms)) } } }
            }
            table id="marked" {
                tr { th { "execution" } th { "outcome" } @for s in &stages { th { (s.as_str()) } } }
                @for e in &b.executions {
                    tr {
                        td { a href={(base) "/pipelines/" (name) "/executions/" (e.id)} { (e.id) } }
                        td { (outcome_cell(&e.outcome)) }
                        @for s in &stages {
                            @match e.stages.iter().find(|m| m.stage == *s) {
                                Some(m) => { td class=(if m.slower { "slower" } else { "" }) { (svg::span(m.duration_ms)) } }
                                None => { td { "-" } }
                            }
                        }
                    }
                }
            }
        },
    ))
}

pub(crate) async fn dora(
    State(d): State<Dashboard>,
    Path(name): Path<String>,
    Query(q): Query<WindowQuery>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
) -> ApiResult<Markup> {
    let base = prefix(&original, &uri);
    let m = api::dora_of(&d, &name, &q).await?;
    let days: Vec<(String, u32, u32)> = m.daily.iter().map(|x| (x.date.to_string(), x.succeeded, x.failed)).collect();
    let leads: Vec<u64> = m.lead_times_ms.iter().map(|(_, v)| *v).collect();
    Ok(layout(
        &base,
        &format!("{name}: DORA"),
        html! {
            (pipeline_nav(&base, &name))
            p { "The last " (m.days) " days: " (m.from.strftime("%Y-%m-%d").to_string()) " to " (m.to.strftime("%Y-%m-%d").to_string()) "." }
            div class="figure" id="frequency" { b { (format!("{:.2}", m.per_day)) } "deployments a day (" (m.deployments) " live)" }
            div class="figure" id="lead-time" { b { (m.lead_time_median_ms.map(svg::span).unwrap_or_else(|| "-".into())) } "lead time for changes (median, commit to all traffic)" }
            div class="figure" id="failure-rate" {
                b { (m.change_failure_rate.map(|r| format!("{:.0} %", r * 100.0)).unwrap_or_else(|| "-".into())) }
                "change failure rate (" (m.change_failures) " change failures; " (m.caught_failures) " caught before users saw them)"
            }
            div class="figure" id="restore" { b { (m.restore_median_ms.map(svg::span).unwrap_or_else(|| "-".into())) } "time to restore (median)" }
            h3 { "Deployments per day" }
            (svg::daily_bars(&days))
            h3 { "Lead time per deployment" }
            (svg::trend(&leads, "lead time"))
        },
    ))
}
