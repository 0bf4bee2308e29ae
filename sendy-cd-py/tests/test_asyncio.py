"""asyncio: the `_async` twins, async iteration, async Python backends on the caller's loop, and
cancellation reaching the Rust work."""

import asyncio
import threading
import time

import pytest
from typing import Any, Dict, Set

from sendy_cd import Event, LeaseHeldError
from sendy_cd.memory import Account

from conftest import simulated_pipeline


def test_run_async_and_async_iteration(account: Account) -> None:
    async def main() -> None:
        pipeline = simulated_pipeline(account)
        record = await pipeline.run_async(account.push("main", "Awaited"))
        assert record.succeeded

        execution = pipeline.start(account.push("main", "Iterated"))
        kinds = [e.kind async for e in execution]
        assert kinds[0] == "execution_started" and kinds[-1] == "execution_finished"
        assert (await execution.result_async()).succeeded

        back = await pipeline.switch_back_async()
        assert back.succeeded

    asyncio.run(main())


class LoopVerifier:
    """An async verifier that records the loop and thread its coroutine runs on."""

    def __init__(self) -> None:
        self.loops: Set[Any] = set()
        self.threads: Set[Any] = set()

    async def probe(self, url: str, request: Dict[str, Any]) -> Dict[str, Any]:
        self.loops.add(id(asyncio.get_running_loop()))
        self.threads.add(threading.get_ident())
        await asyncio.sleep(0.001)
        return {"status": 200, "latency": {"secs": 0, "nanos": 1_000_000}}


def test_async_python_backends_run_on_the_callers_event_loop(account: Account) -> None:
    verifier = LoopVerifier()

    async def main() -> int:
        pipeline = simulated_pipeline(account, verifier=verifier)
        record = await pipeline.run_async(account.push("main", "On my loop"))
        assert record.succeeded, record.to_json()
        return id(asyncio.get_running_loop())

    loop_id = asyncio.run(main())
    assert verifier.loops == {loop_id}
    assert verifier.threads == {threading.get_ident()}


def test_async_python_backends_also_work_under_a_blocking_run(account: Account) -> None:
    verifier = LoopVerifier()
    record = simulated_pipeline(account, verifier=verifier).run(account.push("main", "Private loop"))
    assert record.succeeded and verifier.loops


class SlowVerifier:
    """Probes take real time, so an execution can be cancelled while it verifies."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def probe(self, url: str, request: Dict[str, Any]) -> Dict[str, Any]:
        self.started.set()
        await asyncio.sleep(0.05)
        return {"status": 200, "latency": {"secs": 0, "nanos": 1_000_000}}


def test_cancelling_the_awaitable_cancels_and_undoes_the_execution(account: Account) -> None:
    async def main() -> None:
        verifier = SlowVerifier()
        pipeline = simulated_pipeline(account, verifier=verifier)
        task = asyncio.ensure_future(pipeline.run_async(account.push("main", "Cancelled midway")))
        await asyncio.wait_for(verifier.started.wait(), timeout=10)
        task.cancel()
        try:
            await task
            raise AssertionError("the task was not cancelled")
        except asyncio.CancelledError:
            pass
        # The Rust side stops, undoes what it changed and closes the record.
        for _ in range(200):
            record = pipeline.last_record()
            if record is not None and record.outcome != "running":
                break
            await asyncio.sleep(0.02)
        assert record is not None and record.outcome == "cancelled", record and record.to_json()
        assert record.is_complete()
        assert account.weights() == {"blue": 100, "green": 0}

    asyncio.run(main())


def test_cancelling_after_traffic_moved_sends_it_back_and_stops_the_rust_work(account: Account) -> None:
    """Cancelled once the weights moved to green: the Rust side sends all traffic back to blue, closes
    the record, and then makes no further call to the account."""

    async def main() -> None:
        verifier = SlowVerifier()
        moved = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_event(event: Event) -> None:
            if event.kind == "traffic_shifted":
                loop.call_soon_threadsafe(moved.set)

        pipeline = simulated_pipeline(account, verifier=verifier, sink=on_event)
        task = asyncio.ensure_future(pipeline.run_async(account.push("main", "Cancelled after the switch")))
        await asyncio.wait_for(moved.wait(), timeout=20)
        assert account.weights() == {"blue": 0, "green": 100}
        task.cancel()
        try:
            await task
            raise AssertionError("the task was not cancelled")
        except asyncio.CancelledError:
            pass
        record = None
        for _ in range(250):
            record = pipeline.last_record()
            if record is not None and record.outcome != "running":
                break
            await asyncio.sleep(0.02)
        assert record is not None and record.outcome == "cancelled", record and record.to_json()
        assert record.recovery == {"action": "traffic_restored", "to": "blue"}, record.recovery
        assert record.is_complete()
        assert account.weights() == {"blue": 100, "green": 0}
        # The Rust work stopped: nothing is called any more.
        ops = ("dns_set_weights", "dns_weights", "deploy", "rollback", "build_start", "build_status")
        before = {op: account.calls(op) for op in ops}
        await asyncio.sleep(0.3)
        assert {op: account.calls(op) for op in ops} == before

    asyncio.run(main())


def test_watch_async_stops_when_cancelled(account: Account) -> None:
    async def main() -> None:
        pipeline = simulated_pipeline(account)
        account.push("main", "Watched")
        records = await pipeline.watch_async(timeout=900.0)
        assert [r.succeeded for r in records] == [True]
        task = asyncio.ensure_future(pipeline.watch_async())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        # The Rust watch stops (soon after Python's task: it is told, not awaited): its lease is
        # released, and from then on the source is no longer polled and nothing is deployed.
        deadline = time.monotonic() + 10
        while True:
            try:
                record = await pipeline.run_async(account.push("main", "Run by hand"))
                break
            except LeaseHeldError:
                assert time.monotonic() < deadline, "the watch never released its lease"
                await asyncio.sleep(0.01)
        assert record.succeeded
        reads = account.calls("source_latest")
        account.push("main", "After the watch")
        await asyncio.sleep(0.3)
        assert account.calls("source_latest") == reads, "the source is no longer polled"
        assert len(pipeline.history()) == 2

    asyncio.run(main())


def test_event_stream_async_iteration(account: Account) -> None:
    async def main() -> None:
        pipeline = simulated_pipeline(account)
        stream = pipeline.subscribe()
        run = asyncio.ensure_future(pipeline.run_async(account.push("main", "Streamed")))
        kinds = []
        async for event in stream:
            assert isinstance(event, Event)
            kinds.append(event.kind)
            if event.kind == "execution_finished":
                break
        assert (await run).succeeded and kinds[0] == "execution_started"

    asyncio.run(main())


def test_asyncio_run_takes_an_async_call_directly(account: Account) -> None:
    pipeline = simulated_pipeline(account)
    record = asyncio.run(pipeline.run_async(account.push("main", "Awaited directly")))
    assert record.succeeded and record.kind == "deploy"
