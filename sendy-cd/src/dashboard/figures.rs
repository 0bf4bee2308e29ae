//! What the dashboard computes from the records: stage baselines and DORA metrics. Pure functions of
//! the records (and of "now"), so the pages, the JSON API and the tests agree by construction.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Id, Stage};
use crate::record::{ExecutionKind, ExecutionRecord, Outcome, Recovery, Step};

/// One stage's usual duration over the last successful executions.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StageBaseline {
    /// The stage.
    pub stage: Stage,
    /// How many executions had it.
    pub samples: usize,
    /// Median duration, in milliseconds.
    pub median_ms: u64,
    /// 90th percentile (nearest rank), in milliseconds.
    pub p90_ms: u64,
}

/// One execution's stage, against its baseline.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StageMark {
    /// The stage.
    pub stage: Stage,
    /// How long it took in this execution (all its runs of that stage), in milliseconds.
    pub duration_ms: u64,
    /// Slower than the baseline's 90th percentile.
    pub slower: bool,
}

/// One execution, its stages marked against the baselines.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ExecutionMarks {
    /// The execution.
    pub id: Id,
    /// When it started.
    pub started_at: jiff::Timestamp,
    /// How it ended (`succeeded`, `failed`, ...).
    pub outcome: String,
    /// Its stages.
    pub stages: Vec<StageMark>,
}

/// Baselines per stage, and the executions marked against them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Baselines {
    /// The successful executions the baselines are made of (at most the window asked for).
    pub samples: usize,
    /// Per stage, in pipeline order.
    pub stages: Vec<StageBaseline>,
    /// The executions given, newest first, marked.
    pub executions: Vec<ExecutionMarks>,
}

/// The time each stage kind took in `record`, summed over its runs (finished runs only).
pub fn stage_durations(record: &ExecutionRecord) -> BTreeMap<Stage, u64> {
    let mut out = BTreeMap::new();
    for s in &record.stages {
        if let Some(d) = s.duration_ms() {
            *out.entry(s.stage).or_insert(0) += d;
        }
    }
    out
}

/// Nearest-rank percentile `p` (0 to 100) of sorted `values`.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(sorted: &[u64]) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2 }
}

/// Baselines over the newest `window` successful executions among `records` (newest first), and
/// every record marked against them.
pub fn baselines(records: &[ExecutionRecord], window: usize) -> Baselines {
    let successful: Vec<&ExecutionRecord> =
        records.iter().filter(|r| r.outcome == Outcome::Succeeded && !r.stages.is_empty()).take(window).collect();
    let mut per_stage: BTreeMap<Stage, Vec<u64>> = BTreeMap::new();
    for r in &successful {
        for (stage, d) in stage_durations(r) {
            per_stage.entry(stage).or_default().push(d);
        }
    }
    let stages: Vec<StageBaseline> = per_stage
        .into_iter()
        .map(|(stage, mut v)| {
            v.sort_unstable();
            StageBaseline { stage, samples: v.len(), median_ms: median(&v), p90_ms: percentile(&v, 90.0) }
        })
        .collect();
    let executions = records
        .iter()
        .map(|r| ExecutionMarks {
            id: r.id.clone(),
            started_at: r.started_at,
            outcome: outcome_name(&r.outcome).to_owned(),
            stages: stage_durations(r)
                .into_iter()
                .map(|(stage, duration_ms)| StageMark {
                    stage,
                    duration_ms,
                    // Compared only against a baseline of at least three samples.
                    slower: stages.iter().any(|b| b.stage == stage && b.samples >= 3 && duration_ms > b.p90_ms),
                })
                .collect(),
        })
        .collect();
    Baselines { samples: successful.len(), stages, executions }
}

/// The name of an outcome, as the JSON has it.
pub fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Running => "running",
        Outcome::Succeeded => "succeeded",
        Outcome::Failed { .. } => "failed",
        Outcome::Cancelled { .. } => "cancelled",
        Outcome::Interrupted { .. } => "interrupted",
    }
}

/// When `record` ended, if it did.
pub fn ended_at(record: &ExecutionRecord) -> Option<jiff::Timestamp> {
    let ms = record.duration_ms?;
    record.started_at.checked_add(jiff::SignedDuration::from_millis(i64::try_from(ms).ok()?)).ok()
}

/// Deployments, day by day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Day {
    /// The day (UTC).
    pub date: jiff::civil::Date,
    /// Deployments that put their revision live.
    pub succeeded: u32,
    /// Deployments that failed (change failures and failures before users saw anything).
    pub failed: u32,
}

/// The four DORA metrics over a window, with the figures behind them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Dora {
    /// The window's start.
    pub from: jiff::Timestamp,
    /// The window's end.
    pub to: jiff::Timestamp,
    /// Days in the window.
    pub days: u32,
    /// Deployments that put their revision live (`succeeded` deploys and redeploys that changed
    /// something).
    pub deployments: u32,
    /// Deployment frequency: `deployments` per day.
    pub per_day: f64,
    /// Lead time for changes, per successful deployment: the commit's time to all traffic on it
    /// (the execution's end), in milliseconds.
    pub lead_times_ms: Vec<(Id, u64)>,
    /// Their median.
    pub lead_time_median_ms: Option<u64>,
    /// Change failures: deployments that failed after users could see them (traffic moved, or the
    /// live service changed: their recovery was not `not_needed`).
    pub change_failures: u32,
    /// Deployments that failed before users saw anything (the pipeline's checks caught them).
    pub caught_failures: u32,
    /// Change failure rate: change failures over change failures and successful deployments.
    pub change_failure_rate: Option<f64>,
    /// Time to restore, per change failure: from the first change users could see (the first
    /// traffic or rollout step) to good traffic again (the end of its recovery, or, when recovery
    /// failed, the end of the next successful deployment), in milliseconds.
    pub restores_ms: Vec<(Id, u64)>,
    /// Their median.
    pub restore_median_ms: Option<u64>,
    /// Day by day, oldest first.
    pub daily: Vec<Day>,
}

fn is_deployment(r: &ExecutionRecord) -> bool {
    matches!(r.kind, ExecutionKind::Deploy | ExecutionKind::Redeploy) && r.revision.is_some()
}

/// When users could first see `r`'s change: its first step that moves traffic or changes a live
/// service.
fn first_visible(r: &ExecutionRecord) -> Option<jiff::Timestamp> {
    let step = r.steps.iter().find(|s| {
        matches!(s.step, Step::SetWeights | Step::DecideHook)
            || (s.step == Step::Deploy && matches!(r.strategy.as_str(), "all_at_once" | "ecs_managed"))
    })?;
    r.started_at.checked_add(jiff::SignedDuration::from_millis(i64::try_from(step.started_ms).ok()?)).ok()
}

fn millis_between(a: jiff::Timestamp, b: jiff::Timestamp) -> u64 {
    u64::try_from(b.duration_since(a).as_millis()).unwrap_or(0)
}

/// DORA metrics of `records` (any order) over the `days` days before `now`.
pub fn dora(records: &[ExecutionRecord], now: jiff::Timestamp, days: u32) -> Dora {
    let from = now.checked_sub(jiff::SignedDuration::from_hours(24 * i64::from(days))).unwrap_or(now);
    let mut deployments: Vec<&ExecutionRecord> = records.iter().filter(|r| is_deployment(r)).collect();
    deployments.sort_by_key(|r| r.started_at);
    let in_window = |r: &ExecutionRecord| ended_at(r).is_some_and(|t| t >= from && t <= now);
    let succeeded = |r: &ExecutionRecord| r.outcome == Outcome::Succeeded && !r.stages.is_empty();
    let mut lead_times_ms = vec![];
    let mut restores_ms = vec![];
    let (mut count, mut change_failures, mut caught) = (0u32, 0u32, 0u32);
    let mut daily: BTreeMap<jiff::civil::Date, (u32, u32)> = BTreeMap::new();
    for (i, r) in deployments.iter().enumerate() {
        if !in_window(r) {
            continue;
        }
        let end = ended_at(r).expect("in the window only when ended");
        let day = end.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
        if succeeded(r) {
            count += 1;
            daily.entry(day).or_default().0 += 1;
            if let Some(rev) = &r.revision {
                lead_times_ms.push((r.id.clone(), millis_between(rev.time, end)));
            }
            continue;
        }
        let recovery = match &r.outcome {
            Outcome::Failed { recovery, .. } | Outcome::Interrupted { recovery, .. } => recovery,
            _ => continue,
        };
        daily.entry(day).or_default().1 += 1;
        if *recovery == Recovery::NotNeeded {
            caught += 1;
            continue;
        }
        change_failures += 1;
        let restored = match recovery {
            Recovery::Failed { .. } => deployments[i + 1..].iter().find(|n| succeeded(n)).and_then(|n| ended_at(n)),
            _ => Some(end),
        };
        if let (Some(start), Some(restored)) = (first_visible(r), restored) {
            restores_ms.push((r.id.clone(), millis_between(start, restored)));
        }
    }
    let med = |v: &[(Id, u64)]| {
        let mut x: Vec<u64> = v.iter().map(|(_, d)| *d).collect();
        x.sort_unstable();
        (!x.is_empty()).then(|| median(&x))
    };
    let mut days_list = vec![];
    let mut d = from.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let last = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    while d <= last {
        let (s, f) = daily.get(&d).copied().unwrap_or_default();
        days_list.push(Day { date: d, succeeded: s, failed: f });
        match d.tomorrow() {
            Ok(next) => d = next,
            Err(_) => break,
        }
    }
    Dora {
        from,
        to: now,
        days,
        deployments: count,
        per_day: if days == 0 { 0.0 } else { f64::from(count) / f64::from(days) },
        lead_time_median_ms: med(&lead_times_ms),
        lead_times_ms,
        change_failures,
        caught_failures: caught,
        change_failure_rate: (count + change_failures > 0)
            .then(|| f64::from(change_failures) / f64::from(count + change_failures)),
        restore_median_ms: med(&restores_ms),
        restores_ms,
        daily: days_list,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BranchName, CommitId, Revision};
    use crate::record::{StageOutcome, StageRecord};

    fn record(n: u64, at: i64, outcome: Outcome, stages: &[(Stage, u64)]) -> ExecutionRecord {
        let commit = CommitId::parse(format!("{n:040x}")).unwrap();
        let mut revision = Revision::new(commit, BranchName::default());
        revision.time = jiff::Timestamp::from_second(at - 600).unwrap();
        let mut r = ExecutionRecord::started(
            Id::parse(format!("exec-{n}")).unwrap(),
            ExecutionKind::Deploy,
            Some(revision),
            "blue_green",
        );
        r.started_at = jiff::Timestamp::from_second(at).unwrap();
        let mut t = 0;
        for (stage, d) in stages {
            r.stages.push(StageRecord::finished(*stage, t, t + d, StageOutcome::Succeeded));
            t += d;
        }
        r.duration_ms = Some(t);
        r.outcome = outcome;
        r
    }

    #[test]
    fn baselines_are_medians_and_p90s_of_successful_runs_and_mark_slow_stages() {
        let mut records: Vec<ExecutionRecord> = (1..=10)
            .map(|n| record(n, 1_000 * n as i64, Outcome::Succeeded, &[(Stage::Build, 100 * n), (Stage::Rollout, 50)]))
            .collect();
        records.push(record(11, 20_000, Outcome::Succeeded, &[(Stage::Build, 5_000), (Stage::Rollout, 50)]));
        records.reverse(); // newest first
        let b = baselines(&records, 10);
        assert_eq!(b.samples, 10, "the window");
        let build = b.stages.iter().find(|s| s.stage == Stage::Build).unwrap();
        // The ten newest: 11 (5,000) and 10..2 (1,000 .. 200).
        assert_eq!(build.samples, 10);
        assert_eq!(build.median_ms, 650);
        assert_eq!(build.p90_ms, 1_000);
        let newest = &b.executions[0];
        assert!(newest.stages.iter().any(|m| m.stage == Stage::Build && m.slower), "5 s against a 1 s p90");
        assert!(newest.stages.iter().any(|m| m.stage == Stage::Rollout && !m.slower));
    }

    #[test]
    fn dora_counts_deployments_lead_times_change_failures_and_restores() {
        let day = 86_400;
        let now = jiff::Timestamp::from_second(10 * day).unwrap();
        let ok = |n, at| record(n, at, Outcome::Succeeded, &[(Stage::Build, 60_000), (Stage::Traffic, 60_000)]);
        let mut caught = record(3, 8 * day, Outcome::Succeeded, &[(Stage::Build, 60_000)]);
        caught.outcome = Outcome::Failed { stage: Stage::Verify, reason: "x".into(), recovery: Recovery::NotNeeded };
        let mut harmful = record(4, 9 * day, Outcome::Succeeded, &[(Stage::Build, 60_000), (Stage::Traffic, 60_000)]);
        harmful.outcome = Outcome::Failed {
            stage: Stage::Traffic,
            reason: "x".into(),
            recovery: Recovery::TrafficRestored { to: crate::model::EnvironmentName::parse("blue").unwrap() },
        };
        harmful.steps.push(crate::record::StepRecord::at(Step::SetWeights, Stage::Traffic, 90_000));
        let records = vec![ok(1, 7 * day), ok(2, 8 * day), caught, harmful, ok(5, day / 2)];
        let d = dora(&records, now, 7);
        assert_eq!(d.deployments, 2, "two in the window (the first is older)");
        assert!((d.per_day - 2.0 / 7.0).abs() < 1e-9);
        // Committed ten minutes before its start, live two minutes after it.
        assert_eq!(d.lead_time_median_ms, Some(720_000));
        assert_eq!((d.change_failures, d.caught_failures), (1, 1));
        assert_eq!(d.change_failure_rate, Some(1.0 / 3.0));
        // From its first weight change (90 s in) to the end of its recovery (120 s in).
        assert_eq!(d.restores_ms, vec![(Id::parse("exec-4").unwrap(), 30_000)]);
        assert_eq!(d.daily.len(), 8);
        assert_eq!(d.daily.iter().map(|x| x.succeeded).sum::<u32>(), 2);
        assert_eq!(d.daily.iter().map(|x| x.failed).sum::<u32>(), 2);
    }
}
