//! One blue/green deployment of a git commit through every AWS backend: CodeBuild builds the image into
//! ECR, CloudFormation and ECS roll it out on the idle environment, the service URL is tested, and
//! Route 53 moves the traffic.
//!
//! ```sh
//! # real AWS, with the standard credentials chain (environment, profile, SSO, instance role):
//! SENDY_SOURCE_URL=https://github.com/you/app.git SENDY_CODEBUILD_ROLE=arn:aws:iam::…:role/codebuild \
//!   SENDY_DOMAIN=example.com cargo run -p sendy-cd-examples --example aws_blue_green
//! # the local emulator (README: "Against the local AWS emulator"):
//! AWS_ENDPOINT_URL=http://127.0.0.1:5000 cargo run -p sendy-cd-examples --example aws_blue_green
//! ```
//!
//! When the account is empty it first creates what it needs, each only if missing: the hosted zone, the
//! ECR repository, the CodeBuild project (with the shipped buildspec) and the two environment stacks
//! (plus, on AWS, the stack of the weighted DNS records). Settings come from environment variables, all
//! optional against the emulator:
//!
//! | variable | default | |
//! |---|---|---|
//! | `SENDY_REPO` | this workspace's git repository | the git remote whose branch is deployed |
//! | `SENDY_BRANCH` | `main` | |
//! | `SENDY_APP` | `shop-api` | names the ECR repository, CodeBuild project and stacks (`<app>-blue`) |
//! | `SENDY_DOMAIN` | `sendy.test` | the hosted zone; users reach `<app>.<domain>` |
//! | `SENDY_SOURCE_URL` | `https://github.com/example/shop-api.git` | what CodeBuild checks out |
//! | `SENDY_CODEBUILD_ROLE` | (emulator: a placeholder) | the role CodeBuild assumes (required on AWS) |
//! | `SENDY_INITIAL_IMAGE` | `public.ecr.aws/nginx/nginx:stable-alpine` | what new stacks run first |
//!
//! What differs against the emulator, and is announced when it happens: the emulator runs no builds
//! and no containers, so the example pushes to ECR the image manifest the buildspec's `docker push`
//! would push, uses the emulator-compatible environment template (`tests/emulator/environment.json`,
//! the emulator cannot create the full `deploy/environment.yml`), and answers the service's health
//! checks itself on loopback. ECS deployments complete only under the launcher `tests/emulator/serve.py`.

use std::sync::Arc;
use std::time::Duration;

use sendy_cd::aws::provision::{BUILDSPEC, ProjectSpec, Provisioner};
use sendy_cd::aws::{AwsConfig, CloudFormationStack, CodeBuildBuilder, EcsDeployer, RecordType, Route53Dns};
use sendy_cd::source::git::GitSource;
use sendy_cd::verify::http::HttpVerifier;
use sendy_cd::wait::{Check, PollPolicy, poll};
use sendy_cd::{
    BranchName, DnsSwitch, Environment, Error, Outcome, Pipeline, Plan, SetIdentifier, Source, Stack, StackChange,
    StackName, StackOutputs, StackParameters, StackStatus, Strategy,
};
use sendy_cd_examples::{describe, print_event, print_record};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let emulator = std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty());
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let repo = setting("SENDY_REPO", workspace);
    let branch = BranchName::parse(setting("SENDY_BRANCH", "main"))?;
    let app = setting("SENDY_APP", "shop-api");
    let domain = setting("SENDY_DOMAIN", "sendy.test");
    let record = format!("{app}.{domain}");

    let config = match &emulator {
        // The emulator accepts any credentials: use placeholders unless some are set.
        Some(url) if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() => AwsConfig::from_sdk_config(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(setting("AWS_REGION", "us-east-1")))
                .credentials_provider(aws_sdk_ecr::config::Credentials::new("test", "test", None, None, "emulator"))
                .endpoint_url(url)
                .load()
                .await,
        ),
        _ => AwsConfig::builder().load().await?,
    };
    match &emulator {
        Some(url) => println!("account: the emulator at {url}"),
        None => println!("account: AWS, with the standard credentials chain"),
    }

    // The role CodeBuild assumes: the provisioner validates the project's spec before any call, so it
    // is needed even when the project exists already.
    let role = match (&emulator, std::env::var("SENDY_CODEBUILD_ROLE")) {
        (_, Ok(role)) => role,
        (Some(_), Err(_)) => "arn:aws:iam::123456789012:role/codebuild".to_owned(),
        (None, Err(_)) => return Err("set SENDY_CODEBUILD_ROLE to the ARN of the role CodeBuild assumes".into()),
    };

    // 1. What the pipeline needs, created only where missing.
    let provisioner = Provisioner::new(&config);
    let zone = provisioner.hosted_zone(&domain).await?;
    let repository_uri = provisioner.ecr_repository(&app).await?;
    let project = ProjectSpec {
        name: app.clone(),
        source_url: setting("SENDY_SOURCE_URL", "https://github.com/example/shop-api.git"),
        service_role_arn: role,
        buildspec: BUILDSPEC.to_owned(),
    };
    let created = provisioner.codebuild_project(&project).await?;
    println!("hosted zone {zone} ({domain}), ECR repository {repository_uri}, CodeBuild project {app}");
    if created {
        println!("  created CodeBuild project {app}");
    }

    let stacks = Arc::new(CloudFormationStack::new(&config));
    let service_url = match &emulator {
        Some(_) => {
            let url = serve_health().await?;
            println!("  the emulator runs no containers: health checks are answered on loopback at {url}");
            Some(url)
        }
        None => None,
    };
    let dns = Route53Dns::builder(zone.as_str(), record.as_str()).record_type(RecordType::Cname).build(&config)?;
    // The emulator's environment template holds its weighted record: keep the weights DNS has now, so
    // that setting up never moves traffic.
    let current = match dns.weights().await {
        Ok(split) => Some(split),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let mut outputs = Vec::new();
    for (env, first) in [("blue", 100), ("green", 0)] {
        let id = SetIdentifier::parse(env)?;
        let weight = current.as_ref().filter(|s| s.contains(&id)).map_or(first, |s| s.weight(&id)).to_string();
        let name = StackName::parse(format!("{app}-{env}"))?;
        let (template, parameters) = match &service_url {
            Some(url) => (
                include_str!("../tests/emulator/environment.json"),
                StackParameters::parse([
                    ("Env", env.to_owned()),
                    ("ImageUri", setting("SENDY_INITIAL_IMAGE", "public.ecr.aws/nginx/nginx:stable-alpine")),
                    ("ServiceUrl", url.to_string()),
                    ("HostedZoneId", zone.to_string()),
                    ("RecordName", record.to_string()),
                    ("Weight", weight),
                ])?,
            ),
            None => (
                include_str!("../deploy/environment.yml"),
                StackParameters::parse([
                    ("EnvironmentName", env.to_owned()),
                    ("ImageUri", setting("SENDY_INITIAL_IMAGE", "public.ecr.aws/nginx/nginx:stable-alpine")),
                    ("ContainerPort", "80".to_owned()),
                    ("HealthCheckPath", "/".to_owned()),
                ])?,
            ),
        };
        outputs.push(ensure_stack(stacks.as_ref(), &name, template, parameters).await?);
    }
    if emulator.is_none() {
        // On AWS the weighted records are their own stack, pointing at the two load balancers.
        let lb = |o: &StackOutputs| o.get("LoadBalancerDnsName").unwrap_or_default().to_owned();
        let parameters = StackParameters::parse([
            ("HostedZoneId", zone.to_string()),
            ("RecordName", record.to_string()),
            ("BlueLoadBalancerDnsName", lb(&outputs[0])),
            ("GreenLoadBalancerDnsName", lb(&outputs[1])),
        ])?;
        let name = StackName::parse(format!("{app}-dns"))?;
        ensure_stack(stacks.as_ref(), &name, include_str!("../deploy/dns.yml"), parameters).await?;
    }

    // 2. The pipeline: every backend on AWS APIs.
    let mut environments = Vec::new();
    for (env, out) in ["blue", "green"].into_iter().zip(&outputs) {
        let output = |key: &str| out.get(key).ok_or_else(|| format!("stack {app}-{env} has no {key} output"));
        let deployer = EcsDeployer::new(&config, output("ClusterName")?, output("ServiceName")?)?;
        environments.push(
            Environment::builder(env)
                .stack(stacks.clone(), &format!("{app}-{env}"))
                .image_parameter(None) // the ECS deployer rolls the image out; the stack keeps the infrastructure
                .deployer(Arc::new(deployer))
                .verifier(Arc::new(HttpVerifier::new()?))
                .build()?,
        );
    }
    // The source keeps a bare clone of the repository, one per remote.
    let cache = {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let key = BuildHasherDefault::<DefaultHasher>::default().hash_one(&repo);
        std::env::temp_dir().join(format!("sendy-cd-source-{key:016x}.git"))
    };
    let source = GitSource::new(&repo, cache)?;
    let builder = CodeBuildBuilder::new(&config, &app, &app)?;
    let mut pipeline = Pipeline::builder()
        .source(Arc::new(source.clone()))
        .branch(branch.as_str())
        .image_builder(Arc::new(builder))
        .dns(Arc::new(dns))
        .strategy(Strategy::BlueGreen)
        .sink(Arc::new(|event: &sendy_cd::Event| print_event(Duration::ZERO, event)));
    for environment in environments {
        pipeline = pipeline.environment(environment);
    }
    let pipeline = pipeline.build()?;

    // 3. Deploy the branch's newest commit.
    let revision = source.latest(&branch).await?;
    println!("{repo} {branch} is at {} \"{}\"", revision.commit.short(), revision.message);
    if emulator.is_some() {
        println!("  the emulator runs no builds: pushing the image the buildspec's `docker push` would push");
        push_image(&config, &app, revision.commit.as_str()).await?;
    }
    let result = pipeline.run(revision).await?;
    print_record(&result);
    println!(
        "{}: {record} now served by {}",
        describe(&result.outcome),
        result.target.as_ref().map_or("-", |t| t.as_str())
    );
    if result.outcome != Outcome::Succeeded {
        std::process::exit(1);
    }
    Ok(())
}

/// The outputs of `name`, after bringing it to `template` and `parameters` (through a change set,
/// creating the stack if it does not exist; nothing happens when it already matches).
async fn ensure_stack(
    stacks: &dyn Stack,
    name: &StackName,
    template: &str,
    parameters: StackParameters,
) -> sendy_cd::Result<StackOutputs> {
    let change = StackChange { parameters, template: Some(template.to_owned()) };
    let Plan::Ready(plan) = stacks.plan(name, &change).await? else {
        return stacks.outputs(name).await;
    };
    println!("  {:?} stack {name}: {} resource changes", plan.kind, plan.changes.len());
    stacks.apply(&plan).await?;
    let (status, _) = poll(&PollPolicy::default(), "stack change", Duration::from_secs(30 * 60), || async {
        let status = stacks.status(&plan).await?;
        Ok(if status.is_final() { Check::Ready(status) } else { Check::Pending })
    })
    .await?;
    match status {
        StackStatus::Complete => stacks.outputs(name).await,
        failed => Err(Error::StageFailed { stage: sendy_cd::Stage::Stack, reason: format!("{name}: {failed:?}") }),
    }
}

/// What the buildspec's `docker push` does, for the emulator that runs no builds: an image manifest
/// tagged with the commit id.
async fn push_image(config: &AwsConfig, repository: &str, tag: &str) -> Result<()> {
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,"digest":"sha256:{}"}},"layers":[]}}"#,
        &format!("{tag}{tag}")[..64]
    );
    let ecr = aws_sdk_ecr::Client::new(config.sdk_config());
    match ecr.put_image().repository_name(repository).image_manifest(manifest).image_tag(tag).send().await {
        Ok(_) => Ok(()),
        // Pushed by an earlier run of the example: the image is there.
        Err(e) if e.as_service_error().is_some_and(|e| e.is_image_already_exists_exception()) => Ok(()),
        Err(e) => Err(Box::new(aws_sdk_ecr::Error::from(e))),
    }
}

/// A loopback HTTP server answering 200 to every request, standing in for the service the emulator does
/// not run.
async fn serve_health() -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
            });
        }
    });
    Ok(format!("http://{addr}/"))
}
