//! Hostile input (issue 8, "no panics on any input"): every parser and every constructor or
//! configuration that takes numbers, durations or strings answers arbitrary values with a value or a
//! typed error, never a panic, and a configuration that is refused makes no call.
//!
//! Each value below once panicked (the panic list of issue 8); the properties then range over
//! everything around them.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use sendy_cd::memory::{Account, Op, SimConfig};
use sendy_cd::wait::{Check, PollPolicy, RetryPolicy, Wait};
use sendy_cd::{
    BranchName, BuildId, Canary, CommitId, Deadlines, Digest, EnvironmentName, Error, HealthCheck, Id, ImageRef,
    Outcome, ParameterKey, Pipeline, ServiceUrl, SetIdentifier, StackName, Strategy as DeployStrategy,
};

fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        (0u64..100_000, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        any::<u64>().prop_map(Duration::from_secs),
    ]
}

fn any_fraction() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        Just(1.5),
        Just(3.0),
        Just(1e300),
        -2.0f64..3.0,
        any::<f64>(),
    ]
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("régistry".to_owned()),
        Just("x".repeat(100_000)),
        ".{0,80}",
        "[a-z0-9.:/@_-]{0,80}",
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every parser: a value or a `ParseError` whose message stays short, whatever the input.
    #[test]
    fn parsers_never_panic_and_never_echo_huge_inputs(input in any_text()) {
        let short = |r: Result<String, sendy_cd::ParseError>| {
            if let Err(e) = r {
                prop_assert!(e.to_string().len() < 1_000, "{} bytes", e.to_string().len());
            }
            Ok(())
        };
        short(CommitId::parse(input.clone()).map(|v| v.to_string()))?;
        short(BranchName::parse(input.clone()).map(|v| v.to_string()))?;
        short(StackName::parse(input.clone()).map(|v| v.to_string()))?;
        short(ParameterKey::parse(input.clone()).map(|v| v.to_string()))?;
        short(SetIdentifier::parse(input.clone()).map(|v| v.to_string()))?;
        short(EnvironmentName::parse(input.clone()).map(|v| v.to_string()))?;
        short(Id::parse(input.clone()).map(|v| v.to_string()))?;
        short(BuildId::parse(input.clone()).map(|v| v.to_string()))?;
        short(Digest::parse(input.clone()).map(|v| v.to_string()))?;
        short(ImageRef::parse(&input).map(|v| v.to_string()))?;
        short(ServiceUrl::parse(&input).map(|v| v.to_string()))?;
    }

    /// A simulated account accepts a configuration or refuses it with `InvalidConfig`; one it accepts
    /// creates environments and deploys without panicking (an hour of simulated time at most).
    #[test]
    fn a_simulated_account_validates_its_configuration(
        build in any_duration(),
        stack in any_duration(),
        rollout in any_duration(),
        dns in any_duration(),
        ttl in any_duration(),
        jitter in any_fraction(),
        desired in any::<u32>(),
        seed in any::<u64>(),
        registry in any_text(),
        repository in any_text(),
    ) {
        let cfg = SimConfig::default().build_duration(build).stack_duration(stack).rollout_duration(rollout).dns_propagation(dns).ttl(ttl).jitter(jitter).desired_count(desired).seed(seed).registry(registry).repository(repository);
        let rt = runtime();
        let _enter = rt.enter();
        match Account::with_config(cfg) {
            Err(e) => prop_assert!(matches!(e, Error::InvalidConfig(_)), "{e:?}"),
            Ok(account) => {
                account.create_environment("blue").unwrap();
                account.create_environment("green").unwrap();
                let pipeline = Pipeline::builder()
                    .image_builder(Arc::new(account.image_builder()))
                    .environment(account.environment("blue").unwrap())
                    .environment(account.environment("green").unwrap())
                    .dns(Arc::new(account.dns()))
                    .build()
                    .unwrap();
                let revision = account.push("main", "x", "a").unwrap();
                let run = rt.block_on(tokio::time::timeout(Duration::from_secs(3600), pipeline.run(revision)));
                if let Ok(record) = run {
                    let record = record.unwrap();
                    prop_assert!(record.is_complete());
                }
            }
        }
    }

    /// Any poll policy: intervals never panic; a wait under a policy that fails validation is an
    /// `InvalidConfig` error before its first call.
    #[test]
    fn any_poll_policy_is_used_or_refused_without_panicking(
        first in any_duration(),
        max in any_duration(),
        growth in any_fraction(),
        jitter in any_fraction(),
        lead in any_fraction(),
        elapsed in any_duration(),
        previous in proptest::option::of(any_duration()),
        expected in proptest::option::of(any_duration()),
    ) {
        let policy = PollPolicy::default().first(first).max(max).growth(growth).jitter(jitter).lead(lead);
        let _ = policy.next_interval(elapsed, previous, expected);
        let valid = policy.validate().is_ok();
        let rt = runtime();
        let calls = std::cell::Cell::new(0u32);
        let result = rt.block_on(async {
            let wait = Wait::new(&policy, "test", Duration::from_secs(3600)).expected(expected);
            tokio::time::timeout(
                Duration::from_secs(7200),
                wait.until(|| {
                    calls.set(calls.get() + 1);
                    let n = calls.get();
                    async move { Ok(if n >= 3 { Check::Ready(()) } else { Check::Pending }) }
                }),
            )
            .await
        });
        if valid {
            prop_assert!(!matches!(result, Ok(Err(Error::InvalidConfig(_)))));
        } else {
            prop_assert!(matches!(result, Ok(Err(Error::InvalidConfig(_)))), "{result:?}");
            prop_assert_eq!(calls.get(), 0, "no call under a refused policy");
        }
    }

    /// Any retry policy, health check, deadlines and canary: the pipeline builds or refuses with a
    /// typed error, and a refused pipeline made no call to the account.
    #[test]
    fn a_pipeline_validates_every_setting_at_build(
        attempts in any::<u32>(),
        call_timeout in any_duration(),
        request_timeout in any_duration(),
        interval in any_duration(),
        expected_status in any::<u16>(),
        successes in any::<u32>(),
        threshold in any::<u32>(),
        verify in any_duration(),
        steps in proptest::collection::vec(any::<u8>(), 0..6),
        bake in any_duration(),
    ) {
        let rt = runtime();
        let _enter = rt.enter();
        let account = Account::new();
        account.create_environment("blue").unwrap();
        account.create_environment("green").unwrap();
        let built = Pipeline::builder()
            .image_builder(Arc::new(account.image_builder()))
            .environment(account.environment("blue").unwrap())
            .environment(account.environment("green").unwrap())
            .dns(Arc::new(account.dns()))
            .strategy(DeployStrategy::Canary(Canary::default().steps(steps).bake(bake)))
            .retry_policy(RetryPolicy::default().max_attempts(attempts).call_timeout(call_timeout))
            .health_check(HealthCheck::default().request_timeout(request_timeout).interval(interval).expected_status(expected_status).consecutive_successes(successes).failure_threshold(threshold))
            .deadlines(Deadlines::default().verify(verify))
            .build();
        match built {
            Err(e) => {
                prop_assert!(matches!(e, Error::InvalidConfig(_) | Error::InvalidInput(_)), "{e:?}");
                let calls: u32 = Op::ALL.iter().map(|op| account.calls(*op)).sum();
                prop_assert_eq!(calls, 0);
            }
            Ok(pipeline) => {
                let revision = account.push("main", "x", "a").unwrap();
                let run = rt.block_on(tokio::time::timeout(Duration::from_secs(24 * 3600), pipeline.run(revision)));
                if let Ok(record) = run {
                    let record = record.unwrap();
                    prop_assert!(record.is_complete());
                    prop_assert!(!matches!(record.outcome, Outcome::Running));
                }
            }
        }
    }
}
