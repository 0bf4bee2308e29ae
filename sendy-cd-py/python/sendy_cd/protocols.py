"""What a backend written in Python looks like: any object with these methods can serve as source,
builder, stack, deployer, DNS switch or verifier of a pipeline (pass it where a backend object goes).

Each method may be plain or `async`. Its arguments arrive as plain Python data, the JSON form of the
Rust types (see the shapes below), and it returns plain data of the same form, or an object with a
`to_dict()` method (such as `sendy_cd.Revision`). Durations arrive as `datetime.timedelta`; in
return values a `timedelta` or serde's `{"secs": int, "nanos": int}` is accepted. Methods run on a
worker thread; coroutines run on the event loop of the `_async` call that started the work, or on
a private loop under a blocking call.

An exception raised by a method fails that call: a `sendy_cd.TransientError` or `ThrottledError` is
retried like a Rust backend's, any other exception fails the stage with a reason that keeps the
exception's type and message (`ValueError: no such image`).
"""

import datetime
from typing import Any, Awaitable, Dict, Protocol, TypedDict, Union, runtime_checkable

Json = Dict[str, Any]
"""A JSON object, as the Rust type's serde form."""


class ProbeRequest(TypedDict):
    """What a verifier's `probe` receives."""

    path: str
    """The path to GET, such as `/health`."""
    timeout: datetime.timedelta
    """How long the request may take."""


class ProbeResponse(TypedDict):
    """What a verifier's `probe` returns."""

    status: int
    """The HTTP status."""
    latency: Union[datetime.timedelta, Dict[str, int]]
    """How long the answer took: a `timedelta`, or serde's `{"secs": int, "nanos": int}`."""


@runtime_checkable
class SourceProtocol(Protocol):
    def latest(self, branch: str) -> Union[Any, Awaitable[Any]]:
        """The newest revision of `branch`: a `Revision` or `{"commit", "branch", "message", "author",
        "time"}` (time in RFC 3339)."""
        ...


@runtime_checkable
class BuilderProtocol(Protocol):
    def start(self, revision: Json) -> Union[str, Awaitable[str]]:
        """Starts building `revision`; returns the build id."""
        ...

    def status(self, build: str) -> Union[Json, Awaitable[Json]]:
        """`{"status": "queued"}`, `{"status": "in_progress", "phase": ...}`, `{"status": "succeeded",
        "image": "registry/repo:tag@sha256:...", "digest": "sha256:...", "build": id, "commit": sha}`,
        `{"status": "failed", "phase": ..., "reason": ...}` or `{"status": "stopped"}`."""
        ...

    def stop(self, build: str) -> Union[None, Awaitable[None]]:
        """Stops the build (it is no longer wanted)."""
        ...


@runtime_checkable
class StackProtocol(Protocol):
    def plan(self, stack: str, change: Json) -> Union[Json, Awaitable[Json]]:
        """`{"plan": "no_changes"}` or `{"plan": "ready", "id", "stack", "kind": "create"|"update",
        "changes": [...]}` for `change` = `{"parameters": {...}, "template": str | None}`."""
        ...

    def apply(self, plan: Json) -> Union[None, Awaitable[None]]: ...

    def status(self, plan: Json) -> Union[Json, Awaitable[Json]]:
        """`{"state": "in_progress", "status": ...}`, `{"state": "complete"}`, `{"state": "failed"|
        "rolled_back", "resource": ..., "reason": ...}`."""
        ...

    def outputs(self, stack: str) -> Union[Dict[str, str], Awaitable[Dict[str, str]]]: ...


@runtime_checkable
class DeployerProtocol(Protocol):
    def deploy(self, image: str) -> Union[Json, Awaitable[Json]]:
        """Starts rolling out `image`; returns the rollout `{"deployment_id": id, "image": image}`."""
        ...

    def status(self, rollout: Json) -> Union[Json, Awaitable[Json]]: ...

    def revisions(self) -> Union[Json, Awaitable[Json]]: ...

    def rollback(self, to: Json) -> Union[Json, Awaitable[Json]]: ...


@runtime_checkable
class DnsSwitchProtocol(Protocol):
    def weights(self) -> Union[Dict[str, int], Awaitable[Dict[str, int]]]:
        """`{set identifier: weight}`."""
        ...

    def set_weights(self, split: Dict[str, int]) -> Union[str, Awaitable[str]]:
        """Applies `split` in one change; returns the change id."""
        ...

    def change_status(self, change: str) -> Union[str, Awaitable[str]]:
        """`"pending"` or `"applied"`."""
        ...


@runtime_checkable
class VerifierProtocol(Protocol):
    def probe(self, url: str, request: ProbeRequest) -> Union[ProbeResponse, Awaitable[ProbeResponse]]:
        """GETs `request["path"]` of `url` within `request["timeout"]` (a `timedelta`); returns
        `{"status": int, "latency": timedelta}`."""
        ...


__all__ = [
    "ProbeRequest",
    "ProbeResponse",
    "BuilderProtocol",
    "DeployerProtocol",
    "DnsSwitchProtocol",
    "Json",
    "SourceProtocol",
    "StackProtocol",
    "VerifierProtocol",
]
