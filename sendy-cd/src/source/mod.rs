//! [`Source`]: where revisions come from.

#[cfg(feature = "git")]
pub mod git;
#[cfg(feature = "http")]
pub mod github;

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{BranchName, Revision};

/// A git repository (or anything like one) that reports the newest commit of a branch.
///
/// # Contract
/// - [`latest`](Source::latest) returns the commit the branch points to now, with its message, author
///   and time. Two calls with no push in between return the same revision.
/// - Implementations make cheap calls: a pipeline's `watch` calls `latest` on every tick.
///
/// # Errors
/// - [`Error::NotFound`](crate::Error::NotFound) if the branch (or repository) does not exist;
/// - [`Error::Throttled`](crate::Error::Throttled) / [`Error::Transient`](crate::Error::Transient) when
///   the remote is rate-limited or unreachable (the caller retries);
/// - [`Error::AccessDenied`](crate::Error::AccessDenied) for bad credentials.
///
/// # Cancellation
/// Dropping the future abandons the read; nothing is changed anywhere.
///
/// # Example
/// ```
/// use sendy_cd::{BranchName, Source, memory::Account};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> sendy_cd::Result<()> {
/// let account = Account::new();
/// let pushed = account.push("main", "Add checkout", "Ada <ada@example.com>")?;
/// let source = account.source();
/// let latest = source.latest(&BranchName::parse("main")?).await?;
/// assert_eq!(latest.commit, pushed.commit);
/// # Ok(()) }
/// ```
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Source: Send + Sync {
    /// The newest revision of `branch`.
    async fn latest(&self, branch: &BranchName) -> Result<Revision>;
}
