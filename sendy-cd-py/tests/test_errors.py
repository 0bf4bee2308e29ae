"""Rust errors become Python exceptions: SendyError and one subclass per variant."""

from typing import Any, Dict

import pytest

import sendy_cd
from sendy_cd import (
    AccessDeniedError,
    BackendError,
    CancelledError,
    ConflictError,
    InvalidConfigError,
    InvalidInputError,
    LeaseHeldError,
    LeaseLostError,
    NotFoundError,
    Pipeline,
    Revision,
    SendyError,
    StageFailedError,
    Strategy,
    ThrottledError,
    TimeoutError,
    TransientError,
)
from sendy_cd.aws import AwsConfig, Route53Dns
from sendy_cd.memory import Account

VARIANTS = [
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
]


def test_every_variant_has_a_subclass_of_sendy_error() -> None:
    assert issubclass(SendyError, Exception)
    for cls in VARIANTS:
        assert issubclass(cls, SendyError) and cls is not SendyError
    # One per variant of sendy_cd::Error (error.rs): keep the two lists in step.
    variants = open(
        __file__.replace("sendy-cd-py/tests/test_errors.py", "sendy-cd/src/error.rs"), encoding="utf-8"
    ).read()
    body = variants[variants.index("pub enum Error {") : variants.index("\n}\n", variants.index("pub enum Error {"))]
    names = [
        line.strip().split("(")[0].split(" ")[0].rstrip(",")
        for line in body.splitlines()[1:]
        if line.startswith("    ") and not line.startswith("     ") and line.strip()[:1].isupper()
    ]
    assert sorted(n + "Error" for n in names) == sorted(c.__name__ for c in VARIANTS)


def test_bad_input_is_refused_before_anything_runs() -> None:
    with pytest.raises(InvalidInputError) as e:
        Revision("not-a-sha", "main", "m", "a")
    assert e.value.retryable is False and e.value.kind == "invalid_input"
    with pytest.raises(InvalidInputError):
        Account().inject("no_such_operation", "fail")
    with pytest.raises(InvalidInputError):
        Account().inject("build_start", "explode")
    with pytest.raises(InvalidInputError):
        Strategy.canary(bake=-1.0)


def test_misconfiguration_is_invalid_config() -> None:
    with pytest.raises(InvalidConfigError):
        Pipeline.builder().build()  # no environment
    a = Account()
    a.create_environment("blue")
    a.create_environment("green")
    with pytest.raises(SendyError) as e:  # steps must increase to 100
        Pipeline.builder().environment(a.environment("blue")).environment(a.environment("green")).strategy(
            Strategy.canary([50, 10])
        ).dns(a.dns()).build()
    assert isinstance(e.value, (InvalidConfigError, InvalidInputError))
    with pytest.raises(InvalidConfigError):
        AwsConfig.load(region="us-east-1", endpoint="not a url")
    config = AwsConfig.load(region="us-east-1", endpoint="http://127.0.0.1:9")
    with pytest.raises(InvalidConfigError):
        Route53Dns(config, "Z1", "app.example.com", ttl=0)


def test_simulated_and_live_backends_cannot_share_a_pipeline() -> None:
    from sendy_cd import Environment
    from sendy_cd.aws import HttpVerifier

    a = Account()
    a.create_environment("blue")
    with pytest.raises(InvalidConfigError, match="simulated and live"):
        Environment.builder("blue").stack(a.stacks(), "app-blue").deployer(a.deployer("blue")).verifier(
            HttpVerifier()
        ).build()


def test_state_errors_map_to_their_variant() -> None:
    a = Account()
    a.create_environment("blue")
    with pytest.raises(ConflictError) as e:
        a.create_environment("blue")
    assert isinstance(e.value, SendyError)
    with pytest.raises(NotFoundError):
        a.deployer("purple")
    assert sendy_cd.SendyError is SendyError


def test_each_error_is_also_the_builtin_exception_it_means() -> None:
    import builtins

    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(InvalidConfigError, ValueError)
    assert issubclass(NotFoundError, LookupError)
    assert issubclass(AccessDeniedError, PermissionError)
    assert issubclass(TimeoutError, builtins.TimeoutError)
    # Not asyncio's: raised inside a task it would be taken for the task's own cancellation.
    import asyncio

    assert not issubclass(CancelledError, asyncio.CancelledError)
    with pytest.raises(ValueError):
        Revision("not-a-sha", "main", "m", "a")


def test_import_star_shadows_no_builtin_name() -> None:
    namespace: Dict[str, Any] = {}
    exec("from sendy_cd import *", namespace)
    assert "TimeoutError" not in namespace and "CancelledError" not in namespace
    assert "InvalidInputError" in namespace


def test_errors_live_in_sendy_cd_pickle_and_have_class_defaults() -> None:
    import pickle

    for cls in VARIANTS:
        assert cls.__module__ == "sendy_cd", cls
        back = pickle.loads(pickle.dumps(cls("boom")))
        assert type(back) is cls and str(back) == "boom"
    assert TransientError("connection reset").retryable is True
    assert TransientError("connection reset").kind == "transient"
    assert ThrottledError("slow down").retryable is True
    assert InvalidInputError("x").retryable is False and InvalidInputError("x").kind == "invalid_input"


def test_a_timeout_in_a_python_verifier_is_one_failed_probe() -> None:
    from sendy_cd import Environment, HealthCheck

    class TimingOutOnce:
        def __init__(self) -> None:
            self.probes = 0

        def probe(self, url, request):  # type: ignore[no-untyped-def]
            self.probes += 1
            if self.probes == 1:
                raise builtins_timeout("timed out")
            return {"status": 200, "latency": {"secs": 0, "nanos": 1_000_000}}

    import builtins

    builtins_timeout = builtins.TimeoutError
    account = Account()
    verifier = TimingOutOnce()
    b = Pipeline.builder().image_builder(account.image_builder()).dns(account.dns())
    for env in ("blue", "green"):
        account.create_environment(env)
        b = b.environment(
            Environment.builder(env)
            .stack(account.stacks(), f"app-{env}")
            .deployer(account.deployer(env))
            .verifier(verifier)
            .build()
        )
    record = b.health_check(HealthCheck(consecutive_successes=2, interval=0.01)).build().run(account.push("main", "x"))
    assert record.succeeded, record.reason
    first = record.to_dict()["verifications"][0]["report"]
    assert first["failures"] == 1 and "TimeoutError: timed out" in first["last_failure"], first
