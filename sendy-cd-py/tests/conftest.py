"""Fixtures shared by the Python tests of sendy-cd."""

from typing import Any, Optional

import pytest

from sendy_cd import Environment, HealthCheck, Pipeline, PipelineBuilder, Strategy
from sendy_cd.memory import Account


@pytest.fixture
def account() -> Account:
    """A simulated account with blue (live) and green (idle)."""
    a = Account()
    a.create_environment("blue")
    a.create_environment("green")
    return a


def environment(account: Account, env: str, verifier: Any = None) -> Environment:
    """Environment `env` of `account`, with its verifier replaced if one is given."""
    if verifier is None:
        return account.environment(env)
    return account.environment_builder(env).verifier(verifier).build()


def simulated_builder(account: Account) -> PipelineBuilder:
    """A builder over `account`'s image builder, blue and green environments and DNS, to finish per test."""
    return (
        Pipeline.builder()
        .image_builder(account.image_builder())
        .environment(account.environment("blue"))
        .environment(account.environment("green"))
        .dns(account.dns())
    )


def simulated_pipeline(
    account: Account,
    strategy: Optional[Strategy] = None,
    *,
    verifier: Any = None,
    source: Any = None,
    builder: Any = None,
    sink: Any = None,
) -> Pipeline:
    """A blue/green (by default) pipeline over `account`, with any part replaced by a Python backend."""
    b = (
        Pipeline.builder()
        .source(source if source is not None else account.source())
        .image_builder(builder if builder is not None else account.image_builder())
        .environment(environment(account, "blue", verifier))
        .environment(environment(account, "green", verifier))
        .dns(account.dns())
        .strategy(strategy or Strategy.blue_green())
    )
    if verifier is not None:
        b = b.health_check(HealthCheck(consecutive_successes=2, interval=0.01, request_timeout=1.0))
    if sink is not None:
        b = b.sink(sink)
    return b.build()
