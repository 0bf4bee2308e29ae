"""Backends written in Python serving the Rust pipeline: sync and async, and one that raises."""

import asyncio
from typing import Any, Dict, List

from sendy_cd import Revision, TransientError
from sendy_cd.memory import Account
from sendy_cd.protocols import BuilderProtocol, SourceProtocol, VerifierProtocol

from conftest import simulated_pipeline


class CountingVerifier:
    """A sync verifier: every probe answers 200 and is counted."""

    def __init__(self) -> None:
        self.probes: List[str] = []

    def probe(self, url: str, request: Dict[str, Any]) -> Dict[str, Any]:
        self.probes.append(url + request["path"].lstrip("/"))
        return {"status": 200, "latency": {"secs": 0, "nanos": 3_000_000}}


class AsyncSource:
    """An async source whose branch head is set by the test."""

    def __init__(self, revision: Revision) -> None:
        self.revision = revision
        self.calls = 0

    async def latest(self, branch: str) -> Revision:
        self.calls += 1
        await asyncio.sleep(0)
        return self.revision


class BrokenBuilder:
    """A builder whose start raises."""

    def start(self, revision: Dict[str, Any]) -> str:
        raise ValueError(f"no Dockerfile in {revision['commit'][:7]}")

    def status(self, build: str) -> Dict[str, Any]:
        raise AssertionError("never started")

    def stop(self, build: str) -> None:
        pass


class FlakyVerifier(CountingVerifier):
    """Raises TransientError on its first probe: the pipeline retries it like a Rust backend's."""

    def probe(self, url: str, request: Dict[str, Any]) -> Dict[str, Any]:
        if not self.probes:
            self.probes.append("transient")
            raise TransientError("connection reset")
        return super().probe(url, request)


def test_the_protocols_describe_the_python_backends() -> None:
    assert isinstance(CountingVerifier(), VerifierProtocol)
    assert isinstance(BrokenBuilder(), BuilderProtocol)
    assert isinstance(AsyncSource(Revision("a" * 40, "main", "m", "a")), SourceProtocol)


def test_a_sync_python_verifier_checks_the_environment(account: Account) -> None:
    verifier = CountingVerifier()
    pipeline = simulated_pipeline(account, verifier=verifier)
    record = pipeline.run(account.push("main", "Checked from Python"))
    assert record.succeeded, record.to_json()
    assert len(verifier.probes) >= 4  # two consecutive successes, before and after the switch
    assert all(p.startswith("http://green.") and p.endswith("health") for p in verifier.probes)


def test_an_async_python_source_feeds_watch(account: Account) -> None:
    revision = account.push("main", "From an async source")
    source = AsyncSource(revision)
    pipeline = simulated_pipeline(account, source=source)
    records = pipeline.watch(timeout=3600.0)
    assert source.calls >= 1
    assert [r.revision.commit for r in records if r.revision] == [revision.commit]
    assert records[0].succeeded


def test_an_exception_in_a_python_backend_fails_its_stage_with_type_and_message(account: Account) -> None:
    pipeline = simulated_pipeline(account, builder=BrokenBuilder())
    revision = account.push("main", "Cannot build")
    record = pipeline.run(revision)
    assert record.outcome == "failed" and record.failed_stage == "build"
    assert record.reason is not None
    assert f"ValueError: no Dockerfile in {revision.commit[:7]}" in record.reason
    assert account.weights() == {"blue": 100, "green": 0}
    build = record.stages[0]
    assert build.outcome == "failed" and build.reason is not None and "ValueError" in build.reason


def test_a_transient_error_from_python_is_retried(account: Account) -> None:
    verifier = FlakyVerifier()
    record = simulated_pipeline(account, verifier=verifier).run(account.push("main", "Flaky probe"))
    assert record.succeeded, record.to_json()
    assert verifier.probes[0] == "transient" and len(verifier.probes) > 2


def test_a_python_backend_returning_garbage_is_a_clear_failure(account: Account) -> None:
    class Garbage(CountingVerifier):
        def probe(self, url: str, request: Dict[str, Any]) -> Dict[str, Any]:
            return {"status": "two hundred"}

    record = simulated_pipeline(account, verifier=Garbage()).run(account.push("main", "Garbage"))
    assert record.outcome == "failed" and record.failed_stage == "verify"
    assert record.reason is not None and "probe()" in record.reason and "not valid" in record.reason


class DictDns:
    """A DNS switch kept in a dict, with an async set_weights and a TTL attribute."""

    ttl = 5

    def __init__(self) -> None:
        self.w = {"blue": 100, "green": 0}
        self.changes: List[Dict[str, int]] = []

    def weights(self) -> Dict[str, int]:
        return dict(self.w)

    async def set_weights(self, split: Dict[str, int]) -> str:
        self.w = dict(split)
        self.changes.append(dict(split))
        return f"change-{len(self.changes)}"

    def change_status(self, change: str) -> str:
        return "applied"


def test_a_python_dns_switch_moves_the_traffic(account: Account) -> None:
    from sendy_cd import Pipeline, Strategy

    dns = DictDns()
    pipeline = (
        Pipeline.builder()
        .source(account.source())
        .image_builder(account.image_builder())
        .environment(account.environment("blue"))
        .environment(account.environment("green"))
        .dns(dns)
        .strategy(Strategy.canary([25, 100], bake=30.0))
        .build()
    )
    record = pipeline.run(account.push("main", "Traffic from Python"))
    assert record.succeeded, record.to_json()
    assert dns.changes == [{"blue": 75, "green": 25}, {"blue": 0, "green": 100}]
    assert record.traffic_after == {"blue": 0, "green": 100}


def test_a_python_verifier_receives_and_returns_timedeltas(account: Account) -> None:
    import datetime

    from sendy_cd import HealthCheck

    seen: List[Any] = []

    class TimedeltaVerifier:
        def probe(self, url: str, request: Dict[str, Any]) -> Dict[str, Any]:
            seen.append(request["timeout"])
            return {"status": 200, "latency": datetime.timedelta(milliseconds=7)}

    pipeline = simulated_pipeline(account, verifier=TimedeltaVerifier())
    record = pipeline.run(account.push("main", "Timedeltas"))
    assert record.succeeded, record.reason
    assert seen and all(t == datetime.timedelta(seconds=1) for t in seen), seen[:3]
    report = record.to_dict()["verifications"][0]["report"]
    assert report["latency_p50_ms"] == 7.0
