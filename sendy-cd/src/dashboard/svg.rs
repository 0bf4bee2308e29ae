//! Charts drawn on the server, as inline SVG (through maud, so every label is escaped).

use maud::{Markup, html};

use crate::record::{ExecutionRecord, StageOutcome};

fn colour(outcome: &StageOutcome) -> &'static str {
    match outcome {
        StageOutcome::Succeeded => "#2e8b57",
        StageOutcome::Failed { .. } => "#c0392b",
        StageOutcome::Cancelled => "#999999",
        _ => "#3b82f6",
    }
}

/// Minutes and seconds of `ms`.
pub(crate) fn span(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}.{}s", s, (ms % 1000) / 100)
    }
}

/// The stages of `record` as a Gantt chart: one bar per stage run, on the execution's time axis; a
/// stage still running reaches `now_ms`.
pub(crate) fn timeline(record: &ExecutionRecord, now_ms: u64) -> Markup {
    let end = record
        .stages
        .iter()
        .map(|s| s.finished_ms.unwrap_or(now_ms))
        .chain(record.duration_ms)
        .max()
        .unwrap_or(1)
        .max(1);
    let (width, row, label) = (900.0_f64, 22.0_f64, 150.0_f64);
    let height = row * record.stages.len() as f64 + 24.0;
    let x = |ms: u64| label + (width - label - 10.0) * (ms as f64 / end as f64);
    html! {
        svg class="timeline" xmlns="http://www.w3.org/2000/svg" width=(width) height=(height)
            viewBox={"0 0 " (width) " " (height)} role="img" aria-label="stages of the execution over time" {
            @for (i, s) in record.stages.iter().enumerate() {
                @let y = row * i as f64 + 4.0;
                @let finished = s.finished_ms.unwrap_or(now_ms);
                @let w = (x(finished) - x(s.started_ms)).max(2.0);
                g class="stage" data-stage=(s.stage.as_str()) data-outcome=(outcome_word(&s.outcome)) {
                    text x="4" y={(y + 14.0)} font-size="12" {
                        (s.stage.as_str())
                        @if let Some(env) = &s.environment { " (" (env) ")" }
                    }
                    rect x=(x(s.started_ms)) y=(y) width=(w) height=(row - 6.0) fill=(colour(&s.outcome)) rx="2" {
                        title { (s.stage.as_str()) ": " (span(finished.saturating_sub(s.started_ms)))
                            @if let Some(d) = &s.detail { " - " (d) } }
                    }
                }
            }
            text x=(label) y=(height - 4.0) font-size="11" fill="#555" { "0" }
            text x=(width - 60.0) y=(height - 4.0) font-size="11" fill="#555" { (span(end)) }
        }
    }
}

fn outcome_word(o: &StageOutcome) -> &'static str {
    match o {
        StageOutcome::Succeeded => "succeeded",
        StageOutcome::Failed { .. } => "failed",
        StageOutcome::Cancelled => "cancelled",
        _ => "running",
    }
}

/// A bar chart of `(label, succeeded, failed)` per day.
pub(crate) fn daily_bars(days: &[(String, u32, u32)]) -> Markup {
    let max = days.iter().map(|(_, s, f)| s + f).max().unwrap_or(0).max(1);
    let (width, height) = (900.0_f64, 160.0_f64);
    let bar = (width - 20.0) / days.len().max(1) as f64;
    let y = |n: u32| (height - 20.0) * f64::from(n) / f64::from(max);
    html! {
        svg class="daily" xmlns="http://www.w3.org/2000/svg" width=(width) height=(height)
            viewBox={"0 0 " (width) " " (height)} role="img" aria-label="deployments per day" {
            @for (i, (label, s, f)) in days.iter().enumerate() {
                @let x0 = 10.0 + bar * i as f64;
                rect x=(x0) y=(height - 20.0 - y(*s)) width=((bar - 2.0).max(1.0)) height=(y(*s)) fill="#2e8b57" {
                    title { (label) ": " (s) " live, " (f) " failed" }
                }
                rect x=(x0) y=(height - 20.0 - y(*s) - y(*f)) width=((bar - 2.0).max(1.0)) height=(y(*f)) fill="#c0392b" {}
            }
            text x="10" y=(height - 4.0) font-size="11" fill="#555" { (days.first().map(|d| d.0.as_str()).unwrap_or("")) }
            text x=(width - 80.0) y=(height - 4.0) font-size="11" fill="#555" { (days.last().map(|d| d.0.as_str()).unwrap_or("")) }
            text x="10" y="12" font-size="11" fill="#555" { "max " (max) " a day" }
        }
    }
}

/// A line of `values` (milliseconds), in order.
pub(crate) fn trend(values: &[u64], label: &str) -> Markup {
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let (width, height) = (900.0_f64, 140.0_f64);
    let step = (width - 20.0) / (values.len().max(2) - 1) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!("{:.1},{:.1}", 10.0 + step * i as f64, height - 20.0 - (height - 30.0) * (*v as f64 / max as f64))
        })
        .collect();
    html! {
        svg class="trend" xmlns="http://www.w3.org/2000/svg" width=(width) height=(height)
            viewBox={"0 0 " (width) " " (height)} role="img" aria-label=(label) {
            polyline points=(points.join(" ")) fill="none" stroke="#3b82f6" stroke-width="2" {}
            text x="10" y="12" font-size="11" fill="#555" { (label) ", max " (span(max)) }
        }
    }
}
