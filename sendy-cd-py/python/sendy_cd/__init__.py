"""sendy-cd: continuous deployment of containerized services to AWS, from Python.

The Rust engine of sendy-cd underneath: pipelines with the all-at-once, blue/green and canary
strategies, a simulated AWS account (`sendy_cd.memory.Account`) for examples and tests, the AWS
backends (`sendy_cd.aws`), and backends written in Python (`sendy_cd.protocols`).

    from sendy_cd import Pipeline, Strategy
    from sendy_cd.memory import Account

    account = Account()
    account.create_environment("blue")
    account.create_environment("green")
    pipeline = (
        Pipeline.builder()
        .source(account.source()).image_builder(account.image_builder())
        .environment(account.environment("blue")).environment(account.environment("green"))
        .dns(account.dns()).strategy(Strategy.blue_green())
        .build()
    )
    record = pipeline.run(account.push("main", "Add the checkout page"))
    assert record.succeeded
"""

from sendy_cd._errors import (
    AccessDeniedError,
    BackendError,
    ConflictError,
    InvalidConfigError,
    InvalidInputError,
    LeaseHeldError,
    LeaseLostError,
    NotFoundError,
    SendyError,
    StageFailedError,
    ThrottledError,
    TransientError,
)
# Importable by name (`from sendy_cd import TimeoutError`), left out of `__all__`: see below.
from sendy_cd._errors import CancelledError as CancelledError
from sendy_cd._errors import TimeoutError as TimeoutError
from sendy_cd._sendy_cd import (
    AlarmSource,
    Analysis,
    Builder,
    Deployer,
    ManagedDeployer,
    DnsSwitch,
    Environment,
    EnvironmentBuilder,
    Event,
    EventStream,
    Execution,
    ExecutionRecord,
    HealthCheck,
    Metric,
    MetricSource,
    Pipeline,
    PipelineBuilder,
    Revision,
    Source,
    Stack,
    StageRecord,
    Strategy,
    Verifier,
    __version__,
)

# `TimeoutError` and `CancelledError` are importable by name but not exported by `import *`: they
# would shadow the built-in `TimeoutError` and asyncio's `CancelledError` in the importing module.
__all__ = [
    "AccessDeniedError",
    "AlarmSource",
    "Analysis",
    "BackendError",
    "Builder",
    "ConflictError",
    "Deployer",
    "ManagedDeployer",
    "DnsSwitch",
    "Environment",
    "EnvironmentBuilder",
    "Event",
    "EventStream",
    "Execution",
    "ExecutionRecord",
    "HealthCheck",
    "InvalidConfigError",
    "InvalidInputError",
    "LeaseHeldError",
    "LeaseLostError",
    "Metric",
    "MetricSource",
    "NotFoundError",
    "Pipeline",
    "PipelineBuilder",
    "Revision",
    "SendyError",
    "Source",
    "Stack",
    "StageFailedError",
    "StageRecord",
    "Strategy",
    "ThrottledError",
    "TransientError",
    "Verifier",
    "__version__",
]
