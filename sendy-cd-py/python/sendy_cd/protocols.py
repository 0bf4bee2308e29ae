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
from typing import Any, Awaitable, Dict, List, Literal, Optional, Protocol, TypedDict, Union, runtime_checkable

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


# The JSON shapes of the Rust types a backend receives and returns (serde's forms).

class RevisionDict(TypedDict):
    """A revision: full commit id, branch, first line and body of the message, author, RFC 3339 time."""

    commit: str
    branch: str
    message: str
    author: str
    time: str


class BuildQueued(TypedDict):
    status: Literal["queued"]


class BuildInProgress(TypedDict):
    status: Literal["in_progress"]
    phase: str


class BuildSucceeded(TypedDict):
    """The image as `registry/repo:tag@sha256:...`, its digest, the build id and the commit."""

    status: Literal["succeeded"]
    image: str
    digest: str
    build: str
    commit: str


class BuildFailed(TypedDict):
    status: Literal["failed"]
    phase: str
    reason: str


class BuildStopped(TypedDict):
    status: Literal["stopped"]


BuildStatus = Union[BuildQueued, BuildInProgress, BuildSucceeded, BuildFailed, BuildStopped]


class StackChange(TypedDict):
    """Parameters every stack change sets, and a new template (None: keep the stack's)."""

    parameters: Dict[str, str]
    template: Optional[str]


class ResourceChange(TypedDict):
    logical_id: str
    resource_type: str
    action: Literal["add", "modify", "remove", "import", "dynamic"]
    replacement: Optional[Literal["true", "false", "conditional"]]


class PlanNoChanges(TypedDict):
    plan: Literal["no_changes"]


class PlanReady(TypedDict):
    """A plan to apply: its id, the stack, create or update, and the resource changes it previews."""

    plan: Literal["ready"]
    id: str
    stack: str
    kind: Literal["create", "update"]
    changes: List[ResourceChange]


Plan = Union[PlanNoChanges, PlanReady]


class StackPlan(TypedDict):
    """A plan given back to `apply` and `status` (`PlanReady` without its `plan` tag)."""

    id: str
    stack: str
    kind: Literal["create", "update"]
    changes: List[ResourceChange]


class StackInProgress(TypedDict):
    state: Literal["in_progress"]
    status: str


class StackComplete(TypedDict):
    state: Literal["complete"]


class StackFailed(TypedDict):
    state: Literal["failed", "rolled_back"]
    resource: Optional[str]
    reason: str


StackStatus = Union[StackInProgress, StackComplete, StackFailed]


class Rollout(TypedDict):
    """One rollout, pinned to the deployment id the backend created for it."""

    deployment_id: str
    image: str


class RolloutInProgress(TypedDict):
    status: Literal["in_progress"]
    running: int
    desired: int
    failed: int


class RolloutCompleted(TypedDict):
    status: Literal["completed"]
    running: int
    desired: int


class RolloutFailed(TypedDict):
    status: Literal["failed"]
    reason: str
    rolled_back: bool
    failed: int


class RolloutSuperseded(TypedDict):
    status: Literal["superseded"]
    by: str


RolloutStatus = Union[RolloutInProgress, RolloutCompleted, RolloutFailed, RolloutSuperseded]


class DeployedRevision(TypedDict):
    revision: str
    image: str


class ServiceRevisions(TypedDict):
    current: Optional[DeployedRevision]
    last_good: Optional[DeployedRevision]


class RollbackToLastGood(TypedDict):
    to: Literal["last_good"]


class RollbackToRevision(TypedDict):
    to: Literal["revision"]
    revision: str


RollbackTarget = Union[RollbackToLastGood, RollbackToRevision]


@runtime_checkable
class SourceProtocol(Protocol):
    def latest(self, branch: str) -> Union[RevisionDict, Any, Awaitable[Union[RevisionDict, Any]]]:
        """The newest revision of `branch`: a `sendy_cd.Revision` or a `RevisionDict`."""
        ...


@runtime_checkable
class BuilderProtocol(Protocol):
    def start(self, revision: RevisionDict) -> Union[str, Awaitable[str]]:
        """Starts building `revision`; returns the build id."""
        ...

    def status(self, build: str) -> Union[BuildStatus, Awaitable[BuildStatus]]:
        """Where build `build` is."""
        ...

    def stop(self, build: str) -> Union[None, Awaitable[None]]:
        """Stops the build (it is no longer wanted)."""
        ...


@runtime_checkable
class StackProtocol(Protocol):
    def plan(self, stack: str, change: StackChange) -> Union[Plan, Awaitable[Plan]]:
        """Previews `change` to stack `stack`."""
        ...

    def apply(self, plan: StackPlan) -> Union[None, Awaitable[None]]:
        """Starts applying `plan`; applying it again succeeds and changes nothing."""
        ...

    def status(self, plan: StackPlan) -> Union[StackStatus, Awaitable[StackStatus]]:
        """Where the update `plan` started is."""
        ...

    def outputs(self, stack: str) -> Union[Dict[str, str], Awaitable[Dict[str, str]]]: ...


@runtime_checkable
class DeployerProtocol(Protocol):
    def deploy(self, image: str) -> Union[Rollout, Awaitable[Rollout]]:
        """Starts rolling out `image`; returns the rollout."""
        ...

    def status(self, rollout: Rollout) -> Union[RolloutStatus, Awaitable[RolloutStatus]]: ...

    def revisions(self) -> Union[ServiceRevisions, Awaitable[ServiceRevisions]]: ...

    def rollback(self, to: RollbackTarget) -> Union[Rollout, Awaitable[Rollout]]: ...


@runtime_checkable
class DnsSwitchProtocol(Protocol):
    def weights(self) -> Union[Dict[str, int], Awaitable[Dict[str, int]]]:
        """`{set identifier: weight}` (weights 0 to 255; a split is any such mapping)."""
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
        """GETs `request["path"]` of `url` within `request["timeout"]`."""
        ...


class MetricRequest(TypedDict):
    """What a metric source's `fetch` receives: every measure of every environment over `periods`
    periods of `period` from `start`."""

    environments: List[str]
    """The environments, the baseline first, then the canary."""
    measures: List[Union[str, Dict[str, str]]]
    """`"requests"`, `"error_rate"`, `"latency_p50"`, `"latency_p99"`, or `{"named": "..."}`."""
    start: str
    """The start of the first period (RFC 3339)."""
    period: datetime.timedelta
    """One period."""
    periods: int
    """How many periods."""


class Series(TypedDict):
    """One measure of one environment, one value per period (`None` where there is no data)."""

    environment: str
    measure: Union[str, Dict[str, str]]
    values: List[Optional[float]]


@runtime_checkable
class MetricSourceProtocol(Protocol):
    def fetch(self, request: MetricRequest) -> Union[List[Series], Awaitable[List[Series]]]:
        """One `Series` per environment and measure of `request`, in one request to your backend."""
        ...


@runtime_checkable
class AlarmSourceProtocol(Protocol):
    def firing(self, names: List[str]) -> Union[List[str], Awaitable[List[str]]]:
        """The names among `names` whose alarm is in ALARM now."""
        ...


__all__ = [
    "AlarmSourceProtocol",
    "BuildFailed",
    "BuildInProgress",
    "BuildQueued",
    "BuildStatus",
    "BuildStopped",
    "BuildSucceeded",
    "DeployedRevision",
    "MetricRequest",
    "MetricSourceProtocol",
    "Plan",
    "PlanNoChanges",
    "PlanReady",
    "ProbeRequest",
    "ProbeResponse",
    "ResourceChange",
    "RevisionDict",
    "RollbackTarget",
    "Series",
    "RollbackToLastGood",
    "RollbackToRevision",
    "Rollout",
    "RolloutCompleted",
    "RolloutFailed",
    "RolloutInProgress",
    "RolloutStatus",
    "RolloutSuperseded",
    "ServiceRevisions",
    "StackChange",
    "StackComplete",
    "StackFailed",
    "StackInProgress",
    "StackPlan",
    "StackStatus",
    "BuilderProtocol",
    "DeployerProtocol",
    "DnsSwitchProtocol",
    "Json",
    "SourceProtocol",
    "StackProtocol",
    "VerifierProtocol",
]
