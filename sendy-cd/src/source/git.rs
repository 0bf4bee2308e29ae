//! [`GitSource`]: revisions from any git remote (feature `git`, on by default), through gitoxide.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use crate::error::Detail;
use crate::error::{Error, Result};
use crate::model::{BranchName, CommitId, Revision};
use crate::source::Source;

/// A git remote (a local path, `file://`, `https://`, `ssh://`), read through a bare clone kept in a
/// cache directory: each [`latest`](Source::latest) fetches the remote's branches into it (only what
/// is new), then reads the branch's commit.
///
/// - Fetches of one source never overlap: a fetch holds the source's lock until its thread is done,
///   even when the future that started it was dropped.
/// - Dropping the future of `latest` interrupts its fetch (gitoxide checks the flag between steps).
/// - Errors are classified by gitoxide's own error classes, never by their text: credentials missing
///   or refused are [`Error::AccessDenied`], a missing repository or branch [`Error::NotFound`], an
///   invalid or unsupported remote [`Error::InvalidConfig`]; only errors gitoxide calls retryable
///   (and I/O failures such as a reset connection) are [`Error::Transient`], so
///   [`watch`](crate::Pipeline::watch) does not retry the others forever.
///
/// ```
/// # async fn f() -> sendy_cd::Result<()> {
/// use sendy_cd::{BranchName, Source, source::git::GitSource};
/// let source = GitSource::new("https://github.com/example/shop-api.git", "/var/cache/sendy-cd/shop-api.git")?;
/// let revision = source.latest(&BranchName::parse("main")?).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct GitSource {
    url: String,
    cache: PathBuf,
    fetching: Arc<tokio::sync::Mutex<()>>,
}

impl GitSource {
    /// Reads `url`, keeping its bare clone in `cache` (created on first use).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `url` is not a git URL or path.
    pub fn new(url: &str, cache: impl Into<PathBuf>) -> Result<Self> {
        gix::url::parse(gix::bstr::BStr::new(url.as_bytes()))
            .map_err(|e| Error::InvalidConfig(format!("git URL {url:?}: {e}")))?;
        Ok(GitSource { url: url.to_owned(), cache: cache.into(), fetching: Arc::default() })
    }
}

/// Maps a gitoxide error of `what` by its classification.
fn classify(url: &str, what: &str, err: &(dyn std::error::Error + 'static)) -> Error {
    use gix::error::Class;
    let classes = gix::error::classify(err);
    let message = format!("git {what} of {url}: {}", crate::error::truncate(&err.to_string()));
    let io_retryable = gix::error::classify(err).can_retry();
    let local_missing = std::iter::successors(Some(err), |e| e.source())
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::NotFound);
    match classes.dominant_class() {
        Some(Class::Cancelled) => Error::Cancelled,
        Some(Class::Unauthenticated | Class::PermissionDenied) => Error::AccessDenied(message.into()),
        Some(Class::NotFound) => Error::NotFound { kind: "git repository", id: message.into() },
        Some(Class::Validation | Class::Unsupported) => Error::InvalidConfig(message),
        Some(Class::Retryable) => Error::Transient(message.into()),
        _ if local_missing => Error::NotFound { kind: "git repository", id: message.into() },
        _ if io_retryable => Error::Transient(message.into()),
        _ => Error::Backend(message.into()),
    }
}

/// Whether `url` names a local repository (a path or `file://`).
fn local_path(url: &str) -> Option<PathBuf> {
    let parsed = gix::url::parse(gix::bstr::BStr::new(url.as_bytes())).ok()?;
    (parsed.scheme == gix::url::Scheme::File).then(|| PathBuf::from(parsed.path.to_string()))
}

fn fetch(url: &str, cache: &Path, interrupt: &AtomicBool) -> Result<gix::Repository> {
    if let Some(path) = local_path(url)
        && !path.exists()
    {
        return Err(Error::NotFound { kind: "git repository", id: path.display().to_string().into() });
    }
    let failed = |what: &str, e: &(dyn std::error::Error + 'static)| classify(url, what, e);
    if cache.join("HEAD").exists() {
        let repo = gix::open(cache)
            .map_err(|e| Error::Backend(Detail::new(format!("git cache {}: {e}", cache.display())).with_cause(e)))?;
        let remote = repo
            .find_remote("origin")
            .map_err(|e| Error::Backend(Detail::new(format!("git cache: {e}")).with_cause(e)))?;
        let connection = remote.connect(gix::remote::Direction::Fetch).map_err(|e| failed("connect", &e))?;
        // A bare clone keeps no fetch refspec (like `git clone --bare`): mirror the branches.
        let heads = gix::refspec::parse(
            gix::bstr::BStr::new("+refs/heads/*:refs/heads/*"),
            gix::refspec::parse::Operation::Fetch,
        )
        .map_err(|e| Error::Backend(Detail::new(format!("git refspec: {e}")).with_cause(e)))?
        .to_owned();
        let options = gix::remote::ref_map::Options { extra_refspecs: vec![heads], ..Default::default() };
        connection
            .prepare_fetch(gix::progress::Discard, options)
            .map_err(|e| failed("fetch", &e))?
            .receive(gix::progress::Discard, interrupt)
            .map_err(|e| failed("fetch", &e))?;
        gix::open(cache)
            .map_err(|e| Error::Backend(Detail::new(format!("git cache {}: {e}", cache.display())).with_cause(e)))
    } else {
        if let Some(parent) = cache.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::Backend(Detail::new(format!("git cache {}: {e}", parent.display())).with_cause(e))
            })?;
        }
        let mut prepare = gix::prepare_clone_bare(url, cache).map_err(|e| failed("clone", &e))?;
        let (repo, _) = prepare.fetch_only(gix::progress::Discard, interrupt).map_err(|e| {
            // A clone that failed half-way must not be mistaken for a cache next time.
            let _ = std::fs::remove_dir_all(cache);
            failed("clone", &e)
        })?;
        Ok(repo)
    }
}

/// Sets the interrupt flag of a fetch when the future waiting for it is dropped.
struct InterruptOnDrop(Arc<AtomicBool>);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn read(repo: &gix::Repository, url: &str, branch: &BranchName) -> Result<Revision> {
    let not_found = || Error::NotFound { kind: "branch", id: format!("{branch} of {url}").into() };
    let mut reference = repo
        .find_reference(format!("refs/remotes/origin/{branch}").as_str())
        .or_else(|_| repo.find_reference(format!("refs/heads/{branch}").as_str()))
        .map_err(|_| not_found())?;
    let commit = reference
        .peel_to_commit()
        .map_err(|e| Error::Backend(Detail::new(format!("git {branch} of {url}: {e}")).with_cause(e)))?;
    let author =
        commit.author().map_err(|e| Error::Backend(Detail::new(format!("git commit author: {e}")).with_cause(e)))?;
    let time = commit.time().map_err(|e| Error::Backend(Detail::new(format!("git commit time: {e}")).with_cause(e)))?;
    Ok(Revision {
        commit: CommitId::parse(commit.id().to_string())?,
        branch: branch.clone(),
        message: commit.message_raw_sloppy().to_string().trim_end().to_owned(),
        author: format!("{} <{}>", author.name, author.email),
        time: jiff::Timestamp::from_second(time.seconds).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
    })
}

#[async_trait]
impl Source for GitSource {
    async fn latest(&self, branch: &BranchName) -> Result<Revision> {
        // The guard moves into the fetch thread: it is released when the thread ends, not when this
        // future is dropped, so a cancelled fetch never overlaps the next one.
        let fetching = Arc::clone(&self.fetching).lock_owned().await;
        let interrupt = Arc::new(AtomicBool::new(false));
        let _interrupt_on_drop = InterruptOnDrop(Arc::clone(&interrupt));
        let (url, cache, branch) = (self.url.clone(), self.cache.clone(), branch.clone());
        tokio::task::spawn_blocking(move || {
            let _fetching = fetching;
            let repo = fetch(&url, &cache, &interrupt)?;
            read(&repo, &url, &branch)
        })
        .await
        .map_err(|e| Error::Backend(Detail::new(format!("git: the fetch thread failed: {e}")).with_cause(e)))?
    }
}
