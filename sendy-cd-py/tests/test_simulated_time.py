"""Simulated time stays honest however the work is driven (issue 9, defect 2).

``pipeline.start(rev)`` ran the execution on a helper thread while the caller's thread drove the same
simulated runtime to read events: the caller's thread, seeing no task ready, advanced the paused
clock to the next timer (a deadline) while the execution was ready to run, and runs that ``run()``
passes failed ("verification did not finish within 600s", a build of 3,600,000 ms). It showed in 35
of 40 runs pinned to one core, so the comparison runs 30 times that way, in a subprocess.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
import time

from sendy_cd import HealthCheck, Pipeline, Strategy
from sendy_cd.memory import Account, SimConfig


class SlowVerifier:
    def probe(self, url, request):
        time.sleep(float(sys.argv[2]))
        return {"status": 200, "latency": {"secs": 0, "nanos": 20_000_000}}


def pipeline_of(account, verifier, sink):
    b = Pipeline.builder().image_builder(account.image_builder()).dns(account.dns()).strategy(Strategy.blue_green())
    for env in ("blue", "green"):
        if verifier:
            b = b.environment(account.environment_builder(env).verifier(SlowVerifier()).build())
        else:
            b = b.environment(account.environment(env))
    if verifier:
        b = b.health_check(HealthCheck(consecutive_successes=2, interval=0.01, request_timeout=5.0))
    if sink:
        b = b.sink(lambda event: time.sleep(0.0005))
    return b.seed(11).build()


def record(started, verifier, sink):
    account = Account(SimConfig(seed=7, jitter=0.1))
    account.create_environment("blue")
    account.create_environment("green")
    pipeline = pipeline_of(account, verifier, sink)
    revision = account.push("main", "x")
    if started:
        execution = pipeline.start(revision)
        kinds = [event.kind for event in execution]
        assert kinds[-1] == "execution_finished", kinds
        r = execution.result()
    else:
        r = pipeline.run(revision)
    d = r.to_dict()
    # Everything but the wall-clock timestamps.
    return d["stages"], d["steps"], d["verifications"], d["outcome"], r.succeeded


runs, _, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
verifier, sink = mode in ("verifier", "both"), mode in ("sink", "both")
expected = record(False, verifier, sink)
assert expected[-1], expected
for i in range(runs):
    got = record(True, verifier, sink)
    assert got == expected, f"run {i}: start() gave {got}, run() gave {expected}"
print("same")
"""


def run_pinned(tmp_path: Path, runs: int, sleep: float, mode: str) -> None:
    script = tmp_path / "start_vs_run.py"
    script.write_text(SCRIPT)
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    busy = subprocess.Popen([*pin, sys.executable, "-c", "while True: pass"])
    try:
        done = subprocess.run(
            [*pin, sys.executable, str(script), str(runs), str(sleep), mode],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        busy.kill()
        busy.wait()
    assert done.returncode == 0 and done.stdout.strip() == "same", done.stderr[-2000:]


RUNS = int(os.environ.get("SENDY_START_RUNS", "30"))


def test_start_gives_the_record_run_gives(tmp_path: Path) -> None:
    run_pinned(tmp_path, RUNS, 0.0, "plain")


def test_start_with_a_python_sink_gives_the_record_run_gives(tmp_path: Path) -> None:
    run_pinned(tmp_path, 30, 0.0, "sink")


def test_a_python_verifier_taking_real_time_does_not_advance_simulated_time(tmp_path: Path) -> None:
    run_pinned(tmp_path, 3, 0.05, "both")
