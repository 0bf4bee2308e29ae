//! The git source against a real repository that the test creates and commits to.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use sendy_cd::conformance::{self, SourceHarness};
use sendy_cd::source::git::GitSource;
use sendy_cd::{BranchName, CommitId, Error, Result, Source};
use sendy_cd_tests::{git, scratch};

/// A repository with one commit on `main`, and the guard that removes it.
fn repository(name: &str) -> (tempfile::TempDir, PathBuf) {
    let scratch = scratch(&format!("git-{name}"));
    let dir = scratch.path().join("repo");
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "--quiet", "--initial-branch=main"]);
    git(&dir, &["commit", "--quiet", "--allow-empty", "-m", "Initial commit"]);
    (scratch, dir)
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
    let (_scratch, repo) = repository("path");
    let source = GitSource::new(repo.to_str().unwrap(), repo.parent().unwrap().join("cache.git")).unwrap();
    conformance::source(&Harness { repo, source: Arc::new(source) }).await;
}

#[tokio::test]
async fn git_source_conforms_on_a_file_url() {
    let (_scratch, repo) = repository("url");
    let url = format!("file://{}", repo.display());
    let source = GitSource::new(&url, repo.parent().unwrap().join("cache.git")).unwrap();
    conformance::source(&Harness { repo, source: Arc::new(source) }).await;
}

#[tokio::test]
async fn a_revision_carries_its_author_time_and_message() {
    let (_scratch, repo) = repository("details");
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
    let scratch = scratch("git-unreachable");
    let dir = scratch.path();
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
    let scratch = scratch("git-missing");
    let dir = scratch.path();
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
    let scratch = scratch("git-not-a-repo");
    let dir = scratch.path();
    let plain = dir.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let source = GitSource::new(&plain.display().to_string(), dir.join("cache.git")).unwrap();
    let err = source.latest(&BranchName::parse("main").unwrap()).await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
}

/// A fetch dropped part-way (a clone here: it removes its half-written cache when interrupted) must
/// end before the next fetch starts into the same cache; if the two overlapped, the dropped clone's
/// cleanup would delete the next clone's files under it. The repository is large enough (4 MB of
/// incompressible blobs) that each clone takes far longer than the moment it is dropped at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_dropped_mid_clone_never_overlaps_the_next() {
    let (_scratch, repo) = repository("dropped-clone");
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..1000 {
        let blob: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(4096).collect();
        std::fs::write(repo.join(format!("blob-{i}")), blob).unwrap();
    }
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "4 MB of blobs"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let main = BranchName::parse("main").unwrap();
    let url = repo.display().to_string();
    let mut dropped_mid_way = 0;
    for (round, after_ms) in [2u64, 5, 10, 20, 2, 5].into_iter().enumerate() {
        let cache_dir = scratch(&format!("git-dropped-clone-{round}"));
        let cache = cache_dir.path().join("cache.git");
        let source = GitSource::new(&url, &cache).unwrap();
        let first = tokio::time::timeout(std::time::Duration::from_millis(after_ms), source.latest(&main)).await;
        if first.is_err() {
            dropped_mid_way += 1;
        }
        let revision = source.latest(&main).await;
        assert_eq!(
            revision.as_ref().map(|r| r.commit.as_str().to_owned()).ok(),
            Some(head.clone()),
            "round {round}: {revision:?}"
        );
        // The cache is whole: a third read fetches into it.
        assert_eq!(source.latest(&main).await.unwrap().commit.as_str(), head);
    }
    assert!(
        dropped_mid_way >= 5,
        "only {dropped_mid_way} of 10 clones were dropped part-way: the repository is too small"
    );
}
