"""A user's own deployment code: deploy the newest commit, and switch back if the service's error
budget is blown after the switch. It takes its backends as arguments, so a test can hand it a
simulated account (see test_deploy_script.py) and production the AWS backends."""

from typing import Callable

from sendy_cd import ExecutionRecord, Pipeline, Revision


def deploy(pipeline: Pipeline, revision: Revision, error_budget_ok: Callable[[], bool]) -> ExecutionRecord:
    record = pipeline.run(revision)
    if record.succeeded and not error_budget_ok():
        return pipeline.switch_back()
    return record
