//! The GitHub source against a local HTTP server that answers like the GitHub REST API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sendy_cd::conformance::{self, SourceHarness};
use sendy_cd::source::github::GitHubSource;
use sendy_cd::{BranchName, CommitId, Error, Result, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Fake {
    branches: HashMap<String, (String, String)>,
    requests: u32,
    not_modified: u32,
}

/// Serves `GET /repos/example/shop-api/commits/{branch}` from `state`; needs `Bearer t0ken`.
async fn fake_github(state: Arc<Mutex<Fake>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let state = state.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let header = |name: &str| {
                    request.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                    })
                };
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, etag, body) = {
                    let mut s = state.lock().unwrap();
                    s.requests += 1;
                    let branch = path.strip_prefix("/repos/example/shop-api/commits/");
                    if header("authorization").as_deref() != Some("Bearer t0ken") {
                        ("401 Unauthorized", None, r#"{"message":"Bad credentials"}"#.to_owned())
                    } else if header("accept").as_deref() != Some("application/vnd.github+json") {
                        ("415 Unsupported Media Type", None, "{}".to_owned())
                    } else {
                        match branch.and_then(|b| s.branches.get(b).cloned()) {
                            None => ("404 Not Found", None, r#"{"message":"No commit found"}"#.to_owned()),
                            Some((sha, message)) => {
                                let etag = format!("W/\"{sha}\"");
                                if header("if-none-match").as_deref() == Some(etag.as_str()) {
                                    s.not_modified += 1;
                                    ("304 Not Modified", Some(etag), String::new())
                                } else {
                                    let body = serde_json::json!({
                                        "sha": sha,
                                        "commit": {
                                            "message": message,
                                            "author": {"name": "Ada", "email": "ada@example.com", "date": "2026-11-26T10:00:00Z"}
                                        }
                                    });
                                    ("200 OK", Some(etag), body.to_string())
                                }
                            }
                        }
                    }
                };
                let etag = etag.map(|e| format!("ETag: {e}\r\n")).unwrap_or_default();
                let answer = format!(
                    "HTTP/1.1 {status}\r\n{etag}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

struct Harness {
    state: Arc<Mutex<Fake>>,
    source: Arc<GitHubSource>,
    pushes: Mutex<u64>,
}

#[async_trait]
impl SourceHarness for Harness {
    fn source(&self) -> Arc<dyn Source> {
        self.source.clone()
    }
    async fn push(&self, branch: &BranchName, message: &str) -> Result<CommitId> {
        let n = {
            let mut p = self.pushes.lock().unwrap();
            *p += 1;
            *p
        };
        let sha = format!("{n:040x}");
        self.state.lock().unwrap().branches.insert(branch.to_string(), (sha.clone(), message.to_owned()));
        CommitId::parse(sha).map_err(Into::into)
    }
}

async fn setup() -> Harness {
    let state = Arc::new(Mutex::new(Fake::default()));
    let api = fake_github(state.clone()).await;
    let source = GitHubSource::builder("example", "shop-api").token("t0ken").api_url(&api).build().unwrap();
    Harness { state, source: Arc::new(source), pushes: Mutex::new(0) }
}

#[tokio::test]
async fn github_source_conforms() {
    conformance::source(&setup().await).await;
}

#[tokio::test]
async fn unchanged_branches_are_answered_not_modified() {
    let h = setup().await;
    let main = BranchName::parse("main").unwrap();
    let pushed = h.push(&main, "one").await.unwrap();
    for _ in 0..5 {
        assert_eq!(h.source.latest(&main).await.unwrap().commit, pushed);
    }
    let (requests, not_modified) = {
        let s = h.state.lock().unwrap();
        (s.requests, s.not_modified)
    };
    assert_eq!((requests, not_modified), (5, 4), "one full answer, then 304s");
    let moved = h.push(&main, "two").await.unwrap();
    let revision = h.source.latest(&main).await.unwrap();
    assert_eq!(revision.commit, moved);
    assert_eq!(revision.author, "Ada <ada@example.com>");
    assert_eq!(revision.time.to_string(), "2026-11-26T10:00:00Z");
}

#[tokio::test]
async fn a_bad_token_is_access_denied() {
    let h = setup().await;
    let api = fake_github(h.state.clone()).await;
    let anonymous = GitHubSource::builder("example", "shop-api").api_url(&api).build().unwrap();
    let err = anonymous.latest(&BranchName::parse("main").unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::AccessDenied(_)), "{err:?}");
    assert!(matches!(GitHubSource::new("ex ample", "x"), Err(Error::InvalidConfig(_))));
}

#[test]
fn every_setting_is_checked_by_build_and_the_token_never_printed() {
    let bad = |b: sendy_cd::source::github::GitHubSourceBuilder| match b.build() {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(bad(GitHubSource::builder("example", "shop-api").api_url("ftp://example.com")).contains("http(s)"));
    assert!(bad(GitHubSource::builder("example", "shop-api").api_url("not a url")).contains("http(s)"));
    assert!(bad(GitHubSource::builder("example", "shop-api").token("line\nbreak")).contains("token"));
    assert!(bad(GitHubSource::builder("ex/ample", "shop-api")).contains("malformed"));
    let builder =
        GitHubSource::builder("example", "shop-api").token("ghp_SECRETSECRET").api_url("https://ghe.test/api/v3");
    assert!(!format!("{builder:?}").contains("SECRET"), "{builder:?}");
    let source = builder.build().unwrap();
    let shown = format!("{source:?}");
    assert!(!shown.contains("SECRET") && shown.contains("<redacted>") && shown.contains("ghe.test"), "{shown}");
}
