//! # sendy-cd
//!
//! Continuous deployment of containerized services to AWS, as a library: a commit is built into an
//! image, the environment's stack is updated through a previewed plan, the service is rolled out to
//! the new image, the environment is tested through its URL, and weighted DNS records move users to
//! it (blue/green, or step by step as a canary), moving them back at once when something is wrong.
//!
//! The workflow is made of small traits, each with a contract: [`Source`], [`Builder`], [`Stack`],
//! [`Deployer`], [`DnsSwitch`] and [`Verifier`]. A [`Pipeline`] composes them under a [`Strategy`] and
//! records every stage and step in an [`ExecutionRecord`], while emitting [`Event`]s.
//!
//! [`memory`] is a simulated AWS account that implements every trait on tokio's clock, with
//! injectable faults: the embedded default, and the fake to test deployment code with. The `mock`
//! feature adds `mockall` mocks of every trait ([`mock`]); the `conformance` feature exposes the
//! conformance suite every backend passes ([`conformance`]).
//!
//! ```
//! use sendy_cd::{Outcome, Pipeline, memory::Account};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> sendy_cd::Result<()> {
//! let account = Account::new();
//! account.create_environment("blue")?;
//! account.create_environment("green")?;
//! let pipeline = Pipeline::builder()
//!     .image_builder(account.image_builder())
//!     .environment(account.environment("blue")?)
//!     .environment(account.environment("green")?)
//!     .dns(account.dns())
//!     .build()?;
//! let record = pipeline.run(account.push("main", "Add checkout", "Ada")?).await?;
//! assert_eq!(record.outcome, Outcome::Succeeded);
//! # Ok(()) }
//! ```

/// Chainable setters, one per field, for a `#[non_exhaustive]` settings struct: outside the crate
/// such a struct cannot be written as a literal (`..Default::default()` included), so
/// `HealthCheck::default().interval(Duration::from_secs(1))` is how it is built.
/// Numbers and durations are taken as they are (so literals infer); fields marked `#[into]` (text,
/// options, lists) through `Into`: `setters!(HealthCheck { #[into] path: String, interval: Duration })`.
macro_rules! setters {
    ($ty:ident { $($(#[$mode:ident])? $field:ident : $t:ty),* $(,)? }) => {
        impl $ty {
            $( setters!(@one [$($mode)?] $field $t); )*
        }
    };
    (@one [] $field:ident $t:ty) => {
        #[doc = concat!("With [`", stringify!($field), "`](Self::", stringify!($field), ") set.")]
        #[must_use]
        pub fn $field(mut self, value: $t) -> Self {
            self.$field = value;
            self
        }
    };
    (@one [into] $field:ident $t:ty) => {
        #[doc = concat!("With [`", stringify!($field), "`](Self::", stringify!($field), ") set.")]
        #[must_use]
        pub fn $field(mut self, value: impl Into<$t>) -> Self {
            self.$field = value.into();
            self
        }
    };
}

pub mod analysis;
#[cfg(feature = "aws")]
pub mod aws;
pub mod builder;
#[cfg(feature = "aws")]
pub mod codepipeline;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "dashboard")]
pub mod dashboard;
pub mod deployer;
pub mod dns;
pub mod error;
pub mod events;
pub mod memory;
#[cfg(feature = "mock")]
pub mod mock;
pub mod model;
#[cfg(feature = "http")]
pub mod notify;
pub mod pipeline;
pub mod record;
pub mod shared;
pub mod source;
pub mod stack;
pub mod store;
pub mod verify;
pub mod wait;

/// The attribute that implementing the traits needs (`#[sendy_cd::async_trait]`), so that users do
/// not add the crate themselves.
pub use async_trait::async_trait;
pub use builder::{BuildStatus, Builder, BuiltImage};
pub use deployer::{
    DeployedRevision, Deployer, HookAction, LifecycleStage, ManagedDeployer, ManagedState, ManagedStatus,
    RollbackTarget, RolloutStatus, ServiceRevisions, StackDeployer,
};
pub use dns::{ChangeStatus, DnsSwitch};
pub use error::{Detail, Error, Result};
pub use events::{Event, EventKind, EventSink, EventStream, JsonLinesSink};
pub use model::{
    BranchName, BuildId, CommitId, Digest, EnvironmentName, Id, ImageRef, ParameterKey, ParseError, Revision, Rollout,
    ServiceUrl, SetIdentifier, StackName, StackOutputs, StackParameters, Stage, TrafficSplit, ValueKind,
};
pub use pipeline::{
    Canary, Deadlines, EcsManaged, Environment, EnvironmentBuilder, Pipeline, PipelineBuilder, Strategy,
};
pub use record::{
    AnalysisRecord, ExecutionKind, ExecutionRecord, HookDecision, ManagedRecord, MetricComparison, Outcome, Recovery,
    StageOutcome, StageRecord, Step, StepOutcome, StepRecord, VerificationRecord,
};
pub use shared::Shared;
pub use source::Source;
pub use stack::{
    ChangeAction, Plan, PlanKind, Replacement, ResourceChange, Stack, StackChange, StackPlan, StackStatus,
};
pub use tokio_util::sync::CancellationToken;
pub use verify::{HealthCheck, ProbeRequest, ProbeResponse, VerificationReport, Verifier};
pub use wait::{PollPolicy, RetryPolicy};

#[cfg(test)]
mod object_safety {
    use std::sync::Arc;

    use super::*;

    /// Every trait is object safe, `Send` and `Sync`: this compiles.
    #[test]
    fn traits_are_object_safe() {
        fn is_send_sync<T: Send + Sync + ?Sized>() {}
        is_send_sync::<dyn Source>();
        is_send_sync::<dyn Builder>();
        is_send_sync::<dyn Stack>();
        is_send_sync::<dyn Deployer>();
        is_send_sync::<dyn DnsSwitch>();
        is_send_sync::<dyn Verifier>();
        let account = memory::Account::new();
        let _: Arc<dyn Source> = Arc::new(account.source());
        let _: Arc<dyn Builder> = Arc::new(account.image_builder());
        let _: Arc<dyn Stack> = Arc::new(account.stacks());
        let _: Arc<dyn DnsSwitch> = Arc::new(account.dns());
        let _: Arc<dyn Verifier> = Arc::new(account.verifier());
        // A setter takes the backend, an `Arc` of it, or an `Arc<dyn Trait>` without wrapping it again.
        let shared: Arc<dyn DnsSwitch> = Arc::new(account.dns());
        assert!(Arc::ptr_eq(&shared.clone().into_shared(), &shared));
        let _: Arc<dyn DnsSwitch> = account.dns().into_shared();
        let _: Arc<dyn DnsSwitch> = Arc::new(account.dns()).into_shared();
    }

    /// A pipeline's futures can be spawned on a multi-threaded runtime.
    #[test]
    fn pipeline_futures_are_send() {
        fn is_send<T: Send>(_: &T) {}
        let account = memory::Account::new();
        let pipeline = Pipeline::builder()
            .image_builder(account.image_builder())
            .environment({
                account.create_environment("blue").unwrap();
                account.environment("blue").unwrap()
            })
            .strategy(Strategy::AllAtOnce)
            .build()
            .unwrap();
        let revision = account.push("main", "x", "y").unwrap();
        is_send(&pipeline.run(revision));
        is_send(&pipeline.watch(&CancellationToken::new()));
    }
}
