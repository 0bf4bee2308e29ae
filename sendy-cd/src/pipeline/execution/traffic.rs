//! Traffic: reading and moving the weighted DNS records, and waiting for a change to apply.

use super::*;
use crate::analysis::{AlarmGate, AlarmSource, MetricRequest, MetricSource, Series, Verdict};
use crate::pipeline::Canary;
use crate::record::AnalysisRecord;

impl<'a> Execution<'a> {
    pub(super) async fn read_weights(&mut self) -> Result<TrafficSplit> {
        self.read_weights_in(Stage::Traffic).await
    }

    pub(super) async fn read_weights_in(&mut self, stage: Stage) -> Result<TrafficSplit> {
        let inner = self.inner;
        let dns = inner.cfg.dns.as_ref().ok_or_else(|| Error::InvalidConfig("no DNS switch".into()))?;
        self.step(Step::ReadWeights, stage, None, None, inner.cfg.retry.retry("read weights", || dns.weights()), |w| {
            Some(w.to_string())
        })
        .await
    }

    /// Fails if someone else changed the weights since the execution read them.
    pub(super) async fn ensure_weights_unchanged(&mut self) -> Result<()> {
        let now = self.read_weights().await?;
        if Some(&now) != self.traffic_before.as_ref() {
            return Err(Error::StageFailed {
                stage: Stage::Traffic,
                reason: format!(
                    "the weights changed while deploying (were {}, are {now}); not switching",
                    self.traffic_before.as_ref().map(ToString::to_string).unwrap_or_default()
                ),
            });
        }
        Ok(())
    }

    /// `percent` of the traffic to `target`, the rest to `previous`, none to other environments.
    pub(super) fn split(&self, target: usize, previous: usize, percent: u8) -> Result<TrafficSplit> {
        let envs = &self.inner.cfg.environments;
        let weight = |e: usize| {
            if e == target {
                percent
            } else if e == previous {
                100 - percent
            } else {
                0
            }
        };
        Ok(TrafficSplit::new((0..envs.len()).map(|e| (envs[e].dns_target.clone(), weight(e))))?)
    }

    /// All the traffic to `to`, none to the other environments.
    pub(super) fn split_all(&self, to: usize) -> Result<TrafficSplit> {
        let envs = &self.inner.cfg.environments;
        Ok(TrafficSplit::new(
            envs.iter().enumerate().map(|(e, env)| (env.dns_target.clone(), if e == to { 100 } else { 0 })),
        )?)
    }

    pub(super) async fn shift(&mut self, split: TrafficSplit, label: &str, bake: Duration) -> Result<()> {
        let target = self.target;
        staged!(self, Stage::Traffic, target, self.shift_stage(split, label, bake))
    }

    /// Moves the weights to `split`, waits until applied and one TTL, then bakes for `bake`.
    pub(super) async fn shift_stage(&mut self, split: TrafficSplit, label: &str, bake: Duration) -> Result<()> {
        self.set_stage_detail(format!("{label}: {split}"));
        self.set_weights(Stage::Traffic, &split, true, false).await?;
        if !bake.is_zero() {
            self.bake(bake, format!("{label} for {bake:?}")).await?;
        }
        Ok(())
    }

    /// Sets `split` and waits until it is applied (and, if `wait_ttl`, one TTL more).
    pub(super) async fn set_weights(
        &mut self,
        stage: Stage,
        split: &TrafficSplit,
        wait_ttl: bool,
        recovering: bool,
    ) -> Result<()> {
        let inner = self.inner;
        let dns = inner.cfg.dns.as_ref().ok_or_else(|| Error::InvalidConfig("no DNS switch".into()))?;
        let retry = if recovering { &inner.cfg.recovery_retry } else { &inner.cfg.retry };
        // Counted as moved before the call: a call that times out may still have been applied.
        self.traffic_moved = true;
        // A retry after an ambiguous failure first reads the weights: if the lost attempt applied
        // them, the change is not sent again (its id is lost with the answer: no change to wait for).
        let change = self
            .step(
                Step::SetWeights,
                stage,
                self.target,
                Some(split.to_string()),
                retry.retry_reconciled(
                    "set weights",
                    || async { dns.set_weights(split).await.map(Some) },
                    || async { Ok((dns.weights().await? == *split).then_some(None)) },
                ),
                |c| {
                    Some(match c {
                        Some(c) => format!("{split} (change {c})"),
                        None => format!("{split} (found applied: an earlier attempt took effect)"),
                    })
                },
            )
            .await?;
        if !recovering {
            self.traffic_applied = true;
        }
        self.emitter().emit(EventKind::TrafficShifted { weights: split.clone() });
        let target = self.target;
        if let Some(change) = change {
            self.wait_change(stage, target, &change).await?;
        }
        if wait_ttl {
            let ttl = dns.ttl();
            self.pause(Step::WaitTtl, stage, ttl, format!("{ttl:?}")).await?;
        }
        Ok(())
    }

    /// Waits until DNS change `change` is applied.
    async fn wait_change(&mut self, stage: Stage, target: Option<usize>, change: &Id) -> Result<()> {
        let inner = self.inner;
        let dns = inner.cfg.dns.as_ref().ok_or_else(|| Error::InvalidConfig("no DNS switch".into()))?;
        let change_ref = change;
        self.wait_step(
            Step::WaitDnsChange,
            stage,
            target,
            change.to_string(),
            "DNS change",
            inner.cfg.deadlines.traffic,
            |progress| async move {
                Ok(match dns.change_status(change_ref).await? {
                    ChangeStatus::Applied => Check::Ready(()),
                    ChangeStatus::Pending => {
                        progress.report(format!("change {change_ref} pending"));
                        Check::Pending
                    }
                })
            },
            |()| None,
        )
        .await
    }
}

impl<'a> Execution<'a> {
    /// A canary step's metric analysis: `target` judged against `previous`, which serves the rest of
    /// the traffic, over the same intervals. Anything but a pass fails the step.
    pub(super) async fn analyze(&mut self, target: usize, previous: usize, percent: u8) -> Result<()> {
        let env = Some(target);
        staged!(self, Stage::Traffic, env, self.analyze_stage(target, previous, percent))
    }

    async fn analyze_stage(&mut self, target: usize, previous: usize, percent: u8) -> Result<()> {
        let inner = self.inner;
        let Strategy::Canary(Canary { analysis: Some(analysis), .. }) = &inner.cfg.strategy else {
            return Err(Error::InvalidConfig("no canary analysis".into()));
        };
        let envs = &inner.cfg.environments;
        let (canary, baseline) = (envs[target].name.clone(), envs[previous].name.clone());
        self.analyze_between(target, analysis, canary, baseline, format!("canary {percent}%")).await
    }

    /// The analysis `analysis` of `canary` against `baseline` (names the metric source knows) as a
    /// step of environment `target`; anything but a pass fails the step.
    pub(super) async fn analyze_between(
        &mut self,
        target: usize,
        analysis: &crate::analysis::Analysis,
        canary: crate::model::EnvironmentName,
        baseline: crate::model::EnvironmentName,
        phase: String,
    ) -> Result<()> {
        let inner = self.inner;
        let source =
            inner.cfg.metrics.as_ref().ok_or_else(|| Error::InvalidConfig("no metric source".into()))?.as_ref();
        self.set_stage_detail(format!("{phase}: analysis of {canary} against {baseline}"));
        let emitter = self.emitter();
        let retry = &inner.cfg.retry;
        let (c, b, p) = (&canary, &baseline, &phase);
        let judgement = self
            .step(
                Step::Analyze,
                Stage::Traffic,
                Some(target),
                Some(format!("{phase}: {canary} against {baseline}")),
                async move {
                    let source = Guarded { source, retry, alarms: inner.cfg.alarms.as_ref() };
                    let j = analysis
                        .run(&source, b, c, inner.cfg.clock.now(), |j| {
                            emitter.emit(EventKind::AnalysisJudged {
                                environment: c.clone(),
                                phase: p.clone(),
                                intervals: j.intervals,
                                score: j.score,
                                verdict: j.verdict,
                            });
                        })
                        .await?;
                    let intervals = j.intervals;
                    Ok((j, intervals))
                },
                |j| {
                    Some(format!(
                        "{} (score {:.0} after {} intervals)",
                        j.verdict.map_or_else(|| "undecided".to_owned(), |v| v.to_string()),
                        j.score,
                        j.intervals
                    ))
                },
            )
            .await?;
        let failing: Vec<String> = judgement
            .metrics
            .iter()
            .filter(|m| m.verdict != Some(Verdict::Pass))
            .map(|m| format!("{}: {}", m.measure, m.statistic))
            .collect();
        let verdict = judgement.verdict;
        let score = judgement.score;
        self.update(|r| {
            r.analyses.push(AnalysisRecord {
                environment: canary.clone(),
                baseline: baseline.clone(),
                phase: phase.clone(),
                judgement,
            });
        });
        if verdict == Some(Verdict::Pass) {
            return Ok(());
        }
        Err(Error::StageFailed {
            stage: Stage::Traffic,
            reason: format!(
                "{canary} ({phase}): the analysis against {baseline} says {} (score {score:.0}): {}",
                verdict.map_or_else(|| "undecided".to_owned(), |v| v.to_string()),
                failing.join("; ")
            ),
        })
    }
}

/// The analysis's view of the metric source: behind the pipeline's alarm gate (a firing alarm fails
/// the fetch before it is made), its transient errors retried with the pipeline's policy.
struct Guarded<'s> {
    source: &'s dyn MetricSource,
    retry: &'s crate::wait::RetryPolicy,
    alarms: Option<&'s (std::sync::Arc<dyn AlarmSource>, AlarmGate)>,
}

#[async_trait::async_trait]
impl MetricSource for Guarded<'_> {
    async fn fetch(&self, request: &MetricRequest) -> Result<Vec<Series>> {
        if let Some((alarms, gate)) = self.alarms {
            check_alarms(alarms.as_ref(), gate, self.retry).await?;
        }
        let (value, _attempts) = self.retry.retry("fetch metrics", || self.source.fetch(request)).await?;
        Ok(value)
    }
}

/// Fails with the firing alarms' names if any of the gate's alarms is in `ALARM`.
async fn check_alarms(alarms: &dyn AlarmSource, gate: &AlarmGate, retry: &crate::wait::RetryPolicy) -> Result<()> {
    let (firing, _) = retry.retry("read alarms", || alarms.firing(&gate.names)).await?;
    if firing.is_empty() {
        return Ok(());
    }
    Err(Error::StageFailed { stage: Stage::Traffic, reason: format!("alarm in ALARM: {}", firing.join(", ")) })
}

impl Execution<'_> {
    /// A canary step's bake: `duration` of waiting, with the alarm gate checked every
    /// [`AlarmGate::interval`] and at the end.
    pub(super) async fn bake(&mut self, duration: Duration, detail: String) -> Result<()> {
        let Some((alarms, gate)) = &self.inner.cfg.alarms else {
            return self.pause(Step::Bake, Stage::Traffic, duration, detail).await;
        };
        let retry = &self.inner.cfg.retry;
        let target = self.target;
        let baking = async move {
            let (mut left, mut checks) = (duration, 0u32);
            loop {
                let nap = left.min(gate.interval);
                tokio::time::sleep(nap).await;
                left -= nap;
                checks += 1;
                check_alarms(alarms.as_ref(), gate, retry).await?;
                if left.is_zero() {
                    return Ok(((), checks));
                }
            }
        };
        self.step(Step::Bake, Stage::Traffic, target, Some(detail), baking, |()| None).await
    }
}
