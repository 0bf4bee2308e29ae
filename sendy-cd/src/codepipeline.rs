//! AWS CodePipeline (feature `aws`): provisioning a CodePipeline that runs the same flow inside AWS,
//! and following its executions as [`Event`]s.
//!
//! A different job from [`pipeline`](crate::pipeline), which runs the flow itself, in this process.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore, ArtifactStoreType, InputArtifact,
    OutputArtifact, PipelineDeclaration, PipelineExecutionStatus, StageDeclaration, StageExecutionStatus,
};
use tokio::time::Instant;

use crate::aws::AwsConfig;
use crate::aws::error::from_sdk;
use crate::error::{Error, Result};
use crate::events::{Event, EventKind, EventSink};
use crate::model::Id;
use crate::record::StageOutcome;
use crate::wait::{Check, PollPolicy, Wait};

/// What the CodePipeline runs: a GitHub source through a CodeStar connection, a CodeBuild build
/// (`deploy/buildspec.yml`, which writes `build-info.json`), and a CloudFormation deploy of the
/// environment template with the built image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineSpec {
    /// The pipeline's name.
    pub name: String,
    /// The role CodePipeline assumes.
    pub role_arn: String,
    /// The S3 bucket for artifacts.
    pub artifact_bucket: String,
    /// The CodeStar connection to GitHub.
    pub connection_arn: String,
    /// `owner/repository` on GitHub.
    pub repository: String,
    /// The branch to follow.
    pub branch: String,
    /// The CodeBuild project.
    pub build_project: String,
    /// The environment stack to deploy.
    pub stack_name: String,
    /// The template inside the source, such as `deploy/environment.yml`.
    pub template_path: String,
    /// The role CloudFormation assumes.
    pub cloudformation_role_arn: String,
}

impl PipelineSpec {
    /// Checks every field before any call.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str| Err(Error::InvalidConfig(format!("pipeline spec: {field} is malformed")));
        let name_ok = |s: &str| {
            (1..=100).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        };
        if !name_ok(&self.name) {
            return bad("name");
        }
        for (field, value) in [
            ("role_arn", &self.role_arn),
            ("connection_arn", &self.connection_arn),
            ("cloudformation_role_arn", &self.cloudformation_role_arn),
        ] {
            if !value.starts_with("arn:") {
                return bad(field);
            }
        }
        if self.repository.split('/').count() != 2 || self.repository.split('/').any(str::is_empty) {
            return bad("repository (owner/name)");
        }
        for (field, value) in [
            ("artifact_bucket", &self.artifact_bucket),
            ("branch", &self.branch),
            ("build_project", &self.build_project),
            ("stack_name", &self.stack_name),
            ("template_path", &self.template_path),
        ] {
            if value.is_empty() {
                return bad(field);
            }
        }
        Ok(())
    }

    /// The pipeline declaration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] as [`validate`](Self::validate).
    pub fn declaration(&self) -> Result<PipelineDeclaration> {
        self.validate()?;
        let build_err =
            |e: aws_sdk_codepipeline::error::BuildError| Error::InvalidConfig(format!("pipeline spec: {e}"));
        let type_id = |category, provider: &str| {
            ActionTypeId::builder().category(category).owner(ActionOwner::Aws).provider(provider).version("1").build()
        };
        let config = |pairs: &[(&str, String)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
        };
        let source = ActionDeclaration::builder()
            .name("GitHub")
            .action_type_id(type_id(ActionCategory::Source, "CodeStarSourceConnection").map_err(build_err)?)
            .set_configuration(Some(config(&[
                ("ConnectionArn", self.connection_arn.clone()),
                ("FullRepositoryId", self.repository.clone()),
                ("BranchName", self.branch.clone()),
                ("OutputArtifactFormat", "CODE_ZIP".into()),
            ])))
            .output_artifacts(OutputArtifact::builder().name("Source").build().map_err(build_err)?)
            .build()
            .map_err(build_err)?;
        let build = ActionDeclaration::builder()
            .name("Image")
            .action_type_id(type_id(ActionCategory::Build, "CodeBuild").map_err(build_err)?)
            .set_configuration(Some(config(&[("ProjectName", self.build_project.clone())])))
            .input_artifacts(InputArtifact::builder().name("Source").build().map_err(build_err)?)
            .output_artifacts(OutputArtifact::builder().name("Build").build().map_err(build_err)?)
            .build()
            .map_err(build_err)?;
        let deploy = ActionDeclaration::builder()
            .name("Stack")
            .action_type_id(type_id(ActionCategory::Deploy, "CloudFormation").map_err(build_err)?)
            .set_configuration(Some(config(&[
                ("ActionMode", "CREATE_UPDATE".into()),
                ("StackName", self.stack_name.clone()),
                ("TemplatePath", format!("Source::{}", self.template_path)),
                ("Capabilities", "CAPABILITY_IAM,CAPABILITY_NAMED_IAM".into()),
                ("RoleArn", self.cloudformation_role_arn.clone()),
                (
                    "ParameterOverrides",
                    r#"{"ImageUri": {"Fn::GetParam": ["Build", "build-info.json", "image"]}}"#.into(),
                ),
            ])))
            .input_artifacts(InputArtifact::builder().name("Source").build().map_err(build_err)?)
            .input_artifacts(InputArtifact::builder().name("Build").build().map_err(build_err)?)
            .build()
            .map_err(build_err)?;
        let stage = |name: &str, action| StageDeclaration::builder().name(name).actions(action).build();
        PipelineDeclaration::builder()
            .name(&self.name)
            .role_arn(&self.role_arn)
            .artifact_store(
                ArtifactStore::builder()
                    .r#type(ArtifactStoreType::S3)
                    .location(&self.artifact_bucket)
                    .build()
                    .map_err(build_err)?,
            )
            .stages(stage("Source", source).map_err(build_err)?)
            .stages(stage("Build", build).map_err(build_err)?)
            .stages(stage("Deploy", deploy).map_err(build_err)?)
            .build()
            .map_err(build_err)
    }
}

/// How a followed CodePipeline execution ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodePipelineOutcome {
    /// Every stage succeeded.
    Succeeded,
    /// It failed, stopped or was superseded; the status and the reason CodePipeline gave.
    Failed {
        /// `Failed`, `Stopped`, `Superseded`, ...
        status: String,
        /// CodePipeline's summary, if any.
        reason: String,
    },
}

/// Creates, updates and follows CodePipelines.
#[derive(Clone, Debug)]
pub struct CodePipelines {
    client: aws_sdk_codepipeline::Client,
    poll: PollPolicy,
}

impl CodePipelines {
    /// How long stage `stage` of execution `execution_id` ran: from its actions' earliest start to
    /// their latest update. `None` when CodePipeline gives no times (or cannot be read: the duration
    /// is information, not worth failing the follow for).
    async fn stage_duration(&self, name: &str, execution_id: &str, stage: &str) -> Option<u64> {
        let filter =
            aws_sdk_codepipeline::types::ActionExecutionFilter::builder().pipeline_execution_id(execution_id).build();
        let mut pages = self.client.list_action_executions().pipeline_name(name).filter(filter).into_paginator().send();
        let (mut start, mut end) = (None::<i64>, None::<i64>);
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %from_sdk("codepipeline:ListActionExecutions", e), "stage duration unknown");
                    return None;
                }
            };
            for action in page.action_execution_details().iter().filter(|a| a.stage_name() == Some(stage)) {
                let millis = |t: &aws_smithy_types::DateTime| t.to_millis().ok();
                if let Some(s) = action.start_time().and_then(millis) {
                    start = Some(start.map_or(s, |x| x.min(s)));
                }
                if let Some(e) = action.last_update_time().and_then(millis) {
                    end = Some(end.map_or(e, |x| x.max(e)));
                }
            }
        }
        let (start, end) = (start?, end?);
        u64::try_from(end.saturating_sub(start)).ok()
    }

    /// CodePipelines of the account and region of `config`.
    pub fn new(config: &AwsConfig) -> Self {
        Self::from_client(aws_sdk_codepipeline::Client::new(config.sdk_config()))
    }

    /// As [`new`](Self::new), with a client of your own.
    pub fn from_client(client: aws_sdk_codepipeline::Client) -> Self {
        CodePipelines {
            client,
            poll: PollPolicy { first: Duration::from_secs(5), max: Duration::from_secs(20), ..PollPolicy::default() },
        }
    }

    /// How to poll a followed execution. Default every 5 s growing to 20 s.
    #[must_use]
    pub fn polling(mut self, poll: PollPolicy) -> Self {
        self.poll = poll;
        self
    }

    /// Creates the pipeline of `spec`, or updates it to `spec` if it exists. Returns its version.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad spec (before any call); AWS errors as usual.
    pub async fn ensure(&self, spec: &PipelineSpec) -> Result<i32> {
        let declaration = spec.declaration()?;
        let exists = match self.client.get_pipeline().name(&spec.name).send().await {
            Ok(_) => true,
            Err(e) => match from_sdk("codepipeline:GetPipeline", e) {
                Error::NotFound { .. } => false,
                other => return Err(other),
            },
        };
        let version = if exists {
            let out = self
                .client
                .update_pipeline()
                .pipeline(declaration)
                .send()
                .await
                .map_err(|e| from_sdk("codepipeline:UpdatePipeline", e))?;
            out.pipeline().and_then(PipelineDeclaration::version)
        } else {
            let out = self
                .client
                .create_pipeline()
                .pipeline(declaration)
                .send()
                .await
                .map_err(|e| from_sdk("codepipeline:CreatePipeline", e))?;
            out.pipeline().and_then(PipelineDeclaration::version)
        };
        Ok(version.unwrap_or(1))
    }

    /// Follows execution `execution_id` of pipeline `name` until it ends (or `deadline` passes),
    /// sending its stage transitions to `sink` as events that name each stage as the pipeline does:
    /// [`EventKind::PipelineStageStarted`], [`EventKind::PipelineStageProgress`] and
    /// [`EventKind::PipelineStageFinished`] (with the failing action's error message, and the stage's
    /// duration from its actions' start and end times, read with `ListActionExecutions` once per
    /// finished stage). How the execution ended is returned.
    ///
    /// # Errors
    /// [`Error::Timeout`] after `deadline`; AWS errors as usual.
    pub async fn follow(
        &self,
        name: &str,
        execution_id: &str,
        sink: &dyn EventSink,
        deadline: Duration,
    ) -> Result<CodePipelineOutcome> {
        let execution = Id::parse(execution_id)?;
        let started = Instant::now();
        let seen = std::sync::Mutex::new(HashMap::<String, String>::new());
        let emit = |kind: EventKind| {
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            sink.on_event(&Event { execution: execution.clone(), elapsed_ms, kind });
        };
        let (outcome, _) = Wait::new(&self.poll, format!("CodePipeline {name} execution {execution_id}"), deadline)
            .until(|| async {
                let state = self
                    .client
                    .get_pipeline_state()
                    .name(name)
                    .send()
                    .await
                    .map_err(|e| from_sdk("codepipeline:GetPipelineState", e))?;
                for stage in state.stage_states() {
                    let Some(latest) = stage.latest_execution() else { continue };
                    if latest.pipeline_execution_id() != execution_id {
                        continue;
                    }
                    let stage_name = stage.stage_name().unwrap_or_default().to_owned();
                    let status = latest.status().as_str().to_owned();
                    let previous = seen
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(stage_name.clone(), status.clone());
                    if previous.as_deref() == Some(status.as_str()) {
                        continue;
                    }
                    if previous.is_none() {
                        emit(EventKind::PipelineStageStarted { name: stage_name.clone() });
                    }
                    let failure = stage
                        .action_states()
                        .iter()
                        .find_map(|a| a.latest_execution()?.error_details()?.message().map(str::to_owned));
                    let outcome = match latest.status() {
                        StageExecutionStatus::Succeeded => Some(StageOutcome::Succeeded),
                        StageExecutionStatus::Failed => Some(StageOutcome::Failed {
                            reason: failure.unwrap_or_else(|| format!("{stage_name} failed")),
                        }),
                        StageExecutionStatus::Stopped | StageExecutionStatus::Cancelled => {
                            Some(StageOutcome::Cancelled)
                        }
                        _ => None,
                    };
                    match outcome {
                        Some(outcome) => {
                            let duration_ms = self.stage_duration(name, execution_id, &stage_name).await;
                            emit(EventKind::PipelineStageFinished { name: stage_name, duration_ms, outcome });
                        }
                        None => emit(EventKind::PipelineStageProgress { name: stage_name, status }),
                    }
                }
                let out = self
                    .client
                    .get_pipeline_execution()
                    .pipeline_name(name)
                    .pipeline_execution_id(execution_id)
                    .send()
                    .await
                    .map_err(|e| from_sdk("codepipeline:GetPipelineExecution", e))?;
                let Some(run) = out.pipeline_execution() else { return Ok(Check::Pending) };
                Ok(match run.status() {
                    Some(PipelineExecutionStatus::Succeeded) => Check::Ready(CodePipelineOutcome::Succeeded),
                    Some(PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping) | None => {
                        Check::Pending
                    }
                    Some(other) => Check::Ready(CodePipelineOutcome::Failed {
                        status: other.as_str().to_owned(),
                        reason: run
                            .status_summary()
                            .map(str::to_owned)
                            .unwrap_or_else(|| format!("the execution ended {}", other.as_str())),
                    }),
                })
            })
            .await?;
        Ok(outcome)
    }
}
