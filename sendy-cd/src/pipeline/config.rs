//! What a pipeline is made of: its environments, its strategy and its deadlines.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::analysis::Analysis;
use crate::deployer::{Deployer, ManagedDeployer};
use crate::error::{Error, Result};
use crate::model::{EnvironmentName, ParameterKey, SetIdentifier, StackName, StackParameters};
use crate::shared::Shared;
use crate::stack::Stack;
use crate::verify::Verifier;

/// One place a revision can be deployed to: a stack, the service in it, the way to check it, and its
/// weighted DNS record.
#[derive(Clone)]
pub struct Environment {
    pub(crate) name: EnvironmentName,
    pub(crate) stack: Arc<dyn Stack>,
    pub(crate) stack_name: StackName,
    pub(crate) parameters: StackParameters,
    pub(crate) image_parameter: Option<ParameterKey>,
    pub(crate) url_output: String,
    pub(crate) deployer: Arc<dyn Deployer>,
    pub(crate) managed: Option<Arc<dyn ManagedDeployer>>,
    pub(crate) verifier: Arc<dyn Verifier>,
    pub(crate) dns_target: SetIdentifier,
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("name", &self.name)
            .field("stack_name", &self.stack_name)
            .field("image_parameter", &self.image_parameter)
            .field("dns_target", &self.dns_target)
            .finish_non_exhaustive()
    }
}

impl Environment {
    /// Starts describing environment `name` (such as `blue`).
    pub fn builder(name: &str) -> EnvironmentBuilder {
        EnvironmentBuilder {
            name: name.to_owned(),
            stack: None,
            parameters: StackParameters::new(),
            image_parameter: Some("ImageUri".into()),
            url_output: "ServiceUrl".into(),
            deployer: None,
            managed: None,
            verifier: None,
            dns_target: None,
        }
    }

    /// The environment's name.
    pub fn name(&self) -> &EnvironmentName {
        &self.name
    }

    /// Its stack's name.
    pub fn stack_name(&self) -> &StackName {
        &self.stack_name
    }

    /// Its set identifier in the weighted DNS record.
    pub fn dns_target(&self) -> &SetIdentifier {
        &self.dns_target
    }
}

/// Describes an [`Environment`]; validated by [`build`](EnvironmentBuilder::build).
#[must_use]
pub struct EnvironmentBuilder {
    name: String,
    stack: Option<(Arc<dyn Stack>, String)>,
    parameters: StackParameters,
    image_parameter: Option<String>,
    url_output: String,
    deployer: Option<Arc<dyn Deployer>>,
    managed: Option<Arc<dyn ManagedDeployer>>,
    verifier: Option<Arc<dyn Verifier>>,
    dns_target: Option<String>,
}

impl EnvironmentBuilder {
    /// The stack (required) and its name.
    pub fn stack(mut self, stack: impl Shared<dyn Stack>, name: &str) -> Self {
        self.stack = Some((stack.into_shared(), name.to_owned()));
        self
    }

    /// Parameters every stack change sets (besides the image). Default none.
    pub fn parameters(mut self, parameters: StackParameters) -> Self {
        self.parameters = parameters;
        self
    }

    /// The stack parameter that receives the image, or `None` for a stack that does not manage the
    /// image (the deployer alone rolls it out). Default `ImageUri`.
    pub fn image_parameter(mut self, key: Option<&str>) -> Self {
        self.image_parameter = key.map(str::to_owned);
        self
    }

    /// The stack output holding the service URL. Default `ServiceUrl`.
    pub fn url_output(mut self, key: &str) -> Self {
        self.url_output = key.to_owned();
        self
    }

    /// The deployer of the environment's service (required).
    pub fn deployer(mut self, deployer: impl Shared<dyn Deployer>) -> Self {
        self.deployer = Some(deployer.into_shared());
        self
    }

    /// A deployer whose backend shifts the traffic itself (ECS's `BLUE_GREEN`, `LINEAR`, `CANARY`),
    /// for [`Strategy::EcsManaged`]: it is the environment's deployer too.
    pub fn managed(mut self, deployer: impl Shared<dyn ManagedDeployer>) -> Self {
        let deployer = deployer.into_shared();
        self.deployer = Some(deployer.clone());
        self.managed = Some(deployer);
        self
    }

    /// The verifier that reaches the service URL (required).
    pub fn verifier(mut self, verifier: impl Shared<dyn Verifier>) -> Self {
        self.verifier = Some(verifier.into_shared());
        self
    }

    /// The environment's set identifier in the weighted record. Default: the environment's name.
    pub fn dns_target(mut self, set_identifier: &str) -> Self {
        self.dns_target = Some(set_identifier.to_owned());
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed name, stack name, parameter key or set identifier;
    /// [`Error::InvalidConfig`] for a missing stack, deployer or verifier.
    pub fn build(self) -> Result<Environment> {
        let name = EnvironmentName::parse(self.name)?;
        let missing = |what: &str| Error::InvalidConfig(format!("environment {name}: no {what} given"));
        let (stack, stack_name) = self.stack.ok_or_else(|| missing("stack"))?;
        Ok(Environment {
            stack,
            stack_name: StackName::parse(stack_name)?,
            parameters: self.parameters,
            image_parameter: self.image_parameter.map(ParameterKey::parse).transpose()?,
            url_output: self.url_output,
            deployer: self.deployer.ok_or_else(|| missing("deployer"))?,
            managed: self.managed,
            verifier: self.verifier.ok_or_else(|| missing("verifier"))?,
            dns_target: match self.dns_target {
                Some(t) => SetIdentifier::parse(t)?,
                None => SetIdentifier::from(&name),
            },
            name,
        })
    }
}

/// How a canary moves traffic.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Canary {
    /// The new environment's share of traffic at each step, in percent: strictly increasing, ending at
    /// 100. Default `[10, 50, 100]`.
    pub steps: Vec<u8>,
    /// How long each step but the last runs before it is verified. Default 5 min.
    pub bake: Duration,
    /// The metric analysis of each step but the last, in place of the bake: the canary is judged
    /// against the environment it takes traffic from, over the same intervals, and the step ends at
    /// the verdict (the sequential judge may stop early); anything but a pass fails the step and
    /// sends the traffic back. Needs [`PipelineBuilder::metrics`](crate::PipelineBuilder::metrics).
    /// Default none.
    pub analysis: Option<Analysis>,
}

impl Canary {
    /// A canary with these steps (percent of traffic on the new environment) and bake time; the
    /// pipeline's `build()` checks them ([`validate`](Self::validate)).
    pub fn new(steps: impl Into<Vec<u8>>, bake: Duration) -> Self {
        Canary { steps: steps.into(), bake, analysis: None }
    }

    /// Checks the steps (strictly increasing, from above 0 to 100) and the analysis.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the steps, or from [`Analysis::validate`].
    pub fn validate(&self) -> Result<()> {
        let increasing = self.steps.windows(2).all(|w| w[0] < w[1]);
        if self.steps.first().is_none_or(|first| *first == 0) || !increasing || self.steps.last() != Some(&100) {
            return Err(Error::InvalidConfig(format!(
                "canary steps {:?} must increase strictly from above 0 to 100",
                self.steps
            )));
        }
        if let Some(analysis) = &self.analysis {
            analysis.validate()?;
        }
        Ok(())
    }
}

impl Default for Canary {
    fn default() -> Self {
        Canary { steps: vec![10, 50, 100], bake: Duration::from_secs(300), analysis: None }
    }
}

/// How a revision reaches users.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum Strategy {
    /// Update the live environment in place.
    AllAtOnce,
    /// Deploy the idle environment, then move all traffic at once.
    #[default]
    BlueGreen,
    /// Deploy the idle environment, then move traffic step by step.
    Canary(Canary),
    /// One environment whose backend moves the traffic itself (ECS's own `BLUE_GREEN`, `LINEAR` or
    /// `CANARY` deployment between two target groups); the pipeline follows it stage by stage and
    /// decides each `PAUSE` hook with its checks.
    EcsManaged(EcsManaged),
}

impl Strategy {
    /// The strategy's name, as records show it.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::AllAtOnce => "all_at_once",
            Strategy::BlueGreen => "blue_green",
            Strategy::Canary(_) => "canary",
            Strategy::EcsManaged(_) => "ecs_managed",
        }
    }
}

/// How the pipeline drives a deployment whose traffic ECS shifts ([`Strategy::EcsManaged`]).
///
/// The environment's [`managed`](EnvironmentBuilder::managed) deployer starts the service deployment
/// and pins it; ECS moves the traffic with the service's own strategy, and at each `PAUSE` hook the
/// pipeline's checks decide `CONTINUE` or `ROLLBACK`:
/// - `POST_TEST_TRAFFIC_SHIFT`: the new revision, checked through the test listener's URL;
/// - `PRE_PRODUCTION_TRAFFIC_SHIFT` once the new revision has production traffic (after each
///   canary or linear step): the [`analysis`](Self::analysis) of the new revision's target group
///   against the old one's, then the production URL checked; before the first step: nothing to judge;
/// - `POST_PRODUCTION_TRAFFIC_SHIFT`: the production URL checked.
///
/// A failure or cancellation while the deployment runs stops it (`StopServiceDeployment`, rolling
/// back); ECS's own rollbacks (an alarm, the circuit breaker, a hook's timeout) fail the execution.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct EcsManaged {
    /// The stack output holding the test listener's URL. Default `TestUrl`; `None` checks nothing at
    /// `POST_TEST_TRAFFIC_SHIFT`.
    pub test_url_output: Option<String>,
    /// The metric analysis of each production step. Needs
    /// [`PipelineBuilder::metrics`](crate::PipelineBuilder::metrics), and a deployer that names the
    /// target groups ([`ManagedStatus::target_slot`](crate::ManagedStatus::target_slot)). Default none.
    pub analysis: Option<Analysis>,
}

impl Default for EcsManaged {
    fn default() -> Self {
        EcsManaged { test_url_output: Some("TestUrl".into()), analysis: None }
    }
}

setters!(EcsManaged { test_url_output: Option<String>, #[into] analysis: Option<Analysis> });

/// How long each stage may take before it is a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deadlines {
    /// The build. Default 60 min (CodeBuild's own default timeout).
    pub build: Duration,
    /// A stack update. Default 60 min.
    pub stack: Duration,
    /// A rollout. Default 30 min.
    pub rollout: Duration,
    /// One verification. Default 10 min.
    pub verify: Duration,
    /// One DNS change, until applied. Default 15 min.
    pub traffic: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            build: Duration::from_secs(3600),
            stack: Duration::from_secs(3600),
            rollout: Duration::from_secs(1800),
            verify: Duration::from_secs(600),
            traffic: Duration::from_secs(900),
        }
    }
}

setters!(Deadlines { build: Duration, stack: Duration, rollout: Duration, verify: Duration, traffic: Duration });

setters!(Canary { #[into] steps: Vec<u8>, bake: Duration, #[into] analysis: Option<Analysis> });
