//! The AWS backends against the local emulator (moto_server). Run through `bash scripts/test`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use sendy_cd::aws::Route53Dns;
use sendy_cd::conformance::{self, DnsHarness, Patience};
use sendy_cd::wait::PollPolicy;
use sendy_cd::{DnsSwitch, Result, SetIdentifier};
use sendy_cd_tests::emulator;
use sendy_cd_tests::world::{self, World};

fn quick() -> Patience {
    let poll = PollPolicy::default().first(Duration::from_millis(50)).max(Duration::from_millis(200));
    Patience::default().poll(poll).deadline(Duration::from_secs(60))
}

/// A hosted zone with `app.sendy.test` CNAME records `blue` (weight 100) and `green` (weight 0).
async fn weighted_zone(r53: &aws_sdk_route53::Client) -> String {
    let zone =
        r53.create_hosted_zone().name("sendy.test").caller_reference(emulator::unique("zone")).send().await.unwrap();
    let zone_id = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_owned();
    let record = |id: &str, weight: i64| {
        let set = ResourceRecordSet::builder()
            .name("app.sendy.test")
            .r#type(RrType::Cname)
            .set_identifier(id)
            .weight(weight)
            .ttl(300)
            .resource_records(ResourceRecord::builder().value(format!("{id}.lb.sendy.test")).build().unwrap())
            .build()
            .unwrap();
        Change::builder().action(ChangeAction::Create).resource_record_set(set).build().unwrap()
    };
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(ChangeBatch::builder().changes(record("blue", 100)).changes(record("green", 0)).build().unwrap())
        .send()
        .await
        .unwrap();
    zone_id
}

struct Route53Harness(Arc<Route53Dns>);

#[async_trait]
impl DnsHarness for Route53Harness {
    fn dns(&self) -> Arc<dyn DnsSwitch> {
        self.0.clone()
    }
    async fn set_identifiers(&self) -> Result<(SetIdentifier, SetIdentifier)> {
        Ok((SetIdentifier::parse("blue")?, SetIdentifier::parse("green")?))
    }
    fn patience(&self) -> Patience {
        quick()
    }
    /// moto answers INSYNC for any change id; AWS answers NoSuchChange (tested in `aws_mocked`).
    fn knows_unknown_changes(&self) -> bool {
        false
    }
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn route53_dns_conforms() {
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let r53 = aws_sdk_route53::Client::new(config.sdk_config());
    let zone = weighted_zone(&r53).await;
    let dns = Route53Dns::builder(zone.as_str(), "app.sendy.test")
        .record_type(sendy_cd::aws::RecordType::Cname)
        .build(&config)
        .unwrap();
    conformance::dns(&Route53Harness(Arc::new(dns))).await;

    // Each change kept the records' targets and set the TTL to 60 s.
    let sets = r53.list_resource_record_sets().hosted_zone_id(&zone).send().await.unwrap();
    let weighted: Vec<_> = sets.resource_record_sets().iter().filter(|s| s.set_identifier().is_some()).collect();
    assert_eq!(weighted.len(), 2);
    for set in weighted {
        assert_eq!(set.ttl(), Some(60), "{set:?}");
        let id = set.set_identifier().unwrap();
        assert_eq!(set.resource_records()[0].value(), format!("{id}.lb.sendy.test"));
    }
}

const TINY_TEMPLATE: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": { "DesiredCount": { "Type": "String", "Default": "1" } },
  "Resources": {
    "Queue": { "Type": "AWS::SQS::Queue", "Properties": { "DelaySeconds": { "Ref": "DesiredCount" } } }
  },
  "Outputs": { "ServiceUrl": { "Value": "http://app.sendy.test/" } }
}"#;

struct CfnHarness(Arc<sendy_cd::aws::CloudFormationStack>, aws_sdk_cloudformation::Client);

#[async_trait]
impl conformance::StackHarness for CfnHarness {
    fn stack(&self) -> Arc<dyn sendy_cd::Stack> {
        self.0.clone()
    }
    /// Created with CreateStack: moto leaves a stack created through a change set without outputs.
    async fn existing(&self) -> Result<sendy_cd::StackName> {
        let name = sendy_cd::StackName::parse(emulator::unique("conformance"))?;
        self.1.create_stack().stack_name(name.as_str()).template_body(TINY_TEMPLATE).send().await.unwrap();
        Ok(name)
    }
    fn change(&self, n: u32) -> sendy_cd::StackChange {
        sendy_cd::StackChange {
            parameters: sendy_cd::StackParameters::parse([("DesiredCount", (n + 1).to_string())]).unwrap(),
            template: None,
        }
    }
    fn patience(&self) -> Patience {
        quick()
    }
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn cloudformation_stack_conforms() {
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let stack = sendy_cd::aws::CloudFormationStack::new(&config).plan_polling(quick().poll, Duration::from_secs(30));
    let cfn = aws_sdk_cloudformation::Client::new(config.sdk_config());
    conformance::stack(&CfnHarness(Arc::new(stack), cfn)).await;
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn cloudformation_creates_a_stack_through_a_create_change_set() {
    use sendy_cd::{Plan, PlanKind, Stack, StackChange, StackName, StackParameters, StackStatus};
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let stack = sendy_cd::aws::CloudFormationStack::new(&config).plan_polling(quick().poll, Duration::from_secs(30));
    let name = StackName::parse("created-by-plan").unwrap();
    let change = StackChange {
        parameters: StackParameters::parse([("DesiredCount", "1")]).unwrap(),
        template: Some(TINY_TEMPLATE.into()),
    };
    let Plan::Ready(plan) = stack.plan(&name, &change).await.unwrap() else { panic!("a create is a plan") };
    assert_eq!(plan.kind, PlanKind::Create);
    assert_eq!(plan.changes.len(), 1, "{:?}", plan.changes);
    assert_eq!(plan.changes[0].logical_id, "Queue");
    assert_eq!(plan.changes[0].action, sendy_cd::ChangeAction::Add);
    stack.apply(&plan).await.unwrap();
    assert_eq!(stack.status(&plan).await.unwrap(), StackStatus::Complete);
    // The stack now exists: the same change again is NoChanges (moto refuses the empty change set).
    assert_eq!(stack.plan(&name, &StackChange { template: None, ..change }).await.unwrap(), Plan::NoChanges);
}

/// Creates an ECR repository and a CodeBuild project, and, because the emulator runs no build, pushes
/// each revision's image itself (what `deploy/buildspec.yml` does in AWS), openly, in one place.
struct CodeBuildHarness {
    builder: Arc<sendy_cd::aws::CodeBuildBuilder>,
    config: sendy_cd::aws::AwsConfig,
}

/// CodeBuild and ECR as the end-to-end world makes them (`sendy_cd_tests::world`).
impl CodeBuildHarness {
    async fn new(config: &sendy_cd::aws::AwsConfig) -> Self {
        World::build_project(config).await;
        let builder = sendy_cd::aws::CodeBuildBuilder::new(config, world::PROJECT, world::REPOSITORY).unwrap();
        CodeBuildHarness { builder: Arc::new(builder), config: config.clone() }
    }

    /// What the buildspec's `docker push` does: an image manifest tagged with the commit id.
    async fn push_image(&self, tag: &str) {
        World::push_image(&self.config, tag).await;
    }
}

#[async_trait]
impl conformance::BuilderHarness for CodeBuildHarness {
    fn builder(&self) -> Arc<dyn sendy_cd::Builder> {
        self.builder.clone()
    }
    async fn revision(&self) -> Result<sendy_cd::Revision> {
        let commit = sendy_cd::CommitId::parse("0123456789abcdef0123456789abcdef01234567")?;
        self.push_image(commit.as_str()).await;
        Ok(sendy_cd::Revision::new(commit, sendy_cd::BranchName::default()))
    }
    fn patience(&self) -> Patience {
        quick()
    }
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn codebuild_builder_conforms() {
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    conformance::builder(&CodeBuildHarness::new(&config).await).await;
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn a_build_that_pushed_no_image_is_a_failure() {
    use sendy_cd::{BuildStatus, Builder};
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let h = CodeBuildHarness::new(&config).await;
    let commit = sendy_cd::CommitId::parse("f".repeat(40)).unwrap();
    let build = h.builder.start(&sendy_cd::Revision::new(commit, sendy_cd::BranchName::default())).await.unwrap();
    let status = h.builder.status(&build).await.unwrap();
    let BuildStatus::Failed { phase, reason } = status else { panic!("{status:?}") };
    assert_eq!(phase, "POST_BUILD");
    assert!(reason.contains("pushed no image") && reason.contains("shop/api"), "{reason}");
}

struct EcsHarness(Arc<sendy_cd::aws::EcsDeployer>);

#[async_trait]
impl conformance::DeployerHarness for EcsHarness {
    fn deployer(&self) -> Arc<dyn sendy_cd::Deployer> {
        self.0.clone()
    }
    fn images(&self) -> (sendy_cd::ImageRef, sendy_cd::ImageRef) {
        let image = |t: &str| sendy_cd::ImageRef::parse(&format!("registry.example.com/shop/api:{t}")).unwrap();
        (image("v1"), image("v2"))
    }
    async fn advance(&self, _rollout: &sendy_cd::Rollout) -> Result<()> {
        // The patched emulator completes a deployment on the read after the one that first saw it.
        Ok(())
    }
    fn patience(&self) -> Patience {
        quick()
    }
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn ecs_deployer_conforms() {
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let ecs = aws_sdk_ecs::Client::new(config.sdk_config());
    emulator::ecs_service(&ecs).await;
    let deployer = sendy_cd::aws::EcsDeployer::new(&config, "shop", "api").unwrap();
    conformance::deployer(&EcsHarness(Arc::new(deployer))).await;

    // Every revision registered is still there: nothing was deregistered.
    let listed = ecs.list_task_definitions().family_prefix("shop-api").send().await.unwrap();
    assert_eq!(listed.task_definition_arns().len(), 3, "{:?}", listed.task_definition_arns());
}

/// A commit in a real local git repository goes through the whole blue/green pipeline with every AWS
/// backend against the emulator; boto3 then checks the final state independently.
///
/// What the fixture does openly because the emulator cannot: it pushes the built image to ECR (the
/// emulator runs no build), and the emulator launcher (`tests/emulator/serve.py`) lets ECS deployments
/// complete. The environments' stacks do not manage the image (`image_parameter(None)`): the emulator
/// breaks task definitions on an image-parameter update, so the ECS deployer rolls the image out.
#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn a_commit_goes_blue_green_through_every_aws_backend() {
    use aws_sdk_cloudformation::types::Parameter;
    use sendy_cd::aws::{CloudFormationStack, EcsDeployer};
    use sendy_cd::source::git::GitSource;
    use sendy_cd::verify::http::HttpVerifier;
    use sendy_cd::{Environment, HealthCheck, Outcome, Pipeline, Source, Strategy};
    use sendy_cd_tests::{git, scratch};

    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let r53 = aws_sdk_route53::Client::new(config.sdk_config());
    let cfn = aws_sdk_cloudformation::Client::new(config.sdk_config());

    // The repository, with a commit to deploy.
    let scratch = scratch("e2e");
    let dir = scratch.path();
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch=main"]);
    git(&repo, &["commit", "--quiet", "--allow-empty", "-m", "Add the checkout page"]);

    // The account: ECR and CodeBuild, a hosted zone, and two environment stacks.
    let builds = CodeBuildHarness::new(&config).await;
    let zone = r53
        .create_hosted_zone()
        .name("sendy.test")
        .caller_reference(emulator::unique("e2e"))
        .send()
        .await
        .unwrap()
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();
    let template = include_str!("../emulator/environment.json");
    for (env, weight) in [("blue", "100"), ("green", "0")] {
        let param = |k: &str, v: &str| Parameter::builder().parameter_key(k).parameter_value(v).build();
        cfn.create_stack()
            .stack_name(format!("app-{env}"))
            .template_body(template)
            .parameters(param("Env", env))
            .parameters(param("ImageUri", "registry.example.com/shop/api:initial"))
            .parameters(param("ServiceUrl", &sendy_cd_tests::healthy_endpoint().await))
            .parameters(param("HostedZoneId", &zone))
            .parameters(param("RecordName", "app.sendy.test"))
            .parameters(param("Weight", weight))
            .send()
            .await
            .unwrap();
    }

    // The pipeline, every backend on AWS APIs.
    let stacks = Arc::new(CloudFormationStack::new(&config).plan_polling(quick().poll, Duration::from_secs(30)));
    let environment = |env: &str| {
        Environment::builder(env)
            .stack(stacks.clone(), &format!("app-{env}"))
            .image_parameter(None)
            .deployer(Arc::new(EcsDeployer::new(&config, &format!("app-{env}"), env).unwrap()))
            .verifier(Arc::new(HttpVerifier::new().unwrap()))
            .build()
            .unwrap()
    };
    let source = GitSource::new(repo.to_str().unwrap(), dir.join("cache.git")).unwrap();
    let dns = Route53Dns::builder(zone.as_str(), "app.sendy.test")
        .record_type(sendy_cd::aws::RecordType::Cname)
        .build(&config)
        .unwrap();
    let pipeline = Pipeline::builder()
        .source(Arc::new(source.clone()))
        .image_builder(builds.builder.clone())
        .environment(environment("blue"))
        .environment(environment("green"))
        .dns(Arc::new(dns))
        .strategy(Strategy::BlueGreen)
        .poll_policy(quick().poll)
        .health_check(HealthCheck::default().interval(Duration::from_millis(20)))
        .build()
        .unwrap();

    let revision = source.latest(&sendy_cd::BranchName::parse("main").unwrap()).await.unwrap();
    builds.push_image(revision.commit.as_str()).await; // what the buildspec's push does
    emulator::start_recording().await;
    let record = pipeline.run(revision.clone()).await.unwrap();
    emulator::stop_recording().await;
    // The requests of one whole blue/green execution, by operation (docs/benchmarks.md).
    let mut requests = std::collections::BTreeMap::<String, u32>::new();
    for op in emulator::recorded().await {
        *requests.entry(op).or_default() += 1;
    }
    let total: u32 = requests.values().sum();
    eprintln!("requests of one blue/green execution: {total} {requests:?}");
    assert!(!requests.contains_key("ListTasks") && !requests.contains_key("DescribeTasks"), "{requests:?}");
    let json = serde_json::to_string_pretty(&record).unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded, "{json}");
    assert!(record.is_complete(), "{json}");
    assert_eq!(record.target.as_ref().unwrap().as_str(), "green");
    let image = record.image.as_ref().unwrap().image.clone();
    assert_eq!(image.tag(), Some(revision.commit.as_str()));
    assert!(image.digest().is_some());

    // An independent client checks what the account looks like now.
    let python = std::env::var("SENDY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let checker = concat!(env!("CARGO_MANIFEST_DIR"), "/emulator/check_e2e.py");
    let out = std::process::Command::new(python)
        .args([checker, &emulator::endpoint(), &zone, "app.sendy.test", "green", "blue", &image.to_string()])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "boto3 check failed: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn codepipeline_is_created_then_updated() {
    use sendy_cd::codepipeline::{CodePipelines, PipelineSpec};
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    // The emulator checks that the pipeline's role exists: create it (with boto3, the fixture's client).
    let python = std::env::var("SENDY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codepipeline.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let script = format!(
        "import boto3; boto3.client('iam', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='t', \
         aws_secret_access_key='t').create_role(RoleName='codepipeline', AssumeRolePolicyDocument='{trust}')",
        emulator::endpoint()
    );
    let out = std::process::Command::new(python).args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut spec = PipelineSpec {
        name: "shop-api".into(),
        role_arn: "arn:aws:iam::123456789012:role/codepipeline".into(),
        artifact_bucket: "shop-api-artifacts".into(),
        connection_arn: "arn:aws:codestar-connections:us-east-1:123456789012:connection/abc".into(),
        repository: "example/shop-api".into(),
        branch: "main".into(),
        build_project: "shop-api".into(),
        stack_name: "app-blue".into(),
        template_path: "deploy/environment.yml".into(),
        cloudformation_role_arn: "arn:aws:iam::123456789012:role/cloudformation".into(),
    };
    let pipelines = CodePipelines::new(&config);
    assert_eq!(pipelines.ensure(&spec).await.unwrap(), 1, "created");
    spec.branch = "release".into();
    assert_eq!(pipelines.ensure(&spec).await.unwrap(), 2, "updated");

    let client = aws_sdk_codepipeline::Client::new(config.sdk_config());
    let got = client.get_pipeline().name("shop-api").send().await.unwrap();
    let declaration = got.pipeline().unwrap();
    let providers: Vec<_> = declaration
        .stages()
        .iter()
        .map(|s| (s.name().to_owned(), s.actions()[0].action_type_id().unwrap().provider().to_owned()))
        .collect();
    assert_eq!(
        providers,
        [
            ("Source".to_owned(), "CodeStarSourceConnection".to_owned()),
            ("Build".to_owned(), "CodeBuild".to_owned()),
            ("Deploy".to_owned(), "CloudFormation".to_owned())
        ]
    );
    let source = &declaration.stages()[0].actions()[0];
    assert_eq!(source.configuration().unwrap().get("BranchName").map(String::as_str), Some("release"));

    spec.repository = "no-slash".into();
    assert!(matches!(pipelines.ensure(&spec).await, Err(sendy_cd::Error::InvalidConfig(_))));
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn provisioning_creates_what_is_missing_once() {
    use sendy_cd::aws::provision::{BUILDSPEC, ProjectSpec, Provisioner};
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let provisioner = Provisioner::new(&config);
    let spec = ProjectSpec {
        name: "shop-api".into(),
        source_url: "https://github.com/example/shop-api.git".into(),
        service_role_arn: "arn:aws:iam::123456789012:role/codebuild".into(),
        buildspec: BUILDSPEC.into(),
    };
    let uri = provisioner.ecr_repository("shop/api").await.unwrap();
    assert!(uri.ends_with("/shop/api"), "{uri}");
    assert!(provisioner.codebuild_project(&spec).await.unwrap(), "created");
    let zone = provisioner.hosted_zone("shop.example.com").await.unwrap();

    // Again: nothing new.
    assert_eq!(provisioner.ecr_repository("shop/api").await.unwrap(), uri);
    assert!(!provisioner.codebuild_project(&spec).await.unwrap(), "already there");
    assert_eq!(provisioner.hosted_zone("shop.example.com.").await.unwrap(), zone);

    let ecr = aws_sdk_ecr::Client::new(config.sdk_config());
    assert_eq!(ecr.describe_repositories().send().await.unwrap().repositories().len(), 1);
    let codebuild = aws_sdk_codebuild::Client::new(config.sdk_config());
    let projects = codebuild.batch_get_projects().names("shop-api").send().await.unwrap();
    let project = &projects.projects()[0];
    assert_eq!(project.source().and_then(|s| s.buildspec()), Some(BUILDSPEC));
    assert_eq!(project.environment().and_then(|e| e.privileged_mode()), Some(true));
    let r53 = aws_sdk_route53::Client::new(config.sdk_config());
    assert_eq!(r53.list_hosted_zones().send().await.unwrap().hosted_zones().len(), 1);

    let incomplete = ProjectSpec { service_role_arn: "codebuild".into(), ..spec };
    assert!(matches!(provisioner.codebuild_project(&incomplete).await, Err(sendy_cd::Error::InvalidConfig(_))));
}

/// Hostile values given to every AWS backend's constructor, and to a pipeline of AWS backends: each
/// builds or is refused with a typed error, and the refused ones sent nothing, as the emulator's
/// recorder shows (it is first shown to record a request, so an empty recording means something).
#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn refused_aws_configurations_send_no_request() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    use sendy_cd::aws::{CloudFormationStack, CodeBuildBuilder, EcsDeployer, RecordType};
    use sendy_cd::{Environment, Error, Pipeline, StackDeployer};

    let _guard = emulator::acquire().await;
    let config = emulator::config().await;
    // The recorder sees a request that is sent.
    emulator::start_recording().await;
    let probe = Route53Dns::new(&config, "ZPROBE", "app.sendy.test").unwrap();
    let _ = probe.weights().await;
    emulator::stop_recording().await;
    assert_eq!(emulator::recorded().await, ["ListResourceRecordSets"]);

    let text = prop_oneof![
        Just(String::new()),
        Just("x".repeat(100_000)),
        Just("Z1".to_owned()),
        Just("app-blue".to_owned()),
        Just("shop.example.com".to_owned()),
        ".{0,40}",
        "[a-zA-Z0-9.:/_-]{0,40}",
    ];
    let ttl =
        prop_oneof![Just(Duration::ZERO), Just(Duration::MAX), (0u64..5_000_000_000).prop_map(Duration::from_secs)];
    let strategy = (text.clone(), text.clone(), text.clone(), text, ttl);
    let mut runner = TestRunner::new_with_rng(
        Config { cases: 128, ..Config::default() },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    emulator::start_recording().await;
    let (refused, built) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    runner
        .run(&strategy, |(a, b, c, d, ttl)| {
            let typed = |e: &Error| matches!(e, Error::InvalidConfig(_) | Error::InvalidInput(_));
            let mut outcomes = vec![
                Route53Dns::builder(a.as_str(), b.as_str())
                    .ttl(ttl)
                    .record_type(RecordType::Cname)
                    .build(&config)
                    .err(),
                CodeBuildBuilder::new(&config, &a, &b).err(),
                EcsDeployer::new(&config, &c, &d).err(),
                StackDeployer::new(
                    CloudFormationStack::new(&config),
                    &c,
                    EcsDeployer::new(&config, "shop", "api").unwrap(),
                )
                .err(),
            ];
            // A pipeline of AWS backends with the hostile values where it takes them.
            let environment = |name: &str| {
                Environment::builder(name)
                    .stack(CloudFormationStack::new(&config), &c)
                    .url_output(&d)
                    .deployer(EcsDeployer::new(&config, "shop", "api").unwrap())
                    .verifier(sendy_cd::verify::http::HttpVerifier::new().unwrap())
                    .build()
            };
            let pipeline = match (environment(&a), environment("green")) {
                (Ok(blue), Ok(green)) => Pipeline::builder()
                    .image_builder(CodeBuildBuilder::new(&config, "shop-api", "shop/api").unwrap())
                    .environment(blue)
                    .environment(green)
                    .dns(Route53Dns::new(&config, "Z1", "app.sendy.test").unwrap())
                    .branch(&b)
                    .build()
                    .err(),
                (Err(e), _) | (_, Err(e)) => Some(e),
            };
            outcomes.push(pipeline);
            for e in outcomes {
                match e {
                    Some(e) => {
                        prop_assert!(typed(&e), "{e:?}");
                        prop_assert!(e.to_string().len() < 1_000, "{}", e.to_string().len());
                        refused.set(refused.get() + 1);
                    }
                    None => built.set(built.get() + 1),
                }
            }
            Ok(())
        })
        .unwrap();
    emulator::stop_recording().await;
    let sent = emulator::recorded_maybe_none().await;
    let (refused, built) = (refused.get(), built.get());
    eprintln!("AWS configurations refused: {refused}, built: {built}, requests sent: {}", sent.len());
    assert!(refused > 100 && built > 50, "the values reach both sides: {refused} refused, {built} built");
    assert!(sent.is_empty(), "{sent:?}");
}

/// The ECS deployer's failure and supersession paths against the wire format: the fixture fails a
/// rollout when the service is tagged `sendy-fixture:rollout=fail` (see `tests/emulator/serve.py`),
/// and another client's UpdateService supersedes one; a rollout stays in progress for the reads the
/// fixture is told (`SENDY_EMULATOR_ECS_READS`, 2), whoever reads.
#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn ecs_rollouts_fail_and_are_superseded_on_the_wire() {
    use sendy_cd::{Deployer, ImageRef, RolloutStatus};
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let ecs = aws_sdk_ecs::Client::new(config.sdk_config());
    let first_td = emulator::ecs_service(&ecs).await;
    let deployer = sendy_cd::aws::EcsDeployer::new(&config, "shop", "api").unwrap();
    let image = |t: &str| ImageRef::parse(&format!("registry.example.com/shop/api:{t}")).unwrap();

    // In progress for two reads after it was created, then completed.
    let one = deployer.deploy(&image("v1")).await.unwrap();
    let mut seen = vec![];
    for _ in 0..3 {
        seen.push(std::mem::discriminant(&deployer.status(&one).await.unwrap()));
    }
    let in_progress = std::mem::discriminant(&RolloutStatus::InProgress { running: 0, desired: 0, failed: 0 });
    let completed = std::mem::discriminant(&RolloutStatus::Completed { running: 0, desired: 0 });
    assert_eq!(seen, [in_progress, in_progress, completed]);

    // Failed by the fixture hook: the circuit breaker's reason, every task failed.
    let two = deployer.deploy(&image("v2")).await.unwrap();
    let arn = ecs.describe_services().cluster("shop").services("api").send().await.unwrap().services()[0]
        .service_arn()
        .unwrap()
        .to_owned();
    let tag = aws_sdk_ecs::types::Tag::builder().key("sendy-fixture:rollout").value("fail").build();
    ecs.tag_resource().resource_arn(&arn).tags(tag).send().await.unwrap();
    match deployer.status(&two).await.unwrap() {
        RolloutStatus::Failed { reason, rolled_back: false, failed } => {
            assert!(reason.contains("circuit breaker"), "{reason}");
            assert_eq!(failed, 2);
        }
        other => panic!("{other:?}"),
    }

    // Superseded by another client's UpdateService while it rolls out.
    let three = deployer.deploy(&image("v3")).await.unwrap();
    ecs.update_service().cluster("shop").service("api").task_definition(&first_td).send().await.unwrap();
    match deployer.status(&three).await.unwrap() {
        RolloutStatus::Superseded { by } => assert_ne!(by, three.deployment_id),
        other => panic!("{other:?}"),
    }
}

/// `notify::EventBridgeSink` on the emulator: the events a pipeline emits are put on the default bus,
/// and a rule on `source: sendy-cd` delivers them to an SQS queue (created and read with boto3, the
/// fixture's own client), each with its kind as `detail-type` and the event as `detail`.
#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn eventbridge_sink_puts_events_a_rule_can_route() {
    use sendy_cd::EventSink;
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let python = std::env::var("SENDY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let client = |service: &str| {
        format!(
            "boto3.client('{service}', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='t', \
             aws_secret_access_key='t')",
            emulator::endpoint()
        )
    };
    let setup = format!(
        "import boto3, json\nsqs = {}\nev = {}\nq = sqs.create_queue(QueueName='sendy-events')['QueueUrl']\n\
         arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=['QueueArn'])['Attributes']['QueueArn']\n\
         ev.put_rule(Name='sendy', EventPattern=json.dumps({{'source': ['sendy-cd']}}))\n\
         ev.put_targets(Rule='sendy', Targets=[{{'Id': 'q', 'Arn': arn}}])\n",
        client("sqs"),
        client("events")
    );
    let out = std::process::Command::new(&python).args(["-c", &setup]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let sink = sendy_cd::notify::EventBridgeSink::new(&config, "shop", None, None).unwrap();
    let events: Vec<sendy_cd::Event> = [
        r#"{"execution": "exec-1-0123456", "elapsed_ms": 0, "event": "stage_started", "stage": "build", "environment": null}"#,
        r#"{"execution": "exec-1-0123456", "elapsed_ms": 9, "event": "execution_finished", "duration_ms": 9, "outcome": {"status": "succeeded"}}"#,
    ]
    .iter()
    .map(|j| serde_json::from_str(j).unwrap())
    .collect();
    for e in &events {
        sink.on_event(e);
    }
    for _ in 0..200 {
        if sink.delivered() + sink.failed() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!((sink.delivered(), sink.failed()), (2, 0));

    let read = format!(
        "import boto3, json\nsqs = {}\nq = sqs.get_queue_url(QueueName='sendy-events')['QueueUrl']\nbodies = []\n\
         for _ in range(5):\n    r = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10)\n    \
         bodies += [json.loads(m['Body']) for m in r.get('Messages', [])]\n    \
         if len(bodies) >= 2: break\nprint(json.dumps(bodies))\n",
        client("sqs")
    );
    let out = std::process::Command::new(&python).args(["-c", &read]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bodies: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = bodies.iter().map(|b| b["detail-type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["stage_started", "execution_finished"], "{bodies:?}");
    assert!(bodies.iter().all(|b| b["source"] == "sendy-cd" && b["detail"]["pipeline"] == "shop"));
    assert_eq!(bodies[1]["detail"]["event"]["outcome"]["status"], "succeeded");
}
