"""ECS-managed traffic from Python: the simulated account's managed service (ECS's own CANARY
between two target groups), each PAUSE hook decided by the pipeline's checks, and the AWS deployer's
checks of its settings."""

import math
from typing import Any, Dict, List

import pytest

from sendy_cd import (
    Analysis,
    Deployer,
    InvalidConfigError,
    InvalidInputError,
    ManagedDeployer,
    Pipeline,
    Strategy,
)
from sendy_cd.memory import Account
from sendy_cd.protocols import MetricRequest, Series


def managed_pipeline(account: Account, metrics: Any, analysis: Analysis) -> Pipeline:
    return (
        Pipeline.builder()
        .image_builder(account.image_builder())
        .environment(account.managed_environment("shop").build())
        .metrics(metrics)
        .strategy(Strategy.ecs_managed(analysis=analysis))
        .seed(5)
        .build()
    )


@pytest.fixture
def shop() -> Account:
    account = Account()
    account.create_managed_service("shop")
    return account


def hooks(record: Any) -> List[Any]:
    return [(h["stage"], h["production_percent"], h["action"]) for h in record.to_dict()["managed"]["hooks"]]


def test_a_healthy_revision_goes_through_and_a_slow_one_is_rolled_back_by_ecs(shop: Account) -> None:
    kinds: List[str] = []
    pipeline = (
        Pipeline.builder()
        .image_builder(shop.image_builder())
        .environment(shop.managed_environment("shop").build())
        .metrics(shop.metrics(200.0))
        .strategy(Strategy.ecs_managed(analysis=Analysis()))
        .sink(lambda event: kinds.append(event.kind))
        .seed(5)
        .build()
    )
    before = shop.managed_serving("shop")
    good = shop.push("main", "Index the orders table")
    record = pipeline.run(good)
    assert record.outcome == "succeeded" and record.strategy == "ecs_managed"
    assert hooks(record) == [
        ("POST_TEST_TRAFFIC_SHIFT", 0, "continue"),
        ("PRE_PRODUCTION_TRAFFIC_SHIFT", 0, "continue"),
        ("PRE_PRODUCTION_TRAFFIC_SHIFT", 10, "continue"),
        ("POST_PRODUCTION_TRAFFIC_SHIFT", 100, "continue"),
    ]
    managed = record.to_dict()["managed"]
    assert managed["state"] == "SUCCESSFUL" and managed["revision_after"] not in managed["revisions_before"]
    serving = shop.managed_serving("shop")
    assert serving is not None and serving != before and good.commit in serving
    assert kinds.count("hook_decided") == 4 and kinds.count("managed_stage") >= 8, kinds

    slow = shop.push("main", "Fetch prices one by one")
    shop.set_behavior(slow.commit, latency_p99_ms=600.0)
    record = pipeline.run(slow)
    assert record.outcome == "failed" and record.failed_stage == "traffic"
    assert hooks(record)[-1] == ("PRE_PRODUCTION_TRAFFIC_SHIFT", 10, "rollback")
    assert record.to_dict()["managed"]["state"] == "ROLLBACK_SUCCESSFUL"
    assert record.recovery is not None and record.recovery["action"] == "service_rolled_back"
    assert shop.managed_serving("shop") == serving, "the healthy revision serves again"
    assert shop.calls("deployment_stop") == 0


def test_a_metric_source_written_in_python_judges_the_two_target_groups(shop: Account) -> None:
    seen: List[List[str]] = []

    class Worse:
        """The new revision's target group errs at 5 %, the old one's at 1 %."""

        def fetch(self, request: MetricRequest) -> List[Series]:
            seen.append(request["environments"])
            out: List[Series] = []
            for env in request["environments"]:
                rate = 0.05 if env == request["environments"][-1] else 0.01
                for measure in request["measures"]:
                    value = {"error_rate": rate, "requests": 1000.0}.get(str(measure), 100.0)
                    out.append({"environment": env, "measure": measure, "values": [value] * request["periods"]})
            return out

    record = managed_pipeline(shop, Worse(), Analysis()).run(shop.push("main", "Leaky"))
    assert record.outcome == "failed"
    assert seen and all(envs == ["shop-blue", "shop-green"] for envs in seen), seen
    analyses: List[Dict[str, Any]] = record.to_dict()["analyses"]
    assert [(a["environment"], a["baseline"], a["phase"]) for a in analyses] == [
        ("shop-green", "shop-blue", "production 10%")
    ]
    assert not math.isnan(analyses[0]["judgement"]["score"])


def test_bad_settings_are_refused_before_any_call(shop: Account) -> None:
    with pytest.raises(InvalidInputError):
        shop.create_managed_service("other", shift="rolling")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        shop.create_managed_service("other", timeout_action="wait")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError):
        shop.create_managed_service("other", percent=0)
    with pytest.raises(InvalidConfigError):
        shop.create_managed_service("other", pause_hooks=["PRODUCTION_TRAFFIC_SHIFT"])
    shop.create_environment("blue")
    with pytest.raises(InvalidConfigError, match="exactly one environment"):
        (
            Pipeline.builder()
            .image_builder(shop.image_builder())
            .environment(shop.managed_environment("shop").build())
            .environment(shop.environment("blue"))
            .strategy(Strategy.ecs_managed())
            .build()
        )
    with pytest.raises(InvalidConfigError, match="managed deployer"):
        Pipeline.builder().image_builder(shop.image_builder()).environment(shop.environment("blue")).strategy(
            Strategy.ecs_managed()
        ).build()
    assert sum(shop.calls(op) for op in Account.operations()) == 0
    d = shop.managed_deployer("shop")
    assert isinstance(d, ManagedDeployer) and isinstance(d, Deployer)


def test_the_aws_deployer_checks_its_settings() -> None:
    from sendy_cd.aws import AwsConfig, EcsManagedDeployer

    config = AwsConfig.load(region="us-east-1", endpoint="http://127.0.0.1:9")
    hooks = EcsManagedDeployer.pipeline_hooks()
    assert hooks == ["POST_TEST_TRAFFIC_SHIFT", "PRE_PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"]
    d = EcsManagedDeployer(
        config,
        "shop",
        "api",
        target_groups={"shop-blue": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/blue/1"},
        pause_hooks=hooks,
        hook_timeout=1800,
    )
    assert isinstance(d, ManagedDeployer)
    with pytest.raises(InvalidConfigError):
        EcsManagedDeployer(config, "shop", "api", pause_hooks=["TEST_TRAFFIC_SHIFT"])
    with pytest.raises(InvalidConfigError):
        EcsManagedDeployer(config, "shop", "api", pause_hooks=hooks, hook_timeout=90)
    with pytest.raises(InvalidInputError):
        EcsManagedDeployer(config, "shop", "api", target_groups={"Not A Name": "arn"})
    with pytest.raises(InvalidConfigError):
        EcsManagedDeployer(config, "bad cluster!", "api")
