"""The type stubs stay true to the native module (mypy's stubtest)."""

import subprocess
import sys


def test_stubtest_finds_no_difference() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "sendy_cd"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr
