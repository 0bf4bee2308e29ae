"""Canary steps judged by metric analysis, from Python: the simulated account's metrics and a
metric source written in Python."""

from typing import Any, Dict, List, Optional

import pytest

from sendy_cd import (
    AlarmSource,
    Analysis,
    InvalidConfigError,
    InvalidInputError,
    Metric,
    Pipeline,
    Strategy,
)
from sendy_cd.memory import Account
from sendy_cd.protocols import MetricRequest, MetricSourceProtocol, Series

from conftest import simulated_builder


def analysed_pipeline(account: Account, metrics: Any, analysis: Optional[Analysis] = None) -> Pipeline:
    return (
        simulated_builder(account)
        .metrics(metrics)
        .strategy(Strategy.canary([10, 50, 100], 600, analysis=analysis or Analysis()))
        .seed(3)
        .build()
    )


def test_a_slow_revision_is_caught_at_the_first_step(account: Account) -> None:
    pipeline = analysed_pipeline(account, account.metrics(200.0))
    slow = account.push("main", "Fetch prices one by one")
    account.set_behavior(slow.commit, latency_p99_ms=600.0)
    record = pipeline.run(slow)
    assert record.outcome == "failed" and record.failed_stage == "traffic"
    assert account.weights() == {"blue": 100, "green": 0}
    analyses = record.to_dict()["analyses"]
    assert [a["phase"] for a in analyses] == ["canary 10%"]
    judgement = analyses[0]["judgement"]
    assert judgement["verdict"] == "fail"
    p99 = next(m for m in judgement["metrics"] if m["measure"] == "latency_p99")
    assert p99["verdict"] == "fail" and p99["canary"]["median"] > 2 * p99["baseline"]["median"]
    assert account.calls("metrics_fetch") == judgement["intervals"]


def test_a_metric_source_written_in_python_decides(account: Account) -> None:
    class Flat:
        """Both environments alike, except the canary's error rate (the second environment asked
        for: the baseline comes first) when `broken`."""

        def __init__(self, broken: bool) -> None:
            self.broken = broken
            self.requests: List[MetricRequest] = []

        def fetch(self, request: MetricRequest) -> List[Series]:
            self.requests.append(request)
            out: List[Series] = []
            for env in request["environments"]:
                for m in request["measures"]:
                    value: Optional[float] = 200.0 if m == "latency_p99" else 0.01
                    if m == "error_rate" and env == request["environments"][1] and self.broken:
                        value = 0.05
                    out.append({"environment": env, "measure": m, "values": [value] * request["periods"]})
            return out

    good = Flat(broken=False)
    assert isinstance(good, MetricSourceProtocol)
    record = analysed_pipeline(account, good).run(account.push("main", "Fine"))
    assert record.succeeded
    assert [r["periods"] for r in good.requests] == [1, 2, 3, 1, 2, 3], "one more period per interval, two steps"
    assert all(r["environments"] == ["blue", "green"] for r in good.requests)
    assert good.requests[0]["period"].total_seconds() == 60

    bad = Flat(broken=True)
    record = analysed_pipeline(account, bad).run(account.push("main", "Broken"))
    assert record.outcome == "failed"
    assert bad.requests[0]["environments"] == ["green", "blue"], "green is live now: blue is the canary"
    judgement: Dict[str, Any] = record.to_dict()["analyses"][0]["judgement"]
    assert (judgement["verdict"], judgement["score"]) == ("fail", 0.0), "the error rate is critical"


def test_a_source_that_raises_fails_the_step_and_sends_traffic_back(account: Account) -> None:
    class Broken:
        def fetch(self, request: MetricRequest) -> List[Series]:
            raise RuntimeError("CloudWatch is down")

    record = analysed_pipeline(account, Broken()).run(account.push("main", "Any"))
    assert record.outcome == "failed"
    assert "CloudWatch is down" in (record.reason or "")
    assert account.weights() == {"blue": 100, "green": 0}


def test_bad_analysis_settings_are_refused_before_any_call(account: Account) -> None:
    with pytest.raises(InvalidInputError):
        Metric("latency_p99", "sideways")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError):
        Metric("latency_p99", tolerance=-1)
    with pytest.raises(InvalidInputError):
        Analysis(method="bayesian")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError):
        Analysis(min_intervals=20)
    with pytest.raises(InvalidConfigError):
        Analysis([])
    with pytest.raises(InvalidConfigError):
        Analysis([Metric.error_rate()], "threshold")
    with pytest.raises(InvalidConfigError):
        account.metrics(0)
    with pytest.raises(InvalidConfigError):
        account.set_behavior(account.push("main", "x").commit, error_rate=2.0)
    with pytest.raises(InvalidConfigError):
        simulated_builder(account).strategy(Strategy.canary(analysis=Analysis())).build()
    assert sum(account.calls(op) for op in Account.operations()) == 0
    a = Analysis([Metric.error_rate(), Metric("latency_p50", tolerance=0.3, weight=2)], "fixed_window")
    assert [m.measure for m in a.metrics] == ["error_rate", "latency_p50"] and a.max_intervals == 10


def test_cloudwatch_metrics_are_built_from_python_and_checked_before_any_call() -> None:
    from sendy_cd import MetricSource
    from sendy_cd.aws import AwsConfig, CloudWatchMetrics

    config = AwsConfig.load(region="us-east-1", endpoint="http://127.0.0.1:9")
    lb = "app/shop/50dc6c495c0c9188"
    source = CloudWatchMetrics(
        config,
        target_groups={"blue": (lb, "targetgroup/shop-blue/1"), "green": (lb, "targetgroup/shop-green/2")},
        metrics={("green", "checkouts"): ("Shop", "Checkouts", "Sum", {"Env": "green"})},
    )
    assert isinstance(source, MetricSource)
    with pytest.raises(InvalidConfigError):
        CloudWatchMetrics(config)
    with pytest.raises(InvalidConfigError):
        CloudWatchMetrics(config, target_groups={"blue": ("", "targetgroup/x/1")})
    with pytest.raises(InvalidConfigError):
        CloudWatchMetrics(config, metrics={("blue", "x"): ("", "M", "Sum", {})})
    with pytest.raises(InvalidInputError):
        CloudWatchMetrics(config, target_groups={"Blue!": (lb, "targetgroup/x/1")})


def test_an_alarm_firing_during_a_bake_sends_the_traffic_back(account: Account) -> None:
    fired: List[str] = []

    def fire(event: Any) -> None:
        if event.kind == "traffic_shifted" and len([w for w in (event.weights or {}).values() if w > 0]) == 2:
            account.set_alarm("checkout-5xx")
            fired.append(event.kind)

    pipeline = (
        simulated_builder(account)
        .alarms(account.alarms(), ["checkout-5xx"], interval=30)
        .strategy(Strategy.canary([10, 100], 600))
        .sink(fire)
        .build()
    )
    record = pipeline.run(account.push("main", "Breaks checkout"))
    assert fired and record.outcome == "failed"
    assert "alarm in ALARM: checkout-5xx" in (record.reason or "")
    assert account.weights() == {"blue": 100, "green": 0}
    assert account.calls("alarms_describe") == 1


def test_an_alarm_source_written_in_python_gates_the_analysis(account: Account) -> None:
    class Pager:
        def __init__(self) -> None:
            self.asked: List[List[str]] = []

        def firing(self, names: List[str]) -> List[str]:
            self.asked.append(names)
            return ["pager"] if len(self.asked) >= 2 else []

    pager = Pager()
    pipeline = (
        simulated_builder(account)
        .metrics(account.metrics())
        .alarms(pager, ["pager", "slo-burn"])
        .strategy(Strategy.canary([10, 100], 600, analysis=Analysis()))
        .build()
    )
    record = pipeline.run(account.push("main", "Pages someone"))
    assert record.outcome == "failed" and "alarm in ALARM: pager" in (record.reason or "")
    assert pager.asked == [["pager", "slo-burn"], ["pager", "slo-burn"]], "checked before each interval"
    assert account.calls("metrics_fetch") == 1, "the second check stopped it before the second fetch"
    with pytest.raises(InvalidConfigError):
        Pipeline.builder().alarms(pager, [])
    from sendy_cd.aws import AwsConfig, CloudWatchAlarms

    assert isinstance(CloudWatchAlarms(AwsConfig.load(region="us-east-1", endpoint="http://127.0.0.1:9")), AlarmSource)
