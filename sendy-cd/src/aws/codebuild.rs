//! [`Builder`] on CodeBuild, with the image confirmed in ECR.

use async_trait::async_trait;
use aws_sdk_codebuild::types::{BuildPhaseType, EnvironmentVariable, EnvironmentVariableType, StatusType};
use aws_sdk_ecr::types::ImageIdentifier;

use super::AwsConfig;
use super::error::from_sdk;
use crate::builder::{BuildStatus, Builder, BuiltImage};
use crate::error::{Error, Result};
use crate::model::{BuildId, CommitId, Digest, ImageRef, Revision};

/// Builds with a CodeBuild project and confirms the pushed image in an ECR repository, as a
/// [`Builder`].
///
/// [`start`](Builder::start) starts a build of the commit (`sourceVersion`) with the environment
/// variables `IMAGE_TAG` (the full commit id), `IMAGE_REPO_NAME` and `COMMIT_ID` set for the buildspec
/// (`deploy/buildspec.yml` builds, tags and pushes with them). [`status`](Builder::status) polls
/// `BatchGetBuilds`; on success it reads the image from ECR by tag and records its digest: a build that
/// succeeded without pushing the image is a failure.
#[derive(Clone, Debug)]
pub struct CodeBuildBuilder {
    codebuild: aws_sdk_codebuild::Client,
    ecr: aws_sdk_ecr::Client,
    project: String,
    repository: String,
}

impl CodeBuildBuilder {
    /// Builds with project `project`, pushing to ECR repository `repository`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty or malformed project or repository name.
    pub fn new(config: &AwsConfig, project: &str, repository: &str) -> Result<Self> {
        Self::from_clients(
            aws_sdk_codebuild::Client::new(config.sdk_config()),
            aws_sdk_ecr::Client::new(config.sdk_config()),
            project,
            repository,
        )
    }

    /// As [`new`](Self::new), with clients of your own.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_clients(
        codebuild: aws_sdk_codebuild::Client,
        ecr: aws_sdk_ecr::Client,
        project: &str,
        repository: &str,
    ) -> Result<Self> {
        let project_ok = (2..=255).contains(&project.len())
            && project.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !project_ok {
            return Err(Error::InvalidConfig(format!(
                "CodeBuild project name {:?} is malformed",
                crate::error::truncate(project)
            )));
        }
        let repo_ok = (2..=256).contains(&repository.len())
            && repository.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c));
        if !repo_ok {
            return Err(Error::InvalidConfig(format!(
                "ECR repository name {:?} is malformed",
                crate::error::truncate(repository)
            )));
        }
        Ok(CodeBuildBuilder { codebuild, ecr, project: project.to_owned(), repository: repository.to_owned() })
    }

    /// The pushed image of `commit`, pinned to its digest, or why there is none.
    async fn pushed_image(&self, commit: &CommitId) -> Result<std::result::Result<(ImageRef, Digest), String>> {
        let images = self
            .ecr
            .describe_images()
            .repository_name(&self.repository)
            .image_ids(ImageIdentifier::builder().image_tag(commit.as_str()).build())
            .send()
            .await;
        let images = match images {
            Ok(out) => out,
            Err(e) => match from_sdk("ecr:DescribeImages", e) {
                Error::NotFound { .. } => {
                    return Ok(Err(format!("ECR has no image {}:{commit}", self.repository)));
                }
                other => return Err(other),
            },
        };
        let Some(detail) = images.image_details().first() else {
            return Ok(Err(format!("ECR has no image {}:{commit}", self.repository)));
        };
        let digest = Digest::parse(detail.image_digest().unwrap_or_default())?;
        let repos = self
            .ecr
            .describe_repositories()
            .repository_names(&self.repository)
            .send()
            .await
            .map_err(|e| from_sdk("ecr:DescribeRepositories", e))?;
        let uri = repos
            .repositories()
            .first()
            .and_then(|r| r.repository_uri())
            .ok_or_else(|| Error::NotFound { kind: "ECR repository", id: self.repository.clone().into() })?;
        let image = ImageRef::parse(&format!("{uri}:{commit}"))?.with_digest(digest.clone());
        Ok(Ok((image, digest)))
    }
}

fn variable(name: &str, value: &str) -> EnvironmentVariable {
    EnvironmentVariable::builder()
        .name(name)
        .value(value)
        .r#type(EnvironmentVariableType::Plaintext)
        .build()
        .expect("name and value are set")
}

#[async_trait]
impl Builder for CodeBuildBuilder {
    async fn start(&self, revision: &Revision) -> Result<BuildId> {
        self.start_build(revision, None).await
    }

    /// With `idempotencyToken`: the SHA-256 of `key` in hex (a token CodeBuild takes whatever the
    /// key's length or characters). A repeated request with it, within 5 minutes, answers the build
    /// the first one started.
    async fn start_once(&self, revision: &Revision, key: &str) -> Result<BuildId> {
        self.start_build(revision, Some(idempotency_token(key))).await
    }

    /// `ListBuildsForProject` (newest first) and one `BatchGetBuilds` of its first page (up to 100
    /// builds): the build whose `SENDY_CD_KEY` variable is the key's token, else the newest build of
    /// the commit that started after `since` (less five minutes of clock skew).
    async fn find_started(&self, revision: &Revision, key: &str, since: jiff::Timestamp) -> Result<Option<BuildId>> {
        let listed = self
            .codebuild
            .list_builds_for_project()
            .project_name(&self.project)
            .sort_order(aws_sdk_codebuild::types::SortOrderType::Descending)
            .send()
            .await
            .map_err(|e| from_sdk("codebuild:ListBuildsForProject", e))?;
        let ids: Vec<String> = listed.ids().iter().take(100).cloned().collect();
        if ids.is_empty() {
            return Ok(None);
        }
        let out = self
            .codebuild
            .batch_get_builds()
            .set_ids(Some(ids))
            .send()
            .await
            .map_err(|e| from_sdk("codebuild:BatchGetBuilds", e))?;
        let token = idempotency_token(key);
        let carries_key = |b: &&aws_sdk_codebuild::types::Build| {
            b.environment().is_some_and(|e| {
                e.environment_variables().iter().any(|v| v.name() == KEY_VARIABLE && v.value() == token)
            })
        };
        let earliest = since.as_second().saturating_sub(300);
        let same_commit = |b: &&aws_sdk_codebuild::types::Build| {
            b.source_version() == Some(revision.commit.as_str()) && b.start_time().is_some_and(|t| t.secs() >= earliest)
        };
        let newest = |a: &&aws_sdk_codebuild::types::Build| a.start_time().map_or(0, |t| t.secs());
        let found = out
            .builds()
            .iter()
            .find(carries_key)
            .or_else(|| out.builds().iter().filter(same_commit).max_by_key(newest));
        Ok(found.and_then(|b| b.id()).map(BuildId::parse).transpose()?)
    }

    async fn status(&self, build: &BuildId) -> Result<BuildStatus> {
        self.status_of(build).await
    }

    async fn stop(&self, build: &BuildId) -> Result<()> {
        self.stop_build(build).await
    }
}

/// The environment variable a build started with a key carries: the key's token, found again by
/// [`find_started`](Builder::find_started).
const KEY_VARIABLE: &str = "SENDY_CD_KEY";

/// The `idempotencyToken` of a key.
pub fn idempotency_token(key: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl CodeBuildBuilder {
    async fn start_build(&self, revision: &Revision, token: Option<String>) -> Result<BuildId> {
        let keyed = token.as_ref().map(|t| variable(KEY_VARIABLE, t));
        let out = self
            .codebuild
            .start_build()
            .set_idempotency_token(token)
            .project_name(&self.project)
            .source_version(revision.commit.as_str())
            .environment_variables_override(variable("IMAGE_TAG", revision.image_tag()))
            .environment_variables_override(variable("IMAGE_REPO_NAME", &self.repository))
            .environment_variables_override(variable("COMMIT_ID", revision.commit.as_str()));
        let out = match keyed {
            Some(keyed) => out.environment_variables_override(keyed),
            None => out,
        }
        .send()
        .await
        .map_err(|e| from_sdk("codebuild:StartBuild", e))?;
        let id =
            out.build_value().and_then(|b| b.id()).ok_or_else(|| Error::Backend("codebuild: no build id".into()))?;
        Ok(BuildId::parse(id)?)
    }

    async fn status_of(&self, build: &BuildId) -> Result<BuildStatus> {
        let out = self
            .codebuild
            .batch_get_builds()
            .ids(build.as_str())
            .send()
            .await
            .map_err(|e| from_sdk("codebuild:BatchGetBuilds", e))?;
        let Some(b) = out.builds().first() else {
            return Err(Error::NotFound { kind: "build", id: build.to_string().into() });
        };
        let phase = b.current_phase().unwrap_or("UNKNOWN").to_owned();
        Ok(match b.build_status() {
            Some(StatusType::Succeeded) => {
                let commit = CommitId::parse(b.source_version().unwrap_or_default())?;
                match self.pushed_image(&commit).await? {
                    Ok((image, digest)) => {
                        BuildStatus::Succeeded(BuiltImage { image, digest, build: build.clone(), commit })
                    }
                    Err(reason) => BuildStatus::Failed {
                        phase: "POST_BUILD".into(),
                        reason: format!("the build succeeded but pushed no image: {reason}"),
                    },
                }
            }
            Some(StatusType::Stopped) => BuildStatus::Stopped,
            Some(StatusType::Failed | StatusType::Fault | StatusType::TimedOut) => {
                let failed = b.phases().iter().find(|p| {
                    matches!(p.phase_status(), Some(StatusType::Failed | StatusType::Fault | StatusType::TimedOut))
                });
                let phase = failed.and_then(|p| p.phase_type()).map_or(phase, |p| p.as_str().to_owned());
                let reason = failed
                    .and_then(|p| p.contexts().first())
                    .and_then(|c| c.message())
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("build {}", b.build_status().map_or("failed", |s| s.as_str())));
                BuildStatus::Failed { phase, reason }
            }
            _ if phase == BuildPhaseType::Queued.as_str() || phase == BuildPhaseType::Submitted.as_str() => {
                BuildStatus::Queued
            }
            _ => BuildStatus::InProgress { phase },
        })
    }

    async fn stop_build(&self, build: &BuildId) -> Result<()> {
        match self.codebuild.stop_build().id(build.as_str()).send().await {
            Ok(_) => Ok(()),
            // Stopping a build that already ended is not an error: CodeBuild answers it with its typed
            // `InvalidInputException`.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_invalid_input_exception()) => Ok(()),
            Err(e) => Err(from_sdk("codebuild:StopBuild", e)),
        }
    }
}
