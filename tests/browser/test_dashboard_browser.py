"""The dashboard in a real browser: headless Chromium from the distribution, driven by Playwright.

The server is the `dashboard` example (a simulated account with a history of 40 deployments, then a
new deployment every few seconds in real time). Each page is loaded and screenshot under
`target/screenshots/`; a running deployment is watched advancing on its execution page without a
reload; the figures the history and DORA pages show are those of the JSON API (which the Rust tests
check against the store); no page logs a console error.
"""

import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "target" / "screenshots"
BINARY = Path(os.environ.get("SENDY_DASHBOARD_BIN", ROOT / "target" / "debug" / "examples" / "dashboard"))
CHROMIUM = os.environ.get("SENDY_CHROMIUM", "/usr/bin/chromium")


def api(base: str, path: str) -> Any:
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    proc = subprocess.Popen(
        [str(BINARY), "--port", "0", "--seconds", "300"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+/", line)
    assert match, line
    try:
        yield match.group(0)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: List[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    page.close()
    assert errors == [], errors


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_the_pipelines_page(server: str, page: Page) -> None:
    page.goto(server)
    row = page.locator('tr[data-pipeline="shop"]')
    assert row.count() == 1
    view = api(server, "api/pipelines")[0]
    assert row.locator("td.count").inner_text() == str(view["executions"]) or view["running"] is not None
    assert page.evaluate("document.body.dataset.live") == "on"
    shot(page, "pipelines")


def test_a_running_deployment_advances_on_its_page_without_a_reload(server: str, page: Page) -> None:
    deadline = time.time() + 60
    running = None
    while running is None and time.time() < deadline:
        running = api(server, "api/pipelines")[0]["running"]
        if running is None:
            time.sleep(0.5)
    assert running is not None, "a deployment runs"
    page.goto(f"{server}pipelines/shop/executions/{running['id']}")
    page.evaluate("window.__sameDocument = true")
    before = page.locator("#steps tr").count()
    # Steps arrive as the deployment goes: the table grows from the event stream.
    page.wait_for_function(f"document.querySelectorAll('#steps tr').length > {before}", timeout=60_000)
    assert page.evaluate("window.__sameDocument") is True, "no reload"
    assert int(page.evaluate("document.body.dataset.updates")) >= 1
    shot(page, "execution-live")
    # And on to its end: the outcome cell leaves "running".
    page.wait_for_function(
        "!document.querySelector('#outcome span').classList.contains('running')", timeout=120_000
    )
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator("svg.timeline g.stage").count() >= 3
    shot(page, "execution")


def test_history_and_its_filter_show_the_stored_executions(server: str, page: Page) -> None:
    page.goto(f"{server}pipelines/shop")
    expected = [e["id"] for e in api(server, "api/pipelines/shop/executions?limit=20")["executions"]]
    shown = page.locator("#history tr[data-outcome] td:first-child a").all_inner_texts()
    # A deployment may have finished between the two reads: compare the older ones.
    assert shown[1:] == expected[1:] or shown[:-1] == expected[1:] or shown == expected
    shot(page, "history")
    page.goto(f"{server}pipelines/shop?outcome=failed&limit=5")
    first = page.locator("#history tr[data-outcome]").evaluate_all("rows => rows.map(r => r.dataset.outcome)")
    assert first == ["failed"] * 5
    ids = page.locator("#history tr[data-outcome] td:first-child a").all_inner_texts()
    page.locator("#older").click()
    older = page.locator("#history tr[data-outcome]").evaluate_all("rows => rows.map(r => r.dataset.outcome)")
    assert older and set(older) == {"failed"}
    assert not set(page.locator("#history tr[data-outcome] td:first-child a").all_inner_texts()) & set(ids)
    shot(page, "history-failed")


def test_dora_and_baselines_show_the_api_figures(server: str, page: Page) -> None:
    page.goto(f"{server}pipelines/shop/dora?days=30")
    dora = api(server, "api/pipelines/shop/dora?days=30")
    assert page.locator("#frequency b").inner_text() == f"{dora['per_day']:.2f}"
    rate = dora["change_failure_rate"]
    assert page.locator("#failure-rate b").inner_text() == (f"{rate * 100:.0f} %" if rate is not None else "-")
    assert page.locator("svg.daily rect").count() >= 2 * 30
    shot(page, "dora")
    page.goto(f"{server}pipelines/shop/baselines")
    stages = [s["stage"] for s in api(server, "api/pipelines/shop/baselines")["stages"]]
    shown = page.locator("#baselines tr[data-stage]").evaluate_all("rows => rows.map(r => r.dataset.stage)")
    assert shown == stages
    marked = api(server, "api/pipelines/shop/baselines")["executions"]
    rows = page.locator("#marked tr").count() - 1
    assert abs(rows - len(marked)) <= 1, (rows, len(marked))  # a deployment may end between the reads
    shot(page, "baselines")
