"""The AWS configuration and backends (`sendy_cd::aws`, `http`, `git` and `github` in Rust)."""

from sendy_cd._sendy_cd import (
    AwsConfig,
    CloudFormationStack,
    CloudWatchAlarms,
    CloudWatchMetrics,
    CodeBuildBuilder,
    EcsDeployer,
    EcsManagedDeployer,
    GitHubSource,
    GitSource,
    HttpVerifier,
    Route53Dns,
)

__all__ = [
    "AwsConfig",
    "CloudFormationStack",
    "CloudWatchAlarms",
    "CloudWatchMetrics",
    "CodeBuildBuilder",
    "EcsDeployer",
    "EcsManagedDeployer",
    "GitHubSource",
    "GitSource",
    "HttpVerifier",
    "Route53Dns",
]
