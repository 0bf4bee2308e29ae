//! [`Builder`]: turns a revision into a pushed image.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{BuildId, CommitId, Digest, ImageRef, Revision};

/// The image a successful build pushed, with its build information.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltImage {
    /// The image, tagged with the commit id and pinned to its digest.
    pub image: ImageRef,
    /// The digest of the pushed manifest.
    pub digest: Digest,
    /// The build that pushed it.
    pub build: BuildId,
    /// The commit it was built from.
    pub commit: CommitId,
}

/// Where a build is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BuildStatus {
    /// Waiting for capacity.
    Queued,
    /// Running; `phase` as the builder names it (for CodeBuild: `PROVISIONING`, `BUILD`, `POST_BUILD`, ...).
    InProgress {
        /// The current phase.
        phase: String,
    },
    /// Finished and pushed.
    Succeeded(BuiltImage),
    /// Finished without an image.
    Failed {
        /// The phase that failed.
        phase: String,
        /// Why.
        reason: String,
    },
    /// Stopped by [`Builder::stop`] (or by someone else).
    Stopped,
}

impl BuildStatus {
    /// Whether the build is over (succeeded, failed or stopped).
    pub fn is_final(&self) -> bool {
        matches!(self, BuildStatus::Succeeded(_) | BuildStatus::Failed { .. } | BuildStatus::Stopped)
    }
}

/// Builds an image from a revision and pushes it to a registry.
///
/// # Contract
/// - [`start`](Builder::start) starts one new build of exactly `revision.commit` and returns its id at
///   once, without waiting for it; the image is tagged with the full commit id.
/// - [`status`](Builder::status) reports where that build is; once final, it stays the same.
///   [`BuildStatus::Succeeded`] is reported only once the image is really in the registry, and carries
///   its digest.
/// - [`stop`](Builder::stop) asks the build to stop; stopping a build that is already over is not an
///   error. After it, `status` reports [`BuildStatus::Stopped`] (or the final status it had reached).
///
/// # Errors
/// - [`Error::NotFound`](crate::Error::NotFound) for an unknown build id;
/// - throttling and transient errors as [`Error::Throttled`](crate::Error::Throttled) and
///   [`Error::Transient`](crate::Error::Transient). A failed build is not an error of `status`: it is
///   [`BuildStatus::Failed`].
///
/// # Cancellation
/// Dropping a future returned by `start` may or may not leave a build started (as with any remote
/// call); dropping the others changes nothing. A pipeline that is cancelled calls `stop`.
///
/// # Example
/// ```
/// use sendy_cd::{BuildStatus, Builder, memory::Account};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> sendy_cd::Result<()> {
/// let account = Account::new();
/// let revision = account.push("main", "Add checkout", "Ada")?;
/// let builder = account.image_builder();
/// let build = builder.start(&revision).await?;
/// tokio::time::sleep(std::time::Duration::from_secs(3600)).await; // a paused clock: instant
/// let BuildStatus::Succeeded(built) = builder.status(&build).await? else { panic!() };
/// assert_eq!(built.image.tag(), Some(revision.commit.as_str()));
/// # Ok(()) }
/// ```
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Builder: Send + Sync {
    /// Starts a build of `revision`.
    async fn start(&self, revision: &Revision) -> Result<BuildId>;
    /// Starts a build of `revision` at most once for `key`: called again with the same key (a retry
    /// after an ambiguous failure, such as a timeout after the service accepted the call), it answers
    /// the build the first call started instead of starting another. The pipeline calls this with a
    /// key made of its name and the execution id. CodeBuild does it with `idempotencyToken` (for 5
    /// minutes); the simulated account remembers keys.
    ///
    /// The default calls [`start`](Self::start) (no protection): implement it for a builder whose
    /// service can recognise a repeated request.
    async fn start_once(&self, revision: &Revision, key: &str) -> Result<BuildId> {
        let _ = key;
        self.start(revision).await
    }
    /// The build a [`start_once`](Self::start_once) with `key` for `revision` started, if the
    /// service can still tell, without starting one: what resume asks when an interrupted execution
    /// announced a build start whose answer it never saw. CodeBuild looks through the project's
    /// newest builds for the key (an environment variable the build carries) or, failing that, a
    /// build of the same commit started since `since`; the simulated account remembers keys.
    ///
    /// The default answers `None` (the service cannot tell).
    async fn find_started(&self, revision: &Revision, key: &str, since: jiff::Timestamp) -> Result<Option<BuildId>> {
        let _ = (revision, key, since);
        Ok(None)
    }
    /// Where build `build` is.
    async fn status(&self, build: &BuildId) -> Result<BuildStatus>;
    /// Asks build `build` to stop.
    async fn stop(&self, build: &BuildId) -> Result<()>;
}
