//! An AWS account on the emulator with everything a blue/green pipeline of AWS backends needs (an
//! ECR repository and a CodeBuild project, a hosted zone, the blue and green environment stacks), and
//! that pipeline, with waits shortened so that a whole execution takes seconds: what the `kill -9`
//! drill's processes run (`src/bin/sendy-deploy-aws.rs`).
//!
//! What the emulator cannot do is done here openly: it runs no build, so [`World::push_image`]
//! pushes each revision's image (what `deploy/buildspec.yml` does in AWS); `tests/emulator/serve.py`
//! lets ECS deployments complete. The stacks do not manage the image (`image_parameter(None)`): the
//! emulator breaks task definitions on an image-parameter update, so the ECS deployer rolls it out.

use std::sync::Arc;
use std::time::Duration;

use sendy_cd::aws::provision::{BUILDSPEC, ProjectSpec, Provisioner};
use sendy_cd::aws::{AwsConfig, CloudFormationStack, CodeBuildBuilder, EcsDeployer, RecordType, Route53Dns};
use sendy_cd::store::Store;
use sendy_cd::verify::http::HttpVerifier;
use sendy_cd::wait::PollPolicy;
use sendy_cd::{Environment, HealthCheck, Pipeline, Strategy};

/// The ECR repository.
pub const REPOSITORY: &str = "shop/api";
/// The CodeBuild project.
pub const PROJECT: &str = "shop-api";
/// The weighted record's name.
pub const RECORD: &str = "app.sendy.test";

/// The account's parts a pipeline needs, as the driver made them.
#[derive(Clone, Debug)]
pub struct World {
    /// The hosted zone id.
    pub zone: String,
    /// What both environments' stacks give as their service URL.
    pub service_url: String,
}

impl World {
    /// Creates the repository, the project, the zone and the two stacks (blue with the traffic).
    ///
    /// # Panics
    /// If the emulator refuses a call.
    pub async fn create(config: &AwsConfig, service_url: &str) -> World {
        use aws_sdk_cloudformation::types::Parameter;
        let sdk = config.sdk_config();
        World::build_project(config).await;
        let zone = aws_sdk_route53::Client::new(sdk)
            .create_hosted_zone()
            .name("sendy.test")
            .caller_reference(crate::emulator::unique("world"))
            .send()
            .await
            .expect("zone")
            .hosted_zone()
            .expect("a zone")
            .id()
            .trim_start_matches("/hostedzone/")
            .to_owned();
        let cfn = aws_sdk_cloudformation::Client::new(sdk);
        for (env, weight) in [("blue", "100"), ("green", "0")] {
            let param = |k: &str, v: &str| Parameter::builder().parameter_key(k).parameter_value(v).build();
            cfn.create_stack()
                .stack_name(format!("app-{env}"))
                .template_body(include_str!("../emulator/environment.json"))
                .parameters(param("Env", env))
                .parameters(param("ImageUri", "registry.example.com/shop/api:initial"))
                .parameters(param("ServiceUrl", service_url))
                .parameters(param("HostedZoneId", &zone))
                .parameters(param("RecordName", RECORD))
                .parameters(param("Weight", weight))
                .send()
                .await
                .expect("stack");
        }
        World { zone, service_url: service_url.to_owned() }
    }

    /// The ECR repository and the CodeBuild project, each created only if missing, through the
    /// library's own [`Provisioner`] (what a user runs once per account).
    ///
    /// # Panics
    /// If the emulator refuses a call.
    pub async fn build_project(config: &AwsConfig) {
        let provisioner = Provisioner::new(config);
        provisioner.ecr_repository(REPOSITORY).await.expect("repository");
        let spec = ProjectSpec {
            name: PROJECT.to_owned(),
            source_url: "https://github.com/example/shop-api.git".to_owned(),
            service_role_arn: "arn:aws:iam::123456789012:role/codebuild".to_owned(),
            buildspec: BUILDSPEC.to_owned(),
        };
        provisioner.codebuild_project(&spec).await.expect("project");
    }

    /// The world as one JSON line, for a child process.
    pub fn to_json(&self) -> String {
        serde_json::json!({"zone": self.zone, "service_url": self.service_url}).to_string()
    }

    /// The world a driver wrote with [`to_json`](Self::to_json).
    ///
    /// # Panics
    /// If `json` is not that.
    pub fn from_json(json: &str) -> World {
        let v: serde_json::Value = serde_json::from_str(json).expect("world JSON");
        let field = |k: &str| v[k].as_str().expect("a world field").to_owned();
        World { zone: field("zone"), service_url: field("service_url") }
    }

    /// What the buildspec's `docker push` does: an image manifest tagged `tag`.
    ///
    /// # Panics
    /// If the emulator refuses it.
    pub async fn push_image(config: &AwsConfig, tag: &str) {
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,"digest":"sha256:{}"}},"layers":[]}}"#,
            "c".repeat(64)
        );
        aws_sdk_ecr::Client::new(config.sdk_config())
            .put_image()
            .repository_name(REPOSITORY)
            .image_manifest(manifest)
            .image_tag(tag)
            .send()
            .await
            .expect("put image");
    }

    /// The blue/green pipeline `drill` of AWS backends on this world, with its journal and lease in
    /// `store`: polls start at 50 ms, the DNS TTL is 1 s, the lease lasts 2 s and a second process
    /// waits up to 60 s for it.
    ///
    /// # Panics
    /// If a backend refuses its configuration.
    pub fn pipeline(&self, config: &AwsConfig, store: Arc<dyn Store>) -> Pipeline {
        let poll = PollPolicy::default().first(Duration::from_millis(50)).max(Duration::from_millis(200));
        let stacks = Arc::new(CloudFormationStack::new(config).plan_polling(poll.clone(), Duration::from_secs(30)));
        let environment = |env: &str| {
            Environment::builder(env)
                .stack(stacks.clone(), &format!("app-{env}"))
                .image_parameter(None)
                .deployer(Arc::new(EcsDeployer::new(config, &format!("app-{env}"), env).expect("deployer")))
                .verifier(Arc::new(HttpVerifier::new().expect("verifier")))
                .build()
                .expect("environment")
        };
        let dns = Route53Dns::builder(self.zone.as_str(), RECORD)
            .record_type(RecordType::Cname)
            .ttl(Duration::from_secs(1))
            .build(config)
            .expect("dns");
        Pipeline::builder()
            .name("drill")
            .store(store)
            .lease_time(Duration::from_secs(2))
            .wait_for_lease(Duration::from_secs(60))
            .image_builder(Arc::new(CodeBuildBuilder::new(config, PROJECT, REPOSITORY).expect("builder")))
            .environment(environment("blue"))
            .environment(environment("green"))
            .dns(Arc::new(dns))
            .strategy(Strategy::BlueGreen)
            .poll_policy(poll)
            .health_check(HealthCheck::default().interval(Duration::from_millis(20)))
            .build()
            .expect("pipeline")
    }
}
