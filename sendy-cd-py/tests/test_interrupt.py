"""Ctrl-C interrupts a blocking run: the execution is cancelled and undone, then KeyboardInterrupt is
raised once the Python backend call under way has returned (an interpreter exiting under a running
backend call would abort)."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from sendy_cd import Environment, HealthCheck, Pipeline
    from sendy_cd.memory import Account

    class SlowVerifier:
        def probe(self, url, request):
            print("probing", flush=True)
            time.sleep(0.05)  # often still running when Ctrl-C comes: the exit must wait for it
            return {"status": 200, "latency": {"secs": 0, "nanos": 1000000}}

    account = Account()
    b = Pipeline.builder().source(account.source()).builder(account.builder()).dns(account.dns())
    for env in ("blue", "green"):
        account.create_environment(env)
        b = b.environment(
            Environment.builder(env).stack(account.stacks(), "app-" + env)
            .deployer(account.deployer(env)).verifier(SlowVerifier()).build()
        )
    pipeline = b.health_check(HealthCheck(consecutive_successes=100000, interval=0.01)).build()
    try:
        pipeline.run(account.push("main", "Interrupted"))
        print("finished?!", flush=True)
    except KeyboardInterrupt:
        record = pipeline.last_record()
        print("interrupted", record.outcome, record.is_complete(), account.weights(), flush=True)
        sys.exit(0)
    sys.exit(3)
    """
)


def test_sigint_cancels_a_blocking_run(tmp_path: Path) -> None:
    script = tmp_path / "deploy.py"
    script.write_text(SCRIPT)
    # Several times: whether the backend call is still running at exit depends on timing.
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "probing"  # the run is under way, in Rust
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (out, err)
        last = out.strip().splitlines()[-1]
        assert last == "interrupted cancelled True {'blue': 100, 'green': 0}", (out, err)
