//! [`GitHubSource`]: revisions from the GitHub REST API (feature `http`, on by default).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, ETAG, HeaderMap, IF_NONE_MATCH, USER_AGENT};
use serde::Deserialize;

use crate::error::{Detail, Error, Result};
use crate::model::{BranchName, CommitId, Revision};
use crate::source::Source;

/// A GitHub repository, read through `GET /repos/{owner}/{repo}/commits/{branch}`, as a [`Source`].
///
/// Every read after the first is a conditional request (`If-None-Match` with the ETag of the last
/// answer): while the branch does not move, GitHub answers `304 Not Modified`, which does not count
/// against the rate limit, and the revision read before is returned.
///
/// ```
/// # fn f() -> sendy_cd::Result<()> {
/// use sendy_cd::source::github::GitHubSource;
/// let source = GitHubSource::builder("example", "shop-api")
///     .token(std::env::var("GITHUB_TOKEN").unwrap_or_default())
///     .build()?;
/// # Ok(()) }
/// ```
pub struct GitHubSource {
    client: reqwest::Client,
    api: String,
    owner: String,
    repo: String,
    token: Option<String>,
    seen: Mutex<HashMap<BranchName, (String, Revision)>>,
}

impl std::fmt::Debug for GitHubSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubSource")
            .field("api", &self.api)
            .field("owner", &self.owner)
            .field("repo", &self.repo)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct CommitAnswer {
    sha: String,
    commit: CommitDetail,
}

#[derive(Deserialize)]
struct CommitDetail {
    message: String,
    author: Option<Person>,
}

#[derive(Deserialize)]
struct Person {
    name: Option<String>,
    email: Option<String>,
    date: Option<String>,
}

fn name_ok(s: &str) -> bool {
    (1..=100).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl GitHubSource {
    /// Repository `owner/repo` on api.github.com, read anonymously.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a malformed owner or repository name, or if the HTTP client cannot be
    /// set up.
    pub fn new(owner: &str, repo: &str) -> Result<Self> {
        Self::builder(owner, repo).build()
    }

    /// A source for `owner/repo` with a token or another API root; everything is checked by
    /// [`build`](GitHubSourceBuilder::build).
    pub fn builder(owner: impl Into<String>, repo: impl Into<String>) -> GitHubSourceBuilder {
        GitHubSourceBuilder { owner: owner.into(), repo: repo.into(), token: None, api: None }
    }
}

/// Builds a [`GitHubSource`]; the setters never fail, [`build`](Self::build) checks everything.
#[derive(Clone)]
#[must_use]
pub struct GitHubSourceBuilder {
    owner: String,
    repo: String,
    token: Option<String>,
    api: Option<String>,
}

impl std::fmt::Debug for GitHubSourceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubSourceBuilder")
            .field("owner", &self.owner)
            .field("repo", &self.repo)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("api", &self.api)
            .finish()
    }
}

impl GitHubSourceBuilder {
    /// Authenticates with `token` (a personal access token or an app installation token). An empty
    /// token keeps the source anonymous.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    /// Another API root (GitHub Enterprise Server: `https://HOST/api/v3`).
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.api = Some(url.into());
        self
    }

    /// The source.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a malformed owner or repository name, a token that cannot be sent
    /// in a header, an API root that is not an http(s) URL, or if the HTTP client cannot be set up.
    pub fn build(self) -> Result<GitHubSource> {
        let GitHubSourceBuilder { owner, repo, token, api } = self;
        if !name_ok(&owner) || !name_ok(&repo) {
            return Err(Error::InvalidConfig(format!(
                "GitHub repository {:?}/{:?} is malformed",
                crate::error::truncate(&owner),
                crate::error::truncate(&repo)
            )));
        }
        if let Some(t) = &token
            && reqwest::header::HeaderValue::from_str(&format!("Bearer {t}")).is_err()
        {
            return Err(Error::InvalidConfig("the GitHub token is not a valid header".into()));
        }
        let api = match api {
            None => "https://api.github.com".to_owned(),
            Some(url) => match url::Url::parse(&url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => url.trim_end_matches('/').to_owned(),
                _ => {
                    return Err(Error::InvalidConfig(format!(
                        "GitHub API URL {:?} is not an http(s) URL",
                        crate::error::truncate(&url)
                    )));
                }
            },
        };
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| Error::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(GitHubSource { client, api, owner, repo, token, seen: Mutex::new(HashMap::new()) })
    }
}

#[async_trait]
impl Source for GitHubSource {
    async fn latest(&self, branch: &BranchName) -> Result<Revision> {
        let url = format!("{}/repos/{}/{}/commits/{branch}", self.api, self.owner, self.repo);
        let cached = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(branch).cloned();
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, "application/vnd.github+json".parse().expect("a valid header"));
        headers.insert("X-GitHub-Api-Version", "2022-11-28".parse().expect("a valid header"));
        headers.insert(USER_AGENT, concat!("sendy-cd/", env!("CARGO_PKG_VERSION")).parse().expect("a valid header"));
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| Error::InvalidConfig("the GitHub token is not a valid header".into()))?;
            headers.insert(AUTHORIZATION, value);
        }
        if let Some((etag, _)) = &cached
            && let Ok(value) = etag.parse()
        {
            headers.insert(IF_NONE_MATCH, value);
        }
        let answer = self
            .client
            .get(&url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| Error::Transient(Detail::new(format!("GET {url}: {e}")).with_cause(e)))?;
        let status = answer.status();
        let remaining = answer.headers().get("x-ratelimit-remaining").and_then(|v| v.to_str().ok()).map(str::to_owned);
        match status {
            StatusCode::NOT_MODIFIED => {
                return cached
                    .map(|(_, r)| r)
                    .ok_or_else(|| Error::Backend(format!("GET {url}: 304 with nothing cached").into()));
            }
            StatusCode::OK => {}
            StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY => {
                return Err(Error::NotFound {
                    kind: "branch",
                    id: format!("{branch} of {}/{}", self.owner, self.repo).into(),
                });
            }
            StatusCode::UNAUTHORIZED => {
                return Err(Error::AccessDenied(format!("GET {url}: 401 (check the token)").into()));
            }
            StatusCode::TOO_MANY_REQUESTS => return Err(Error::Throttled(format!("GET {url}: 429").into())),
            StatusCode::FORBIDDEN if remaining.as_deref() == Some("0") => {
                return Err(Error::Throttled(format!("GET {url}: rate limit exhausted").into()));
            }
            StatusCode::FORBIDDEN => return Err(Error::AccessDenied(format!("GET {url}: 403").into())),
            s if s.is_server_error() => return Err(Error::Transient(format!("GET {url}: {s}").into())),
            s => return Err(Error::Backend(format!("GET {url}: unexpected {s}").into())),
        }
        let etag = answer.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body: CommitAnswer = answer
            .json()
            .await
            .map_err(|e| Error::Transient(Detail::new(format!("GET {url}: unreadable answer: {e}")).with_cause(e)))?;
        let author = body.commit.author;
        let name = author.as_ref().and_then(|a| a.name.clone()).unwrap_or_default();
        let email = author.as_ref().and_then(|a| a.email.clone()).unwrap_or_default();
        let time = author
            .as_ref()
            .and_then(|a| a.date.as_deref())
            .and_then(|d| d.parse::<jiff::Timestamp>().ok())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let revision = Revision {
            commit: CommitId::parse(body.sha)?,
            branch: branch.clone(),
            message: body.commit.message,
            author: format!("{name} <{email}>"),
            time,
        };
        if let Some(etag) = etag {
            self.seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(branch.clone(), (etag, revision.clone()));
        }
        Ok(revision)
    }
}
