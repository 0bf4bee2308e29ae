//! Helpers shared by the runnable examples of sendy-cd (see the `[[example]]` targets).

use std::future::Future;
use std::time::Duration;

use sendy_cd::{Event, EventKind, ExecutionRecord, Outcome, Recovery, StageOutcome};

/// Runs `job` on a current-thread runtime whose clock is paused: simulated time jumps ahead whenever
/// every task waits, so an hour of deployment runs in milliseconds.
pub fn simulated<F: Future>(job: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime")
        .block_on(job)
}

/// `h:mm:ss` of a duration.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A duration in milliseconds as `1m05s`.
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 60 { format!("{}m{:02}s", s / 60, s % 60) } else { format!("{}.{:01}s", s, ms % 1000 / 100) }
}

/// Prints one event as a line, prefixed with the simulated time since the run began (`offset` is the
/// simulated time the execution started at).
pub fn print_event(offset: Duration, event: &Event) {
    let at = clock(offset + Duration::from_millis(event.elapsed_ms));
    match &event.kind {
        EventKind::ExecutionStarted { revision: Some(r), strategy } => {
            println!("[{at}] ▶ deploying {} \"{}\" ({strategy})", r.commit.short(), r.message);
        }
        EventKind::StageStarted { stage, environment } => {
            let on = environment.as_ref().map(|e| format!(" on {e}")).unwrap_or_default();
            println!("[{at}]   {stage:<8} started{on}");
        }
        EventKind::StageProgress { stage, message } => println!("[{at}]   {stage:<8} {message}"),
        EventKind::StageFinished { stage, duration_ms, outcome, .. } => {
            let how = match outcome {
                StageOutcome::Succeeded => "succeeded".to_owned(),
                StageOutcome::Failed { reason } => format!("FAILED: {reason}"),
                StageOutcome::Cancelled => "cancelled".to_owned(),
                StageOutcome::Running => "running".to_owned(),
                other => format!("{other:?}"),
            };
            println!("[{at}]   {stage:<8} {how} in {}", span(*duration_ms));
        }
        EventKind::TrafficShifted { weights } => println!("[{at}]   traffic  weights now {weights}"),
        EventKind::ExecutionFinished { outcome, duration_ms } => {
            println!("[{at}] ■ {} after {}", describe(outcome), span(*duration_ms));
        }
        _ => {}
    }
}

/// One line for an outcome.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Succeeded => "succeeded".into(),
        Outcome::Failed { stage, reason, recovery } => {
            format!("FAILED at {stage}: {reason}; {}", recovery_line(recovery))
        }
        Outcome::Cancelled { recovery, .. } => format!("cancelled; {}", recovery_line(recovery)),
        Outcome::Interrupted { stage, recovery } => format!(
            "interrupted{}; settled by a later process: {}",
            stage.map(|s| format!(" during {s}")).unwrap_or_default(),
            recovery_line(recovery)
        ),
        Outcome::Running => "running".into(),
        other => format!("{other:?}"),
    }
}

fn recovery_line(recovery: &Recovery) -> String {
    match recovery {
        Recovery::NotNeeded => "users saw nothing".into(),
        Recovery::TrafficRestored { to } => format!("all traffic sent back to {to}"),
        Recovery::ServiceRolledBack { revision } => format!("service rolled back to {revision}"),
        Recovery::Failed { reason } => format!("UNDOING FAILED: {reason}"),
        other => format!("{other:?}"),
    }
}

/// A short table of a record's stages.
pub fn print_record(record: &ExecutionRecord) {
    for s in &record.stages {
        let on = s.environment.as_ref().map(|e| e.as_str()).unwrap_or("-");
        let took = s.duration_ms().map(span).unwrap_or_default();
        println!("    {:<8} {:<6} {:>8}  {}", s.stage.to_string(), on, took, s.detail.as_deref().unwrap_or(""));
    }
}
