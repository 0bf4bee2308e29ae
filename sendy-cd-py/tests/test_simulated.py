"""The simulated account from Python: blue/green, canary rollback, faults, records and events."""

import json
import threading
from typing import Any, List

import pytest

import sendy_cd
from sendy_cd import Event, ExecutionRecord, Pipeline, Strategy
from sendy_cd.memory import Account

from conftest import simulated_pipeline


def test_blue_green_moves_traffic_to_the_new_environment(account: Account) -> None:
    pipeline = simulated_pipeline(account)
    assert pipeline.simulated and pipeline.environments == ["blue", "green"]
    revision = account.push("main", "Add the checkout page", "Ada <ada@example.com>")
    record = pipeline.run(revision)

    assert record.succeeded and record.outcome == "succeeded" and record.is_complete()
    assert record.target == "green" and record.previous == "blue"
    assert account.weights() == {"blue": 0, "green": 100}
    assert record.traffic_before == {"blue": 100, "green": 0}
    assert record.traffic_after == {"blue": 0, "green": 100}
    image = record.image
    assert image is not None and revision.commit in image
    assert account.serving("green") == image
    assert [s.stage for s in record.stages] == ["build", "stack", "rollout", "verify", "traffic", "verify"]
    assert all(s.outcome == "succeeded" and s.duration_ms is not None for s in record.stages)
    # Realistic simulated durations (minutes), run on the simulated clock.
    assert record.duration_ms is not None and record.duration_ms > 5 * 60 * 1000
    assert account.elapsed() > 5 * 60


def test_records_are_typed_and_round_trip_through_json(account: Account) -> None:
    pipeline = simulated_pipeline(account)
    record = pipeline.run(account.push("main", "One"))
    d = record.to_dict()
    assert d["outcome"] == {"status": "succeeded"} and d["kind"] == "deploy" and d["schema_version"] == 2
    assert d["revision"] is not None and d["revision"]["message"] == "One"
    back = ExecutionRecord.from_json(record.to_json())
    assert back.to_dict() == d
    assert json.loads(record.to_json()) == d
    assert record.revision is not None and record.revision.to_dict()["commit"] == record.revision.commit
    last = pipeline.last_record()
    assert last is not None and last.id == record.id
    second = pipeline.run(account.push("main", "Two"))
    metrics = {m["metric"] for m in second.compare(record)}
    assert metrics == {
        "build duration (ms)",
        "stack duration (ms)",
        "rollout duration (ms)",
        "verify duration (ms)",
        "traffic duration (ms)",
        "health p50 latency (ms)",
        "health error rate",
    }
    assert [r.id for r in pipeline.history()] == [record.id, second.id]


def test_a_canary_that_fails_under_traffic_goes_back(account: Account) -> None:
    pipeline = simulated_pipeline(account, Strategy.canary([10, 50, 100], bake=60.0))
    revision = account.push("main", "Break search under load")
    account.set_behavior(revision.commit, health="unhealthy_under_traffic")
    record = pipeline.run(revision)

    assert record.outcome == "failed" and not record.succeeded
    # The check at 10 % fails (users reached the canary); nothing went further.
    assert record.failed_stage == "verify"
    phases = [(v["phase"], v["passed"]) for v in record.to_dict()["verifications"]]
    assert phases == [("before traffic", True), ("canary 10%", False)]
    assert record.recovery == {"action": "traffic_restored", "to": "blue"}
    assert account.weights() == {"blue": 100, "green": 0}
    assert record.is_complete()


def test_an_injected_build_failure_fails_the_build_stage_and_changes_nothing(account: Account) -> None:
    pipeline = simulated_pipeline(account)
    account.inject("build_start", "fail")
    record = pipeline.run(account.push("main", "Doomed"))
    assert record.failed_stage == "build"
    assert record.reason
    assert account.weights() == {"blue": 100, "green": 0}
    assert account.calls("build_start") >= 1
    account.clear_faults()
    assert pipeline.run(account.push("main", "Fine")).succeeded


def test_transient_faults_are_retried(account: Account) -> None:
    pipeline = simulated_pipeline(account)
    account.inject("dns_set_weights", "transient", times=2)
    assert pipeline.run(account.push("main", "Flaky DNS")).succeeded
    assert account.calls("dns_set_weights") >= 3


def test_switch_back_and_redeploy(account: Account) -> None:
    pipeline = simulated_pipeline(account)
    first = pipeline.run(account.push("main", "One"))
    assert account.weights()["green"] == 100
    back = pipeline.switch_back()
    assert back.kind == "switch_back" and back.succeeded
    assert account.weights() == {"blue": 100, "green": 0}
    assert first.revision is not None
    again = pipeline.redeploy(first.revision.commit)
    assert again.kind == "redeploy" and again.succeeded


def test_watch_deploys_each_new_revision_once(account: Account) -> None:
    pipeline = simulated_pipeline(account)
    account.push("main", "One")
    records = pipeline.watch(timeout=3600.0)
    assert [r.revision.message for r in records if r.revision] == ["One"]


def test_events_reach_a_callback_and_an_execution_iterator(account: Account) -> None:
    seen: List[Any] = []
    pipeline = simulated_pipeline(account, sink=seen.append)
    execution = pipeline.start(account.push("main", "Watched"))
    kinds = [e.kind for e in execution]
    record = execution.result()
    assert execution.done() and record.succeeded
    assert kinds[0] == "execution_started" and kinds[-1] == "execution_finished"
    assert "stage_started" in kinds and "traffic_shifted" in kinds
    assert [e.kind for e in seen] == kinds
    assert all(isinstance(e, Event) and e.execution == record.id for e in seen)
    started = [e for e in seen if e.kind == "stage_started"]
    assert started[0].stage == "build" and started[1].environment == "green"
    assert json.loads(started[0].to_json()) == started[0].to_dict()


def test_subscribe_streams_events_to_another_thread(account: Account) -> None:
    pipeline = simulated_pipeline(account)
    stream = pipeline.subscribe()
    got: List[Any] = []

    def read() -> None:
        for event in stream:
            got.append(event.kind)
            if event.kind == "execution_finished":
                return

    reader = threading.Thread(target=read)
    reader.start()
    pipeline.run(account.push("main", "Streamed"))
    reader.join(timeout=10)
    assert not reader.is_alive() and got[-1] == "execution_finished"


def test_a_callback_that_raises_does_not_stop_the_pipeline(account: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    reported: List[Any] = []
    monkeypatch.setattr("sys.unraisablehook", lambda u: reported.append(u.exc_value))

    def bad(event: Event) -> None:
        raise RuntimeError("sink bug")

    pipeline = simulated_pipeline(account, sink=bad)
    record = pipeline.run(account.push("main", "Still fine"))
    assert record.succeeded
    assert reported and all(isinstance(e, RuntimeError) and str(e) == "sink bug" for e in reported)


def test_the_package_mirrors_the_rust_api() -> None:
    assert sendy_cd.__version__
    assert "build_start" in Account.operations() and "probe" in Account.operations()
    assert Strategy.canary().name == "canary" and Strategy.all_at_once().name == "all_at_once"
    assert isinstance(Pipeline.builder(), sendy_cd.PipelineBuilder)
    from sendy_cd.aws import HttpVerifier

    assert repr(Account().image_builder()) == "<Builder (simulated)>"
    assert repr(HttpVerifier()) == "<Verifier (live)>"


def test_the_simulated_durations_are_configurable() -> None:
    from sendy_cd import InvalidInputError
    from sendy_cd.memory import SimConfig

    account = Account(SimConfig(build_duration=60.0, stack_duration=10.0, domain="shop.sim"))
    assert account.config.build_duration == 60.0 and account.config.domain == "shop.sim"
    account.create_environment("blue")
    account.create_environment("green")
    record = simulated_pipeline(account).run(account.push("main", "Quick build"))
    build = record.stages[0]
    assert record.succeeded and build.stage == "build"
    assert build.duration_ms is not None and 60_000 <= build.duration_ms < 90_000
    with pytest.raises(InvalidInputError):
        SimConfig(jitter=2.0)


def test_the_old_builder_names_still_work_and_warn(account: Account) -> None:
    import warnings

    from sendy_cd import Pipeline

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        builder = account.builder()
        b = Pipeline.builder().builder(builder)
    assert [str(w.message) for w in caught] == [
        "Account.builder() is renamed image_builder()",
        "PipelineBuilder.builder() is renamed image_builder()",
    ]
    assert all(w.category is DeprecationWarning for w in caught)
    assert b is not None


def test_events_carry_typed_properties_and_their_kinds_are_listed(account: Account) -> None:
    import re
    from pathlib import Path

    from sendy_cd import Event

    # Event.kinds() lists every variant of EventKind (events.rs), in snake case.
    source = (Path(__file__).parents[2] / "sendy-cd" / "src" / "events.rs").read_text()
    body = source[source.index("pub enum EventKind {") : source.index("\n}\n", source.index("pub enum EventKind {"))]
    variants = re.findall(r"^    ([A-Z]\w+) \{", body, flags=re.M)
    snake = [re.sub(r"(?<!^)([A-Z])", r"_\1", v).lower() for v in variants]
    assert sorted(snake) == sorted(Event.kinds())
    # The stubs' `_EventKind` Literal lists the same kinds.
    stub = (Path(__file__).parents[1] / "python" / "sendy_cd" / "_sendy_cd.pyi").read_text()
    literal = stub[stub.index("_EventKind = Literal[") : stub.index("]", stub.index("_EventKind = Literal["))]
    assert sorted(re.findall(r'"(\w+)"', literal)) == sorted(Event.kinds())

    events: List[Any] = []
    pipeline = simulated_pipeline(account, sink=events.append)
    record = pipeline.run(account.push("main", "Typed events"))
    assert record.succeeded
    assert {e.kind for e in events} <= set(Event.kinds())
    started = events[0]
    assert started.kind == "execution_started" and started.revision is not None
    assert started.revision.message == "Typed events"
    shifted = [e for e in events if e.kind == "traffic_shifted"]
    assert shifted and shifted[-1].weights == {"blue": 0, "green": 100}
    steps = [e for e in events if e.kind == "step_finished"]
    assert steps and all(e.step and e.outcome == "done" for e in steps)
    stage_done = [e for e in events if e.kind == "stage_finished"]
    assert all(e.duration_ms is not None and e.outcome == "succeeded" for e in stage_done)
    finished = events[-1]
    assert finished.kind == "execution_finished" and finished.outcome == "succeeded" and finished.reason is None


def test_records_give_durations_as_timedeltas_too(account: Account) -> None:
    import datetime

    record = simulated_pipeline(account).run(account.push("main", "Durations"))
    assert record.duration_ms is not None
    assert record.duration == datetime.timedelta(milliseconds=record.duration_ms)
    build = record.stages[0]
    assert build.duration_ms is not None
    assert build.duration == datetime.timedelta(milliseconds=build.duration_ms)
