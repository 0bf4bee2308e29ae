"""Hostile values at every public callable that takes numbers, durations or strings (issue 9,
defect 4): each call returns, or raises an ``InvalidInputError`` (or another ``SendyError``) or a
``TypeError`` for a value of the wrong type; never a ``PanicException`` (a Rust panic) and never an
``OverflowError``. Before, ``SimConfig(repository="")`` then ``create_environment`` panicked, and
``SimConfig(desired_count=-1)``, ``Strategy.canary([-1, 100])``, ``HealthCheck(expected_status=-1)``
and ``inject(after=-1)`` raised ``OverflowError``.
"""

import datetime
from typing import Any, Callable, List

from hypothesis import HealthCheck as Health
from hypothesis import given, settings
from hypothesis import strategies as st

from sendy_cd import HealthCheck, InvalidInputError, Pipeline, SendyError, Strategy
from sendy_cd.memory import Account, SimConfig

ints = st.one_of(
    st.integers(),
    st.sampled_from([-1, 0, 1, 2**31, 2**32, 2**63, 2**64, 2**70, -(2**70), 10**4000]),
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-1.0, 0.0, 1e300, float("nan"), float("inf")]),
)
durations = st.one_of(
    ints,
    floats,
    st.timedeltas(),
    st.just(datetime.timedelta(days=999_999_999)),
)
texts = st.one_of(st.text(max_size=80), st.sampled_from(["", "régistry", "x" * 100_000, "a/b", " "]))
anything = st.one_of(ints, floats, texts, st.none(), st.lists(ints, max_size=4))


def outcome(call: Callable[[], Any]) -> None:
    """Runs `call`: a value, or a typed error, and never a panic or an overflow."""
    try:
        call()
    except (SendyError, TypeError):
        pass
    except BaseException as e:  # PanicException derives from BaseException
        if type(e).__name__ == "PanicException" or isinstance(e, OverflowError):
            raise AssertionError(f"{type(e).__name__}: {e}") from e
        raise


cases = settings(max_examples=150, deadline=None, suppress_health_check=list(Health))


@cases
@given(
    key=st.sampled_from(
        ["build_duration", "stack_duration", "rollout_duration", "dns_propagation", "ttl", "probe_latency"]
    ),
    value=durations,
)
def test_sim_config_durations(key: str, value: Any) -> None:
    outcome(lambda: Account(SimConfig(**{key: value})).create_environment("blue"))


@cases
@given(desired=ints, seed=ints, jitter=floats)
def test_sim_config_numbers(desired: Any, seed: Any, jitter: Any) -> None:
    outcome(lambda: Account(SimConfig(desired_count=desired, seed=seed, jitter=jitter)).create_environment("b"))


@cases
@given(registry=texts, repository=texts, domain=texts)
def test_sim_config_names(registry: str, repository: str, domain: str) -> None:
    def call() -> None:
        account = Account(SimConfig(registry=registry, repository=repository, domain=domain))
        account.create_environment("blue")
        account.push("main", "x")

    outcome(call)


@cases
@given(steps=st.lists(ints, max_size=6), bake=durations)
def test_canary(steps: Any, bake: Any) -> None:
    outcome(lambda: Strategy.canary(steps, bake))


@cases
@given(status=ints, successes=ints, threshold=ints, timeout=durations, interval=durations, path=texts)
def test_health_check(status: Any, successes: Any, threshold: Any, timeout: Any, interval: Any, path: str) -> None:
    outcome(
        lambda: HealthCheck(
            path=path,
            expected_status=status,
            consecutive_successes=successes,
            failure_threshold=threshold,
            request_timeout=timeout,
            interval=interval,
        )
    )


@cases
@given(op=texts, fault=texts, after=ints, times=st.one_of(st.none(), ints))
def test_inject(op: str, fault: str, after: Any, times: Any) -> None:
    account = Account()
    outcome(lambda: account.inject(op, fault, after=after, times=times))
    outcome(lambda: account.inject("probe", "fail", after=after, times=times))


@cases
@given(name=texts, branch=texts, message=texts, commit=texts)
def test_names(name: str, branch: str, message: str, commit: str) -> None:
    account = Account()
    outcome(lambda: account.create_environment(name))
    outcome(lambda: account.push(branch, message, message))
    outcome(lambda: account.deployer(name))
    outcome(lambda: account.serving(name))
    outcome(lambda: account.stack_parameters(name))
    outcome(lambda: account.set_behavior(commit, health=message))


@cases
@given(stage=texts, duration=durations, seed=ints, branch=texts, timeout=st.one_of(st.none(), durations))
def test_pipeline_builder(stage: str, duration: Any, seed: Any, branch: str, timeout: Any) -> None:
    account = Account()
    account.create_environment("blue")
    account.create_environment("green")

    def call() -> None:
        pipeline = (
            Pipeline.builder()
            .source(account.source())
            .image_builder(account.image_builder())
            .environment(account.environment("blue"))
            .environment(account.environment("green"))
            .dns(account.dns())
            .branch(branch)
            .seed(seed)
            .expected_duration(stage, duration)
            .build()
        )
        pipeline.watch(timeout=timeout if timeout is None else 60.0)
        pipeline.redeploy(branch)

    outcome(call)


def test_the_reported_values_are_invalid_input_errors() -> None:
    calls: List[Callable[[], object]] = [
        lambda: SimConfig(repository=""),
        lambda: SimConfig(registry="régistry"),
        lambda: SimConfig(desired_count=-1),
        lambda: SimConfig(seed=2**70),
        lambda: Strategy.canary([-1, 100]),
        lambda: HealthCheck(expected_status=-1),
        lambda: Account().inject("probe", "fail", after=-1),
    ]
    for call in calls:
        try:
            call()
        except InvalidInputError:
            continue
        raise AssertionError("no InvalidInputError")


@cases
@given(name=texts, key=texts, value=texts, parameter=st.one_of(st.none(), texts), output=texts, target=texts)
def test_environment_builder(name: str, key: str, value: str, parameter: Any, output: str, target: str) -> None:
    from sendy_cd import Environment

    account = Account()
    account.create_environment("blue")

    def call() -> None:
        (
            Environment.builder(name)
            .stack(account.stacks(), key)
            .parameters({key: value})
            .image_parameter(parameter)
            .url_output(output)
            .deployer(account.deployer("blue"))
            .verifier(account.verifier())
            .dns_target(target)
            .build()
        )

    outcome(call)


@cases
@given(commit=texts, branch=texts, message=texts, time=st.one_of(st.none(), texts), record=texts)
def test_revisions_and_records_from_text(commit: str, branch: str, message: str, time: Any, record: str) -> None:
    from sendy_cd import ExecutionRecord, Revision

    outcome(lambda: Revision(commit, branch, message, message, time))
    outcome(lambda: ExecutionRecord.from_json(record))


@cases
@given(
    region=st.one_of(st.none(), texts),
    attempts=st.one_of(st.none(), ints),
    timeout=st.one_of(st.none(), durations),
    zone=texts,
    name=texts,
    record_type=st.one_of(st.none(), texts),
    ttl=st.one_of(st.none(), durations),
)
def test_aws_configuration(
    region: Any, attempts: Any, timeout: Any, zone: str, name: str, record_type: Any, ttl: Any
) -> None:
    # Loading reads the environment and files only: no request is sent (the endpoint is a closed
    # loopback port, in case one were).
    from sendy_cd.aws import AwsConfig, Route53Dns

    def call() -> None:
        config = AwsConfig.load(
            region=region or "us-east-1",
            endpoint="http://127.0.0.1:1",
            max_attempts=attempts,
            connect_timeout=timeout,
            attempt_timeout=timeout,
        )
        Route53Dns(config, zone, name, record_type=record_type, ttl=ttl)

    outcome(call)


@cases
@given(
    tolerance=floats,
    weight=floats,
    threshold=st.one_of(st.none(), floats),
    alpha=floats,
    interval=durations,
    min_intervals=ints,
    max_intervals=ints,
    score=floats,
    method=st.sampled_from(["sequential", "fixed_window", "threshold", "", "x" * 1000]),
)
def test_analysis(
    tolerance: Any,
    weight: Any,
    threshold: Any,
    alpha: Any,
    interval: Any,
    min_intervals: Any,
    max_intervals: Any,
    score: Any,
    method: Any,
) -> None:
    from sendy_cd import Analysis, Metric

    def build() -> None:
        metric = Metric("latency_p99", tolerance=tolerance, weight=weight, threshold=threshold)
        analysis = Analysis(
            [metric],
            method,
            alpha=alpha,
            confidence=alpha,
            interval=interval,
            min_intervals=min_intervals,
            max_intervals=max_intervals,
            pass_score=score,
        )
        Strategy.canary(analysis=analysis)

    outcome(build)


@cases
@given(rate=floats, p50=floats, p99=floats, rps=floats)
def test_simulated_traffic(rate: Any, p50: Any, p99: Any, rps: Any) -> None:
    account = Account()
    outcome(lambda: account.set_behavior("0" * 40, error_rate=rate, latency_p50_ms=p50, latency_p99_ms=p99))
    outcome(lambda: account.metrics(rps))


@given(
    name=texts,
    shift=st.one_of(st.sampled_from(["canary", "linear", "blue_green"]), texts),
    percent=ints,
    step=ints,
    step_bake=durations,
    bake=durations,
    hooks=st.one_of(st.none(), st.lists(texts, max_size=3)),
    timeout=durations,
    action=st.one_of(st.sampled_from(["rollback", "continue"]), texts),
    stage_time=durations,
)
@cases
def test_managed_service(
    name: str,
    shift: str,
    percent: Any,
    step: Any,
    step_bake: Any,
    bake: Any,
    hooks: Any,
    timeout: Any,
    action: str,
    stage_time: Any,
) -> None:
    account = Account()
    outcome(
        lambda: account.create_managed_service(
            name,
            shift=shift,  # type: ignore[arg-type]
            percent=percent,
            step=step,
            step_bake=step_bake,
            bake=bake,
            pause_hooks=hooks,
            hook_timeout=timeout,
            timeout_action=action,  # type: ignore[arg-type]
            stage_time=stage_time,
        )
    )
    outcome(lambda: account.managed_deployer(name))
    outcome(lambda: Strategy.ecs_managed(test_url_output=name))
