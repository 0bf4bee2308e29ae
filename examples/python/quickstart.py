"""The quickstart in Python: two commits deployed blue/green through a simulated AWS account, each
stage printed as it happens with its simulated time.

    pip install ./sendy-cd-py && python examples/python/quickstart.py
"""

import time

from sendy_cd import Event, Pipeline, Strategy
from sendy_cd.memory import Account


def show(event: Event) -> None:
    d = event.to_dict()
    at = f"[{event.elapsed_ms / 1000:7.1f}s]"
    if event.kind == "stage_started":
        print(f"{at}   {d['stage']:<8} started{' on ' + d['environment'] if d.get('environment') else ''}")
    elif event.kind == "stage_finished":
        print(f"{at}   {d['stage']:<8} {d['outcome']['status']} in {d['duration_ms'] / 1000:.1f}s")
    elif event.kind == "traffic_shifted":
        print(f"{at}   traffic  weights now {d['weights']}")


def main() -> None:
    wall = time.perf_counter()
    account = Account()  # simulated: realistic durations on a simulated clock
    account.create_environment("blue")  # live, weight 100
    account.create_environment("green")  # idle
    pipeline = (
        Pipeline.builder()
        .source(account.source())
        .image_builder(account.image_builder())
        .environment(account.environment("blue"))
        .environment(account.environment("green"))
        .dns(account.dns())
        .strategy(Strategy.blue_green())
        .sink(show)
        .build()
    )
    for message in ("Add the checkout page", "Speed up search"):
        revision = account.push("main", message, "Ada <ada@example.com>")
        print(f"deploying {revision.commit[:7]} {message!r}")
        record = pipeline.run(revision)
        print(f"  {record.outcome}: {record.target} now serves {record.image}; weights {account.weights()}\n")
        assert record.succeeded
    print(f"deployed 2 revisions in {account.elapsed() / 60:.0f} simulated minutes, "
          f"{(time.perf_counter() - wall) * 1000:.0f} ms of real time")


if __name__ == "__main__":
    main()
