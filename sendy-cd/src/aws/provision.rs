//! Creating what a deployment needs in an account, when it is missing.

use aws_sdk_codebuild::types::{
    ArtifactsType, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment, ProjectSource, SourceType,
};

use super::AwsConfig;
use super::error::from_sdk;
use crate::error::{Error, Result};

/// The buildspec [`CodeBuildBuilder`](super::CodeBuildBuilder) expects (`deploy/buildspec.yml`).
pub const BUILDSPEC: &str = include_str!("../../../deploy/buildspec.yml");

/// Creates the ECR repository, the CodeBuild project and the hosted zone a pipeline needs, each only if
/// it is missing, so that running it again changes nothing.
#[derive(Clone, Debug)]
pub struct Provisioner {
    ecr: aws_sdk_ecr::Client,
    codebuild: aws_sdk_codebuild::Client,
    route53: aws_sdk_route53::Client,
}

/// What a CodeBuild project builds, and as whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectSpec {
    /// The project's name.
    pub name: String,
    /// The repository to build (`https://github.com/owner/repo.git`, a CodeCommit URL).
    pub source_url: String,
    /// The role CodeBuild assumes (it needs ECR push rights).
    pub service_role_arn: String,
    /// The buildspec; [`BUILDSPEC`] builds, tags with the commit and pushes.
    pub buildspec: String,
}

impl Provisioner {
    /// A provisioner for the account and region of `config`.
    pub fn new(config: &AwsConfig) -> Self {
        let sdk = config.sdk_config();
        Provisioner {
            ecr: aws_sdk_ecr::Client::new(sdk),
            codebuild: aws_sdk_codebuild::Client::new(sdk),
            route53: aws_sdk_route53::Client::new(sdk),
        }
    }

    /// The URI of ECR repository `name`, created (with scan on push) if
    /// missing.
    ///
    /// # Errors
    /// AWS errors as usual.
    pub async fn ecr_repository(&self, name: &str) -> Result<String> {
        let uri = |r: Option<&aws_sdk_ecr::types::Repository>| {
            r.and_then(|r| r.repository_uri())
                .map(str::to_owned)
                .ok_or_else(|| Error::Backend(format!("ecr: repository {name} has no URI").into()))
        };
        match self.ecr.describe_repositories().repository_names(name).send().await {
            Ok(out) => return uri(out.repositories().first()),
            Err(e) => match from_sdk("ecr:DescribeRepositories", e) {
                Error::NotFound { .. } => {}
                other => return Err(other),
            },
        }
        let out = self
            .ecr
            .create_repository()
            .repository_name(name)
            .image_scanning_configuration(
                aws_sdk_ecr::types::ImageScanningConfiguration::builder().scan_on_push(true).build(),
            )
            .send()
            .await
            .map_err(|e| from_sdk("ecr:CreateRepository", e))?;
        uri(out.repository())
    }

    /// Creates CodeBuild project `spec.name` (a Linux container with Docker, privileged mode) unless a
    /// project of that name exists. Returns whether it created it.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty name, source or a role that is not an ARN; AWS errors as
    /// usual.
    pub async fn codebuild_project(&self, spec: &ProjectSpec) -> Result<bool> {
        if spec.name.is_empty() || spec.source_url.is_empty() || !spec.service_role_arn.starts_with("arn:") {
            return Err(Error::InvalidConfig(format!(
                "CodeBuild project spec {} is incomplete",
                crate::error::truncate(&format!("{spec:?}"))
            )));
        }
        let existing = self
            .codebuild
            .batch_get_projects()
            .names(&spec.name)
            .send()
            .await
            .map_err(|e| from_sdk("codebuild:BatchGetProjects", e))?;
        if !existing.projects().is_empty() {
            return Ok(false);
        }
        let build = |e: aws_sdk_codebuild::error::BuildError| Error::InvalidConfig(format!("CodeBuild project: {e}"));
        let source_type =
            if spec.source_url.contains("git-codecommit") { SourceType::Codecommit } else { SourceType::Github };
        self.codebuild
            .create_project()
            .name(&spec.name)
            .source(
                ProjectSource::builder()
                    .r#type(source_type)
                    .location(&spec.source_url)
                    .buildspec(&spec.buildspec)
                    .build()
                    .map_err(build)?,
            )
            .artifacts(ProjectArtifacts::builder().r#type(ArtifactsType::NoArtifacts).build().map_err(build)?)
            .environment(
                ProjectEnvironment::builder()
                    .r#type(EnvironmentType::LinuxContainer)
                    .image("aws/codebuild/standard:7.0")
                    .compute_type(ComputeType::BuildGeneral1Small)
                    .privileged_mode(true)
                    .build()
                    .map_err(build)?,
            )
            .service_role(&spec.service_role_arn)
            .send()
            .await
            .map_err(|e| from_sdk("codebuild:CreateProject", e))?;
        Ok(true)
    }

    /// The id of the public hosted zone of `domain`, created if missing.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty domain; AWS errors as usual.
    pub async fn hosted_zone(&self, domain: &str) -> Result<String> {
        let domain = domain.trim_end_matches('.');
        if domain.is_empty() {
            return Err(Error::InvalidConfig("an empty domain".into()));
        }
        let wanted = format!("{}.", domain.to_ascii_lowercase());
        let listed = self
            .route53
            .list_hosted_zones_by_name()
            .dns_name(&wanted)
            .send()
            .await
            .map_err(|e| from_sdk("route53:ListHostedZonesByName", e))?;
        let id = |raw: &str| raw.trim_start_matches("/hostedzone/").to_owned();
        if let Some(zone) = listed.hosted_zones().iter().find(|z| z.name().to_ascii_lowercase() == wanted) {
            return Ok(id(zone.id()));
        }
        let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let out = self
            .route53
            .create_hosted_zone()
            .name(domain)
            .caller_reference(format!("sendy-cd-{millis}"))
            .send()
            .await
            .map_err(|e| from_sdk("route53:CreateHostedZone", e))?;
        out.hosted_zone()
            .map(|z| id(z.id()))
            .ok_or_else(|| Error::Backend("route53: no hosted zone in the answer".into()))
    }
}
