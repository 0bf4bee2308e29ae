//! The git source against a real repository that the test creates and commits to.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use sendy_cd::conformance::{self, SourceHarness};
use sendy_cd::source::git::GitSource;
use sendy_cd::{BranchName, CommitId, Error, Result, Source};
use sendy_cd_tests::{git, scratch};

/// A repository with one commit on `main`.
fn repository(name: &str) -> PathBuf {
    let dir = scratch(&format!("git-{name}")).join("repo");
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "--quiet", "--initial-branch=main"]);
    git(&dir, &["commit", "--quiet", "--allow-empty", "-m", "Initial commit"]);
    dir
}

struct Harness {
    repo: PathBuf,
    source: Arc<GitSource>,
}

#[async_trait]
impl SourceHarness for Harness {
    fn source(&self) -> Arc<dyn Source> {
        self.source.clone()
    }
    async fn push(&self, branch: &BranchName, message: &str) -> Result<CommitId> {
        git(&self.repo, &["checkout", "--quiet", "-B", branch.as_str()]);
        git(&self.repo, &["commit", "--quiet", "--allow-empty", "-m", message]);
        Ok(CommitId::parse(git(&self.repo, &["rev-parse", "HEAD"]))?)
    }
}

#[tokio::test]
async fn git_source_conforms_on_a_path() {
    let repo = repository("path");
    let source = GitSource::new(repo.to_str().unwrap(), repo.parent().unwrap().join("cache.git")).unwrap();
    conformance::source(&Harness { repo, source: Arc::new(source) }).await;
}

#[tokio::test]
async fn git_source_conforms_on_a_file_url() {
    let repo = repository("url");
    let url = format!("file://{}", repo.display());
    let source = GitSource::new(&url, repo.parent().unwrap().join("cache.git")).unwrap();
    conformance::source(&Harness { repo, source: Arc::new(source) }).await;
}

#[tokio::test]
async fn a_revision_carries_its_author_time_and_message() {
    let repo = repository("details");
    git(&repo, &["commit", "--quiet", "--allow-empty", "-m", "Add checkout\n\nWith a body."]);
    let source = GitSource::new(repo.to_str().unwrap(), repo.parent().unwrap().join("cache.git")).unwrap();
    let revision = source.latest(&BranchName::parse("main").unwrap()).await.unwrap();
    assert_eq!(revision.commit.as_str(), git(&repo, &["rev-parse", "HEAD"]));
    assert_eq!(revision.author, "Ada <ada@example.com>");
    assert_eq!(revision.message, "Add checkout\n\nWith a body.");
    let committed: i64 = git(&repo, &["log", "-1", "--format=%at"]).parse().unwrap();
    assert_eq!(revision.time.as_second(), committed);
}

#[tokio::test]
async fn an_unreachable_remote_is_a_transient_error() {
    let dir = scratch("git-unreachable");
    // Nothing listens on loopback port 1: the connection is refused, which may pass.
    let source = GitSource::new("http://127.0.0.1:1/shop-api.git", dir.join("cache.git")).unwrap();
    let err = source.latest(&BranchName::parse("main").unwrap()).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(!dir.join("cache.git").join("HEAD").exists(), "a failed clone leaves no cache behind");
    assert!(matches!(GitSource::new("", dir.join("c")), Err(Error::InvalidConfig(_))));
}

/// Issue 8, defect 5: a repository that does not exist is a permanent error (not transient), so
/// `watch` does not retry it forever; on a path and as a `file://` URL.
#[tokio::test]
async fn a_missing_repository_is_a_permanent_not_found() {
    let dir = scratch("git-missing");
    for url in [dir.join("nowhere").display().to_string(), format!("file://{}", dir.join("nowhere").display())] {
        let source = GitSource::new(&url, dir.join("cache.git")).unwrap();
        let err = source.latest(&BranchName::parse("main").unwrap()).await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{url}: {err:?}");
        assert!(!err.is_retryable(), "{url}: {err}");
    }
}

/// A remote that is not a git repository (a plain directory) is permanent too.
#[tokio::test]
async fn a_directory_that_is_not_a_repository_is_not_retried() {
    let dir = scratch("git-not-a-repo");
    let plain = dir.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let source = GitSource::new(&plain.display().to_string(), dir.join("cache.git")).unwrap();
    let err = source.latest(&BranchName::parse("main").unwrap()).await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
}

/// A fetch whose future was dropped holds the source until its thread is done, and the next fetch
/// into the same cache succeeds (no overlapping writers, no half-written cache).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_fetch_never_overlaps_the_next() {
    let repo = repository("dropped");
    for i in 0..20 {
        git(&repo, &["commit", "--quiet", "--allow-empty", "-m", &format!("c{i}")]);
    }
    let dir = scratch("git-dropped-cache");
    let source = GitSource::new(&repo.display().to_string(), dir.join("cache.git")).unwrap();
    let main = BranchName::parse("main").unwrap();
    for _ in 0..10 {
        // Dropped at once or part-way: either way the next read must work.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(1), source.latest(&main)).await;
        let revision = source.latest(&main).await.unwrap();
        assert_eq!(revision.commit.as_str(), git(&repo, &["rev-parse", "HEAD"]));
    }
}
