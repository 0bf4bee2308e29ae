"""Executions that outlast the process: the SQLite store from Python, and the pipeline's lease."""

from pathlib import Path

import pytest

from sendy_cd import LeaseHeldError, Pipeline, SendyError, Strategy
from sendy_cd.memory import Account

from conftest import simulated_builder


def pipeline_on(account: Account, path: Path) -> Pipeline:
    return simulated_builder(account).name("shop-api").store(path).build()


def test_a_new_pipeline_on_the_same_store_knows_the_history(tmp_path: Path) -> None:
    account = Account()
    account.create_environment("blue")
    account.create_environment("green")
    path = tmp_path / ".sendy" / "state.db"
    first = pipeline_on(account, path)
    assert first.name == "shop-api"
    record = first.run(account.push("main", "One"))
    assert record.succeeded and account.weights() == {"blue": 0, "green": 100}

    fresh = pipeline_on(account, path)  # what a new process builds
    assert fresh.history() == []
    assert fresh.resume() == [], "nothing was left unfinished"
    stored = fresh.executions()
    assert [r.id for r in stored] == [record.id]
    assert stored[0].to_dict() == record.to_dict()
    back = fresh.switch_back()
    assert back.succeeded and back.kind == "switch_back"
    assert account.weights() == {"blue": 100, "green": 0}
    assert [r.kind for r in fresh.executions(limit=1)] == ["switch_back"]


def test_a_second_run_while_one_holds_the_lease_is_refused(tmp_path: Path) -> None:
    account = Account()
    account.create_environment("blue")
    account.create_environment("green")
    path = tmp_path / "state.db"
    one, two = pipeline_on(account, path), pipeline_on(account, path)
    execution = one.start(account.push("main", "One"))
    for event in execution:
        if event.kind == "step_started":
            break
    with pytest.raises(LeaseHeldError) as refused:
        two.run(account.push("main", "Two"))
    assert isinstance(refused.value, SendyError) and refused.value.kind == "lease_held"
    assert "holds its lease until" in str(refused.value)
    assert execution.result().succeeded
    assert two.run(account.push("main", "Three")).succeeded, "the lease is free once the first ended"


def test_bad_store_settings_are_refused(tmp_path: Path) -> None:
    from sendy_cd import InvalidConfigError, InvalidInputError

    account = Account()
    account.create_environment("blue")
    with pytest.raises(InvalidConfigError):
        (
            Pipeline.builder()
            .image_builder(account.image_builder())
            .environment(account.environment("blue"))
            .name("no spaces allowed")
            .build()
        )
    with pytest.raises(InvalidInputError):
        Pipeline.builder().lease_time(-1)
    not_a_db = tmp_path / "garbage.db"
    not_a_db.write_bytes(b"this is not a database" * 100)
    # A damaged file is moved aside and a new store started: never fatal.
    pipeline = (
        Pipeline.builder()
        .image_builder(account.image_builder())
        .environment(account.environment("blue"))
        .strategy(Strategy.all_at_once())
        .store(not_a_db)
        .build()
    )
    assert pipeline.run(account.push("main", "One")).succeeded
    assert any(p.name.startswith("garbage.damaged-") for p in tmp_path.iterdir())


def test_resume_forward_is_a_builder_setting(tmp_path: Path) -> None:
    account = Account()
    account.create_environment("blue")
    account.create_environment("green")
    builder = (
        Pipeline.builder()
        .image_builder(account.image_builder())
        .environment(account.environment("blue"))
        .environment(account.environment("green"))
        .dns(account.dns())
        .store(tmp_path / "state.db")
    )
    with pytest.raises(TypeError):
        builder.resume_forward("yes")  # type: ignore[arg-type]
    pipeline = builder.resume_forward(False).build()
    assert pipeline.resume() == []
    assert pipeline.run(account.push("main", "One")).succeeded
