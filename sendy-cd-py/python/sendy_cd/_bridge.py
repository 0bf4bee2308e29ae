"""What the native module needs from Python: JSON encoding of backend results, and running the
coroutines that backends written in Python return. Internal."""

import json
from typing import Any, Dict, Optional


def _default(o: Any) -> Any:
    to_dict = getattr(o, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    import datetime

    if isinstance(o, datetime.timedelta):  # serde's form of a Rust Duration
        return {"secs": o.days * 86400 + o.seconds, "nanos": o.microseconds * 1000}
    if isinstance(o, datetime.datetime):
        return o.isoformat()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    return json.dumps(value, default=_default)


def _durations(d: Dict[str, Any]) -> Any:
    # serde's form of a Rust Duration, exactly: {"secs": int, "nanos": int}.
    if len(d) == 2 and isinstance(d.get("secs"), int) and isinstance(d.get("nanos"), int):
        import datetime

        return datetime.timedelta(seconds=d["secs"], microseconds=d["nanos"] // 1000)
    return d


def loads_arguments(text: str) -> Any:
    """A backend method's argument from its JSON: durations become `datetime.timedelta`."""
    return json.loads(text, object_hook=_durations)


def resolve(result: Any, loop: Optional[Any]) -> Any:
    """The value of `result`, awaiting it if it is awaitable: on `loop` (the event loop of the `_async`
    call being served) when it runs, else on a private loop. Called on a worker thread."""
    import inspect

    if not inspect.isawaitable(result):
        return result
    import asyncio

    async def wait() -> Any:
        return await result

    if loop is not None and loop.is_running():
        return asyncio.run_coroutine_threadsafe(wait(), loop).result()
    return asyncio.run(wait())
