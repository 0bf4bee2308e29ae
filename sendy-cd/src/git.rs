//! [`GitSource`]: revisions from any git remote (feature `git`, on by default), through gitoxide.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::model::{BranchName, CommitId, Revision};
use crate::source::Source;

/// A git remote (a local path, `file://`, `https://`, `ssh://`), read through a bare clone kept in a
/// cache directory: each [`latest`](Source::latest) fetches the remote's branches into it (only what
/// is new), then reads the branch's commit. Fetches of one source never overlap.
///
/// ```
/// # async fn f() -> sendy_cd::Result<()> {
/// use sendy_cd::{BranchName, Source, git::GitSource};
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

fn fetch(url: &str, cache: &Path) -> Result<gix::Repository> {
    let failed = |what: &str, e: &dyn std::fmt::Display| Error::Transient(format!("git {what} of {url}: {e}"));
    let interrupt = AtomicBool::new(false);
    if cache.join("HEAD").exists() {
        let repo = gix::open(cache).map_err(|e| Error::Backend(format!("git cache {}: {e}", cache.display())))?;
        let remote = repo.find_remote("origin").map_err(|e| Error::Backend(format!("git cache: {e}")))?;
        let connection = remote.connect(gix::remote::Direction::Fetch).map_err(|e| failed("connect", &e))?;
        // A bare clone keeps no fetch refspec (like `git clone --bare`): mirror the branches.
        let heads = gix::refspec::parse(
            gix::bstr::BStr::new("+refs/heads/*:refs/heads/*"),
            gix::refspec::parse::Operation::Fetch,
        )
        .map_err(|e| Error::Backend(format!("git refspec: {e}")))?
        .to_owned();
        let options = gix::remote::ref_map::Options { extra_refspecs: vec![heads], ..Default::default() };
        connection
            .prepare_fetch(gix::progress::Discard, options)
            .map_err(|e| failed("fetch", &e))?
            .receive(gix::progress::Discard, &interrupt)
            .map_err(|e| failed("fetch", &e))?;
        gix::open(cache).map_err(|e| Error::Backend(format!("git cache {}: {e}", cache.display())))
    } else {
        if let Some(parent) = cache.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Backend(format!("git cache {}: {e}", parent.display())))?;
        }
        let mut prepare = gix::prepare_clone_bare(url, cache).map_err(|e| failed("clone", &e))?;
        let (repo, _) = prepare.fetch_only(gix::progress::Discard, &interrupt).map_err(|e| {
            // A clone that failed half-way must not be mistaken for a cache next time.
            let _ = std::fs::remove_dir_all(cache);
            failed("clone", &e)
        })?;
        Ok(repo)
    }
}

fn read(repo: &gix::Repository, url: &str, branch: &BranchName) -> Result<Revision> {
    let not_found = || Error::NotFound { kind: "branch", id: format!("{branch} of {url}") };
    let mut reference = repo
        .find_reference(format!("refs/remotes/origin/{branch}").as_str())
        .or_else(|_| repo.find_reference(format!("refs/heads/{branch}").as_str()))
        .map_err(|_| not_found())?;
    let commit = reference.peel_to_commit().map_err(|e| Error::Backend(format!("git {branch} of {url}: {e}")))?;
    let author = commit.author().map_err(|e| Error::Backend(format!("git commit author: {e}")))?;
    let time = commit.time().map_err(|e| Error::Backend(format!("git commit time: {e}")))?;
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
        let _fetching = self.fetching.lock().await;
        let (url, cache, branch) = (self.url.clone(), self.cache.clone(), branch.clone());
        tokio::task::spawn_blocking(move || {
            let repo = fetch(&url, &cache)?;
            read(&repo, &url, &branch)
        })
        .await
        .map_err(|e| Error::Backend(format!("git: the fetch thread failed: {e}")))?
    }
}
