"""The dashboard served from Python: a live pipeline of the simulated account, a SQLite store shown
read-only, the action token, and the static report."""

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sendy_cd import InvalidConfigError, Pipeline
from sendy_cd.dashboard import report, serve
from sendy_cd.memory import Account

from conftest import simulated_builder


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def post(url: str, token: str) -> int:
    req = urllib.request.Request(url, method="POST", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_a_live_pipeline_and_its_actions(account: Account) -> None:
    pipeline = simulated_builder(account).name("shop").build()
    record = pipeline.run(account.push("main", "first"))
    with serve(pipeline, port=0, token="a-token-of-enough-length") as server:
        pipelines = get(server.url + "api/pipelines")
        assert [p["name"] for p in pipelines] == ["shop"]
        assert pipelines[0]["last"]["id"] == record.id and pipelines[0]["actions"] is True
        page = get(server.url + f"api/pipelines/shop/executions/{record.id}")
        assert page["id"] == record.id and page["outcome"]["status"] == "succeeded"
        assert post(server.url + "api/pipelines/shop/cancel", "wrong-token-of-enough-length") == 403
        assert post(server.url + "api/pipelines/shop/cancel", "a-token-of-enough-length") == 200
        with urllib.request.urlopen(server.url, timeout=10) as r:
            assert b"shop" in r.read()


def test_a_sqlite_store_is_shown_read_only(account: Account, tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    pipeline = simulated_builder(account).name("shop").store(str(db)).build()
    for n in range(3):
        pipeline.run(account.push("main", f"change {n}"))
    with pytest.raises(InvalidConfigError):
        serve(str(db), port=0)
    server = serve(db, port=0, names=["shop"])
    try:
        assert get(server.url + "api/pipelines/shop")["executions"] == 3
        assert len(get(server.url + "api/pipelines/shop/executions?limit=2")["executions"]) == 2
        assert get(server.url + "api/pipelines/shop/baselines")["samples"] == 3
    finally:
        server.stop()


def test_the_report_is_one_html_file(account: Account) -> None:
    pipeline: Pipeline = simulated_builder(account).build()
    record = pipeline.run(account.push("main", "<b>bold</b> change"))
    html = report(record)
    assert html.startswith("<!DOCTYPE html>") and record.id in html
    assert "<script" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
