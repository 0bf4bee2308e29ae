"""The AWS backends from Python, against the local emulator that the test command starts
(`SENDY_TEST_EMULATOR`). As in the Rust end-to-end test, what the emulator cannot do is done openly
here: the image is pushed to ECR by the test (the emulator runs no builds), the environment stacks use
the emulator-compatible template, and the launcher (`tests/emulator/serve.py`) completes ECS
deployments."""

import http.server
import os
import threading
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from sendy_cd import Environment, HealthCheck, Pipeline, Revision, Strategy
from sendy_cd.aws import AwsConfig, CloudFormationStack, CodeBuildBuilder, EcsDeployer, HttpVerifier, Route53Dns

ENDPOINT = os.environ.get("SENDY_TEST_EMULATOR")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    ENDPOINT is None, reason="needs the local AWS emulator: run through `bash scripts/test`"
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A freshly reset emulator, and a boto3 session on it."""
    import boto3  # type: ignore[import-untyped]

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    urllib.request.urlopen(urllib.request.Request(f"{ENDPOINT}/moto-api/reset", method="POST"))
    yield boto3.session.Session(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture
def healthy_url() -> Iterator[str]:
    """A loopback HTTP server standing in for the service (the emulator runs no containers)."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_blue_green_through_the_aws_backends(aws: Any, healthy_url: str) -> None:
    ecr, codebuild = aws.client("ecr", endpoint_url=ENDPOINT), aws.client("codebuild", endpoint_url=ENDPOINT)
    cfn, r53 = aws.client("cloudformation", endpoint_url=ENDPOINT), aws.client("route53", endpoint_url=ENDPOINT)
    ecr.create_repository(repositoryName="shop/api")
    codebuild.create_project(
        name="shop-api",
        source={"type": "GITHUB", "location": "https://github.com/example/shop-api.git"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"},
        serviceRole="arn:aws:iam::123456789012:role/codebuild",
    )
    zone = r53.create_hosted_zone(Name="sendy.test", CallerReference="py")["HostedZone"]["Id"].split("/")[-1]
    template = (ROOT / "tests/emulator/environment.json").read_text()
    for env, weight in (("blue", "100"), ("green", "0")):
        params = {"Env": env, "ImageUri": "registry.example.com/shop/api:initial", "ServiceUrl": healthy_url,
                  "HostedZoneId": zone, "RecordName": "app.sendy.test", "Weight": weight}
        cfn.create_stack(StackName=f"app-{env}", TemplateBody=template,
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])

    config = AwsConfig.load(region="us-east-1", endpoint=ENDPOINT)
    assert config.region == "us-east-1"
    stacks = CloudFormationStack(config)
    b = (
        Pipeline.builder()
        .image_builder(CodeBuildBuilder(config, "shop-api", "shop/api"))
        .dns(Route53Dns(config, zone, "app.sendy.test", record_type="CNAME", ttl=1))
        .strategy(Strategy.blue_green())
        .health_check(HealthCheck(interval=0.02))
        .name("shop-api")
        .store(dynamodb_table="sendy-state", config=config)  # created if missing
    )
    for env in ("blue", "green"):
        b = b.environment(
            Environment.builder(env)
            .stack(stacks, f"app-{env}")
            .image_parameter(None)
            .deployer(EcsDeployer(config, f"app-{env}", env))
            .verifier(HttpVerifier())
            .build()
        )
    pipeline = b.build()
    assert not pipeline.simulated
    revision = Revision("ab" * 20, "main", "Add the checkout page", "Ada <ada@example.com>")

    # What the buildspec's `docker push` does: a manifest tagged with the commit.
    manifest = ('{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
                '"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,'
                '"digest":"sha256:' + "c" * 64 + '"},"layers":[]}')
    ecr.put_image(repositoryName="shop/api", imageManifest=manifest, imageTag="ab" * 20)

    record = pipeline.run(revision)
    assert record.succeeded, record.to_json()
    # The record is in the DynamoDB table, as another runner reads it.
    assert [r.id for r in pipeline.executions()] == [record.id]
    items = aws.client("dynamodb", endpoint_url=ENDPOINT).scan(TableName="sendy-state")["Items"]
    assert any(i["sk"]["S"] == "lease" for i in items) and any(i["sk"]["S"].startswith("exec#") for i in items)
    assert record.target == "green" and record.image is not None and ("ab" * 20) in record.image

    # boto3 checks the account independently.
    sets = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    weights = {s["SetIdentifier"]: s["Weight"] for s in sets if s.get("SetIdentifier")}
    assert weights == {"blue": 0, "green": 100}
    ecs = aws.client("ecs", endpoint_url=ENDPOINT)
    service = ecs.describe_services(cluster="app-green", services=["green"])["services"][0]
    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert task["containerDefinitions"][0]["image"] == record.image
