"""Benchmark of the Python bindings (docs/benchmarks.md): `import sendy_cd` time, and one simulated
blue/green run from Python, set up and measured like the Rust benchmark (examples/benches/pipeline.rs):
a fresh account and pipeline per run, realistic durations, median of many runs.

    python sendy-cd-py/bench/bench.py           # smoke: a few runs (the test command runs this)
    python sendy-cd-py/bench/bench.py --bench   # the figures: 300 runs, 30 imports
    python sendy-cd-py/bench/bench.py --compare # 10 rounds alternating with the Rust benchmark: ratios

Build the module in release mode first for real figures (`pip install ./sendy-cd-py`, or
`maturin develop --release`); compare with `cargo bench -p sendy-cd-examples --bench pipeline`.
"""

import statistics
import subprocess
import sys
import time


def percentile(values: list, p: float) -> float:
    s = sorted(values)
    return s[round((len(s) - 1) * p)]


def import_times(n: int) -> list:
    code = "import time; t = time.perf_counter(); import sendy_cd; print(time.perf_counter() - t)"
    return [float(subprocess.check_output([sys.executable, "-c", code])) * 1000 for _ in range(n)]


def runs(n: int) -> tuple:
    from sendy_cd import Pipeline, Strategy
    from sendy_cd.memory import Account

    setup_and_run, run_only = [], []
    for _ in range(n):
        started = time.perf_counter()
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
        revision = account.push("main", "bench", "bench")
        before_run = time.perf_counter()
        record = pipeline.run(revision)
        done = time.perf_counter()
        assert record.succeeded
        setup_and_run.append((done - started) * 1000)
        run_only.append((done - before_run) * 1000)
    return setup_and_run, run_only


def rust_medians() -> tuple:
    """The Rust benchmark's medians (setup included, run alone), in ms."""
    import os
    import re

    out = subprocess.check_output(
        ["cargo", "bench", "-q", "-p", "sendy-cd-examples", "--bench", "pipeline", "--", "--bench"],
        env={**os.environ, "SENDY_BENCH_ONLY_RUN": "1"},
        text=True,
    )
    rows = re.findall(r"\| (account setup included|the run alone[^|]*) \| [^|]+ \| ([0-9.]+) ms", out)
    values = dict((k.split(" ")[0], float(v)) for k, v in rows)
    return values["account"], values["the"]


def compare(rounds: int = 10) -> None:
    """Alternates the Rust and Python benchmarks, so that both see the same machine, and prints the
    ratio of their medians for each round, the median ratio, and the ratio of the fastest rounds (this
    VM's speed moves between two levels over minutes, which a single round can straddle)."""
    print("| round | Rust: setup + run | Python: setup + run | ratio | Rust: run alone | Python: run alone | ratio |")
    print("|---|---|---|---|---|---|---|")
    rust_t, rust_r, py_t, py_r = [], [], [], []
    for i in range(rounds):
        rust_total, rust_run = rust_medians()
        total, run_only = runs(300)
        py_total, py_run = statistics.median(total), statistics.median(run_only)
        rust_t.append(rust_total), rust_r.append(rust_run), py_t.append(py_total), py_r.append(py_run)
        print(f"| {i + 1} | {rust_total:.2f} ms | {py_total:.2f} ms | {py_total / rust_total:.2f} | "
              f"{rust_run:.2f} ms | {py_run:.2f} ms | {py_run / rust_run:.2f} |")
    ratios_t = [p / r for p, r in zip(py_t, rust_t)]
    ratios_r = [p / r for p, r in zip(py_r, rust_r)]
    print(f"| median ratio | | | {statistics.median(ratios_t):.2f} | | | {statistics.median(ratios_r):.2f} |")
    print(f"| fastest rounds | {min(rust_t):.2f} ms | {min(py_t):.2f} ms | {min(py_t) / min(rust_t):.2f} | "
          f"{min(rust_r):.2f} ms | {min(py_r):.2f} ms | {min(py_r) / min(rust_r):.2f} |")


def main() -> None:
    if "--compare" in sys.argv:
        compare()
        return
    full = "--bench" in sys.argv
    imports = import_times(30 if full else 3)
    total, run_only = runs(300 if full else 5)
    print("## Python bindings\n")
    print("| measure | median | p95 | max |")
    print("|---|---|---|---|")
    print(f"| `import sendy_cd` (fresh interpreter) | {statistics.median(imports):.1f} ms | "
          f"{percentile(imports, 0.95):.1f} ms | {max(imports):.1f} ms |")
    print(f"| one blue/green run, account setup included | {statistics.median(total):.2f} ms | "
          f"{percentile(total, 0.95):.2f} ms | {max(total):.2f} ms |")
    print(f"| the run alone (`pipeline.run`) | {statistics.median(run_only):.2f} ms | "
          f"{percentile(run_only, 0.95):.2f} ms | {max(run_only):.2f} ms |")


if __name__ == "__main__":
    main()
