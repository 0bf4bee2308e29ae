//! The simulated build service and registry.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Account, Op, State};
use crate::builder::{BuildStatus, Builder, BuiltImage};
use crate::error::{Error, Result};
use crate::model::{BuildId, Digest, Revision};

pub(crate) struct BuildRec {
    revision: Revision,
    started: Instant,
    duration: Duration,
    failure: Option<String>,
    stopped: Option<Instant>,
}

/// The phases of a build and the share of its duration at which each starts.
const PHASES: [(&str, f64); 5] =
    [("QUEUED", 0.0), ("PROVISIONING", 0.05), ("PRE_BUILD", 0.15), ("BUILD", 0.25), ("POST_BUILD", 0.85)];

/// The account's build service, as a [`Builder`]: a build takes
/// [`SimConfig::build_duration`](super::SimConfig::build_duration), goes through CodeBuild's phases,
/// and pushes the image (tagged with the commit id) to the account's registry.
#[derive(Clone, Debug)]
pub struct MemoryBuilder {
    account: Account,
}

impl MemoryBuilder {
    pub(crate) fn new(account: Account) -> Self {
        MemoryBuilder { account }
    }
}

fn status_at(s: &mut State, id: &BuildId, now: Instant) -> Result<BuildStatus> {
    let rec = s.builds.get(id.as_str()).ok_or_else(|| Error::NotFound { kind: "build", id: id.to_string().into() })?;
    let elapsed = now.saturating_duration_since(rec.started);
    let fraction = elapsed.as_secs_f64() / rec.duration.as_secs_f64().max(f64::MIN_POSITIVE);
    let done_at = if rec.failure.is_some() { 0.85 } else { 1.0 };
    if let Some(stopped) = rec.stopped {
        let stopped_fraction =
            stopped.saturating_duration_since(rec.started).as_secs_f64() / rec.duration.as_secs_f64();
        if stopped_fraction < done_at {
            return Ok(BuildStatus::Stopped);
        }
    }
    if fraction < done_at {
        let phase = PHASES.iter().rev().find(|(_, from)| fraction >= *from).map_or("QUEUED", |(p, _)| p);
        return Ok(if phase == "QUEUED" {
            BuildStatus::Queued
        } else {
            BuildStatus::InProgress { phase: phase.into() }
        });
    }
    if let Some(reason) = &rec.failure {
        return Ok(BuildStatus::Failed { phase: "BUILD".into(), reason: reason.clone() });
    }
    let commit = rec.revision.commit.clone();
    let tag = commit.as_str().to_owned();
    let digest =
        s.registry.entry(tag.clone()).or_insert_with(|| Digest::of(format!("manifest {tag} {id}").as_bytes())).clone();
    let image = s.image(&tag)?.with_digest(digest.clone());
    Ok(BuildStatus::Succeeded(BuiltImage { image, digest, build: id.clone(), commit }))
}

impl Account {
    /// Every build started in the account, in the order they started.
    pub fn builds(&self) -> Vec<BuildId> {
        let s = self.lock();
        let mut builds: Vec<_> = s.builds.iter().map(|(id, b)| (b.started, id.clone())).collect();
        builds.sort();
        builds.into_iter().filter_map(|(_, id)| BuildId::parse(id).ok()).collect()
    }

    /// How long build `id` takes (unless stopped): the truth a pipeline's detection lag is measured
    /// against.
    pub fn build_duration(&self, id: &BuildId) -> Option<Duration> {
        self.lock().builds.get(id.as_str()).map(|b| b.duration)
    }
}

fn start_in(s: &mut State, revision: &Revision) -> Result<BuildId> {
    let prefix = format!("{}:build-", s.cfg.repository);
    let id = BuildId::parse(s.next_id(&prefix))?;
    let duration = s.spread(s.cfg.build_duration);
    let failure = s.behaviors.get(revision.commit.as_str()).and_then(|b| b.build_failure.clone());
    s.builds.insert(
        id.to_string(),
        BuildRec { revision: revision.clone(), started: Instant::now(), duration, failure, stopped: None },
    );
    Ok(id)
}

#[async_trait]
impl Builder for MemoryBuilder {
    /// The build started with `key`, found by the key the build carries (as CodeBuild's
    /// `SENDY_CD_KEY` variable): found however long ago it started.
    async fn find_started(&self, revision: &Revision, key: &str, since: jiff::Timestamp) -> Result<Option<BuildId>> {
        let _ = since;
        self.account.enter(Op::BuildStatus).await?;
        let s = self.account.lock();
        Ok(s.build_keys
            .get(key)
            .map(|(id, _)| id)
            .filter(|id| s.builds.get(id.as_str()).is_some_and(|b| b.revision.commit == revision.commit))
            .cloned())
    }

    /// At most one build per key within [`SimConfig::idempotency_window`](super::SimConfig) (5 min
    /// by default, as CodeBuild's `idempotencyToken`): a start with the same key after that starts
    /// another build.
    async fn start_once(&self, revision: &Revision, key: &str) -> Result<BuildId> {
        let answer = self.account.enter(Op::BuildStart).await?;
        let mut s = self.account.lock();
        let window = s.cfg.idempotency_window;
        let remembered = s.build_keys.get(key).filter(|(_, at)| at.elapsed() < window).map(|(id, _)| id.clone());
        if let Some(id) = remembered {
            let same = s.builds.get(id.as_str()).is_some_and(|b| b.revision.commit == revision.commit);
            if !same {
                return answer.deliver(Err(Error::Conflict(
                    format!("idempotency key {key:?} was used for another revision").into(),
                )));
            }
            return answer.deliver(Ok(id));
        }
        let id = start_in(&mut s, revision)?;
        s.build_keys.insert(key.to_owned(), (id.clone(), Instant::now()));
        answer.deliver(Ok(id))
    }

    async fn start(&self, revision: &Revision) -> Result<BuildId> {
        let answer = self.account.enter(Op::BuildStart).await?;
        let mut s = self.account.lock();
        let id = start_in(&mut s, revision)?;
        answer.deliver(Ok(id))
    }

    async fn status(&self, build: &BuildId) -> Result<BuildStatus> {
        self.account.enter(Op::BuildStatus).await?;
        let mut s = self.account.lock();
        status_at(&mut s, build, Instant::now())
    }

    async fn stop(&self, build: &BuildId) -> Result<()> {
        let answer = self.account.enter(Op::BuildStop).await?;
        let mut s = self.account.lock();
        let rec = s
            .builds
            .get_mut(build.as_str())
            .ok_or_else(|| Error::NotFound { kind: "build", id: build.to_string().into() })?;
        rec.stopped.get_or_insert_with(Instant::now);
        answer.deliver(Ok(()))
    }
}
