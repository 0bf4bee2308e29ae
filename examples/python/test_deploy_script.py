"""How a user tests their own deployment script with the simulated account, no AWS needed:

    pytest examples/python
"""

import pytest

from sendy_cd import Pipeline, Strategy
from sendy_cd.memory import Account

from deploy_script import deploy


@pytest.fixture
def account() -> Account:
    account = Account()
    account.create_environment("blue")
    account.create_environment("green")
    return account


@pytest.fixture
def pipeline(account: Account) -> Pipeline:
    return (
        Pipeline.builder()
        .source(account.source())
        .image_builder(account.image_builder())
        .environment(account.environment("blue"))
        .environment(account.environment("green"))
        .dns(account.dns())
        .strategy(Strategy.blue_green())
        .build()
    )


def test_a_good_release_ends_on_the_new_environment(account: Account, pipeline: Pipeline) -> None:
    record = deploy(pipeline, account.push("main", "Good release"), error_budget_ok=lambda: True)
    assert record.succeeded and account.weights() == {"blue": 0, "green": 100}


def test_a_blown_error_budget_switches_back(account: Account, pipeline: Pipeline) -> None:
    record = deploy(pipeline, account.push("main", "Subtly broken"), error_budget_ok=lambda: False)
    assert record.kind == "switch_back" and account.weights() == {"blue": 100, "green": 0}


def test_a_release_that_crashes_never_gets_traffic(account: Account, pipeline: Pipeline) -> None:
    revision = account.push("main", "Crashes on start")
    account.set_behavior(revision.commit, crashing=True)
    record = deploy(pipeline, revision, error_budget_ok=lambda: True)
    assert record.outcome == "failed" and record.failed_stage == "rollout"
    assert account.weights() == {"blue": 100, "green": 0}
