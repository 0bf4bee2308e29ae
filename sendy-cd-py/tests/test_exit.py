"""The interpreter exits cleanly after ``asyncio.run`` of an ``_async`` call (issue 9, defect 1).

The crash this guards against was a race: an engine thread handing the result to the event loop
(``call_soon_threadsafe``) was still inside the interpreter when ``asyncio.run`` returned and the
interpreter exited. It showed in half the runs pinned to one core beside a busy loop, and never on
an idle machine, so the test runs the script 30 times that way (``taskset``, where there is one).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio

from sendy_cd import Pipeline, Strategy
from sendy_cd.memory import Account

account = Account()
account.create_environment("blue")
account.create_environment("green")
pipeline = (
    Pipeline.builder()
    .image_builder(account.image_builder())
    .environment(account.environment("blue"))
    .environment(account.environment("green"))
    .dns(account.dns())
    .strategy(Strategy.blue_green())
    .build()
)
record = asyncio.run(pipeline.run_async(account.push("main", "x")))
assert record.succeeded, record
"""

RUNS = int(os.environ.get("SENDY_EXIT_RUNS", "30"))  # `SENDY_EXIT_RUNS=200` for the documented figure


def test_the_interpreter_exits_cleanly_after_run_async(tmp_path: Path) -> None:
    script = tmp_path / "exit_after_run_async.py"
    script.write_text(SCRIPT)
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    busy = subprocess.Popen([*pin, sys.executable, "-c", "while True: pass"])
    try:
        codes = []
        for _ in range(RUNS):
            done = subprocess.run([*pin, sys.executable, str(script)], capture_output=True, text=True, timeout=60)
            codes.append((done.returncode, done.stderr[-300:]))
    finally:
        busy.kill()
        busy.wait()
    failed = [c for c in codes if c[0] != 0]
    assert failed == [], f"{len(failed)} of {RUNS} runs did not exit cleanly: {failed[:3]}"
