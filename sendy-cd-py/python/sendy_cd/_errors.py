"""The exceptions sendy-cd raises: ``SendyError`` and one subclass per kind of failure.

Each is also the built-in exception it means, so code that knows nothing of sendy-cd handles it
(``InvalidInputError`` is a ``ValueError``, ``NotFoundError`` a ``LookupError``,
``AccessDeniedError`` a ``PermissionError``, ``TimeoutError`` the built-in ``TimeoutError``).
``CancelledError`` is deliberately *not* ``asyncio.CancelledError``: raised inside a task, that one
would be taken for the task's own cancellation.

``kind`` (a stable name) and ``retryable`` (whether trying again may succeed) are class attributes,
so an error a Python backend raises itself (``TransientError("connection reset")``) has them too.
The classes live in module ``sendy_cd`` (they pickle and print as ``sendy_cd.X``).
"""

import builtins


class SendyError(Exception):
    """The base of every error sendy-cd raises."""

    kind: str = "backend"
    retryable: bool = False


class InvalidInputError(SendyError, ValueError):
    """A value failed validation; nothing was sent."""

    kind = "invalid_input"


class InvalidConfigError(SendyError, ValueError):
    """A pipeline or backend is misconfigured; nothing was sent."""

    kind = "invalid_config"


class NotFoundError(SendyError, LookupError):
    """Something named does not exist."""

    kind = "not_found"


class ConflictError(SendyError):
    """The operation conflicts with the resource's state (a deployment already running, ...)."""

    kind = "conflict"


class AccessDeniedError(SendyError, PermissionError):
    """The credentials may not do this."""

    kind = "access_denied"


class ThrottledError(SendyError):
    """The service asked to slow down. Retryable."""

    kind = "throttled"
    retryable = True


class TransientError(SendyError):
    """A failure that may pass (a reset connection, a 5xx answer). Retryable."""

    kind = "transient"
    retryable = True


class TimeoutError(SendyError, builtins.TimeoutError):
    """An operation did not finish within its deadline."""

    kind = "timeout"


class StageFailedError(SendyError):
    """A pipeline stage failed."""

    kind = "stage_failed"


class CancelledError(SendyError):
    """The operation was cancelled by its caller."""

    kind = "cancelled"


class LeaseHeldError(SendyError):
    """Another process runs this pipeline (its lease has not expired); nothing was changed."""

    kind = "lease_held"


class LeaseLostError(SendyError):
    """This process lost its lease on the pipeline and stopped before any further change."""

    kind = "lease_lost"


class BackendError(SendyError):
    """A backend failed in a way no other error describes."""

    kind = "backend"


for _cls in (
    SendyError,
    InvalidInputError,
    InvalidConfigError,
    NotFoundError,
    ConflictError,
    AccessDeniedError,
    ThrottledError,
    TransientError,
    TimeoutError,
    StageFailedError,
    CancelledError,
    LeaseHeldError,
    LeaseLostError,
    BackendError,
):
    _cls.__module__ = "sendy_cd"
del _cls
