use super::*;
use crate::memory::{SimulatedMetrics, Traffic};

fn env(name: &str) -> EnvironmentName {
    EnvironmentName::parse(name).unwrap()
}

fn analysis(method: Method) -> Analysis {
    Analysis { method, ..Analysis::default() }
}

/// `n` intervals of the two default metrics: error rate and p99, the canary's scaled by the factors,
/// with a small alternating wobble so that variances are not zero.
fn data(n: usize, error_factor: f64, p99_factor: f64) -> Vec<(Vec<f64>, Vec<f64>)> {
    let wobble = |i: usize| if i.is_multiple_of(2) { 1.02 } else { 0.98 };
    let series = |base: f64, factor: f64, phase: usize| (0..n).map(|i| base * factor * wobble(i + phase)).collect();
    vec![(series(0.01, 1.0, 0), series(0.01, error_factor, 1)), (series(200.0, 1.0, 0), series(200.0, p99_factor, 1))]
}

#[test]
fn bad_settings_are_refused_before_any_fetch() {
    let ok = Analysis::default();
    ok.validate().unwrap();
    let cases: Vec<(Analysis, &str)> = vec![
        (Analysis { metrics: vec![], ..ok.clone() }, "no metrics"),
        (Analysis { metrics: vec![Metric::latency_p99().tolerance(-0.1)], ..ok.clone() }, "tolerance"),
        (Analysis { metrics: vec![Metric::latency_p99().tolerance(f64::NAN)], ..ok.clone() }, "tolerance"),
        (Analysis { metrics: vec![Metric::latency_p99().min_change(-1.0)], ..ok.clone() }, "min_change"),
        (Analysis { metrics: vec![Metric::latency_p99().weight(0.0)], ..ok.clone() }, "weight"),
        (Analysis { method: Method::Threshold { datapoints: 3 }, ..ok.clone() }, "threshold"),
        (
            Analysis {
                metrics: vec![Metric::latency_p99().threshold(1.0)],
                method: Method::Threshold { datapoints: 0 },
                ..ok.clone()
            },
            "datapoints",
        ),
        (Analysis { interval: Duration::from_millis(10), ..ok.clone() }, "interval"),
        (Analysis { min_intervals: 0, ..ok.clone() }, "min_intervals"),
        (Analysis { min_intervals: 11, ..ok.clone() }, "min_intervals"),
        (Analysis { max_intervals: MAX_INTERVALS + 1, ..ok.clone() }, "min_intervals"),
        (Analysis { method: Method::Sequential { alpha: 0.0 }, ..ok.clone() }, "alpha"),
        (Analysis { method: Method::Sequential { alpha: 1.0 }, ..ok.clone() }, "alpha"),
        (Analysis { method: Method::FixedWindow { confidence: 1.5 }, ..ok.clone() }, "confidence"),
        (Analysis { pass_score: 101.0, ..ok.clone() }, "scores"),
        (Analysis { marginal_score: 96.0, ..ok.clone() }, "scores"),
    ];
    for (bad, word) in cases {
        let err = bad.validate().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
        assert!(err.to_string().contains(word), "{word}: {err}");
    }
}

#[test]
fn the_sequential_judge_waits_then_passes_a_healthy_canary() {
    let a = Analysis::default();
    for n in 0..3 {
        let j = a.judge(&data(n, 1.0, 1.0));
        assert_eq!(j.verdict, None, "no verdict before min_intervals ({n})");
    }
    let j = a.judge(&data(3, 1.0, 1.0));
    assert_eq!(j.verdict, Some(Verdict::Pass), "{j:#?}");
    assert_eq!((j.intervals, j.score), (3, 100.0));
    assert!(j.metrics.iter().all(|m| m.verdict == Some(Verdict::Pass)));
    assert!(j.metrics[1].statistic.contains("confidence sequence"), "{}", j.metrics[1].statistic);
}

#[test]
fn the_sequential_judge_fails_a_regression_as_soon_as_allowed() {
    let a = Analysis::default();
    // Twice the errors: the error rate is critical, so the whole analysis fails with score 0.
    let j = a.judge(&data(3, 2.0, 1.0));
    assert_eq!(j.verdict, Some(Verdict::Fail), "{j:#?}");
    assert_eq!(j.score, 0.0);
    assert_eq!(j.metrics[0].verdict, Some(Verdict::Fail));
    assert!((j.metrics[0].change - 0.01).abs() < 0.001, "{}", j.metrics[0].change);
    // p99 50 % higher: not critical, weight 1 of 2, so the best score is 50: a failure.
    let j = a.judge(&data(3, 1.0, 1.5));
    assert_eq!(j.metrics[1].verdict, Some(Verdict::Fail), "{j:#?}");
    assert_eq!(j.verdict, Some(Verdict::Fail));
    assert_eq!(j.score, 50.0);
}

#[test]
fn a_better_canary_passes_and_a_decrease_is_judged_when_it_is_the_bad_direction() {
    let a = Analysis::default();
    assert_eq!(a.judge(&data(3, 0.5, 0.7)).verdict, Some(Verdict::Pass));
    let throughput = Analysis { metrics: vec![Metric::new(Measure::Requests, Direction::Decrease)], ..a };
    let series = |factor: f64| (0..3).map(|i| 1000.0 * factor + f64::from(i)).collect::<Vec<_>>();
    assert_eq!(throughput.judge(&[(series(1.0), series(0.5))]).verdict, Some(Verdict::Fail));
    assert_eq!(throughput.judge(&[(series(1.0), series(1.5))]).verdict, Some(Verdict::Pass));
}

#[test]
fn a_metric_without_data_or_missing_from_the_data_never_passes() {
    let a = Analysis { min_intervals: 1, max_intervals: 2, ..Analysis::default() };
    let nan = vec![f64::NAN, f64::NAN];
    let j = a.judge(&[(nan.clone(), nan.clone()), (nan.clone(), nan)]);
    assert!(j.metrics.iter().all(|m| m.verdict == Some(Verdict::Marginal)), "{j:#?}");
    assert_eq!((j.score, j.verdict), (50.0, Some(Verdict::Fail)));
    assert_eq!(a.judge(&[]).verdict, None, "nothing yet");
}

#[test]
fn the_fixed_window_judges_once_at_the_end_of_the_window() {
    let a = analysis(Method::FixedWindow { confidence: 0.98 });
    assert_eq!(a.judge(&data(9, 3.0, 1.0)).verdict, None, "Kayenta waits for the whole window");
    let j = a.judge(&data(10, 3.0, 1.0));
    assert_eq!(j.verdict, Some(Verdict::Fail), "{j:#?}");
    assert!(j.metrics[0].statistic.starts_with("Mann-Whitney U = "), "{}", j.metrics[0].statistic);
    assert_eq!(a.judge(&data(10, 1.0, 1.0)).verdict, Some(Verdict::Pass));
}

#[test]
fn the_threshold_gate_fails_after_datapoints_in_a_row_and_passes_at_the_end() {
    let a = Analysis {
        metrics: vec![Metric::error_rate().threshold(0.015), Metric::latency_p99().threshold(300.0)],
        method: Method::Threshold { datapoints: 3 },
        ..Analysis::default()
    };
    assert_eq!(a.judge(&data(2, 2.0, 1.0)).verdict, None, "two breaches are not three");
    assert_eq!(a.judge(&data(3, 2.0, 1.0)).verdict, Some(Verdict::Fail));
    assert_eq!(a.judge(&data(9, 1.0, 1.0)).verdict, None, "an alarm cannot pass early");
    assert_eq!(a.judge(&data(10, 1.0, 1.0)).verdict, Some(Verdict::Pass));
}

#[test]
fn weights_and_marginal_scores_combine_as_kayenta_does() {
    // Three metrics; one non-critical failure of weight 1 out of 4: score 75, marginal.
    let a = Analysis {
        metrics: vec![
            Metric::new(Measure::LatencyP50, Direction::Increase),
            Metric::latency_p99().weight(2.0),
            Metric::new(Measure::Requests, Direction::Decrease),
        ],
        min_intervals: 2,
        max_intervals: 2,
        ..Analysis::default()
    };
    let same = vec![100.0, 101.0];
    let worse = vec![200.0, 201.0];
    let j = a.judge(&[(same.clone(), worse), (same.clone(), same.clone()), (same.clone(), same)]);
    assert_eq!(j.score, 75.0, "{j:#?}");
    assert_eq!(j.verdict, Some(Verdict::Marginal));
}

#[tokio::test(start_paused = true)]
async fn run_fetches_once_per_interval_and_stops_at_the_verdict() {
    let (blue, green) = (env("blue"), env("green"));
    let metrics = SimulatedMetrics::new(11, 200.0).unwrap();
    metrics.serve(&blue, Traffic::default(), 90).unwrap();
    metrics.serve(&green, Traffic::default().errors_times(3.0), 10).unwrap();
    let started = tokio::time::Instant::now();
    let mut seen = Vec::new();
    let start = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let j =
        Analysis::default().run(&metrics, &blue, &green, start, |j| seen.push((j.intervals, j.verdict))).await.unwrap();
    assert_eq!(j.verdict, Some(Verdict::Fail), "{j:#?}");
    assert_eq!(metrics.fetches(), j.intervals, "one batched fetch per interval");
    assert_eq!(seen.len() as u32, j.intervals);
    assert!(seen[..seen.len() - 1].iter().all(|(_, v)| v.is_none()));
    assert_eq!(started.elapsed(), Duration::from_secs(60) * j.intervals);
    assert!(j.intervals <= 4, "three times the errors is caught at once: {} intervals", j.intervals);
}

#[tokio::test]
async fn sources_refuse_requests_they_cannot_answer() {
    let metrics = SimulatedMetrics::new(1, 10.0).unwrap();
    let start = jiff::Timestamp::UNIX_EPOCH;
    for (period, periods) in [
        (Duration::from_millis(1500), 3),
        (Duration::ZERO, 3),
        (Duration::from_secs(60), 0),
        (Duration::from_secs(60), MAX_PERIODS + 1),
        (Duration::from_secs(60), u32::MAX),
    ] {
        let req = MetricRequest::new(vec![env("a")], vec![Measure::Requests], start, period, periods);
        assert!(matches!(metrics.fetch(&req).await, Err(Error::InvalidConfig(_))), "{period:?} x {periods}");
    }
    assert_eq!(metrics.fetches(), 0);
}

#[tokio::test(start_paused = true)]
async fn run_refuses_bad_settings_without_fetching() {
    let metrics = SimulatedMetrics::new(1, 10.0).unwrap();
    let bad = Analysis { metrics: vec![], ..Analysis::default() };
    let err = bad.run(&metrics, &env("a"), &env("b"), jiff::Timestamp::UNIX_EPOCH, |_| {}).await.unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)));
    assert_eq!(metrics.fetches(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_account_answers_for_the_revision_each_environment_serves() {
    use crate::memory::{Account, Behavior, Op};
    use crate::{Deployer, DnsSwitch, TrafficSplit};
    let account = Account::new();
    account.create_environment("blue").unwrap();
    account.create_environment("green").unwrap();
    let good = account.push("main", "Good", "Ada").unwrap();
    let bad = account.push("main", "Slow", "Ada").unwrap();
    account.set_behavior(&bad.commit, Behavior::default().traffic(Traffic::default().p99_times(3.0)));
    for (name, rev) in [("blue", &good), ("green", &bad)] {
        let image = account.image_for(&rev.commit).unwrap();
        let deployer = account.deployer(name).unwrap();
        let rollout = deployer.deploy(&image).await.unwrap();
        while !deployer.status(&rollout).await.unwrap().is_final() {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }
    let dns = account.dns();
    let set = |name: &str| crate::model::SetIdentifier::parse(name).unwrap();
    let split = TrafficSplit::new([(set("blue"), 90), (set("green"), 10)]).unwrap();
    dns.set_weights(&split).await.unwrap();
    let source = account.metrics(200.0).unwrap();
    let req = MetricRequest::new(
        vec![env("blue"), env("green")],
        vec![Measure::Requests, Measure::LatencyP99],
        jiff::Timestamp::from_second(1_800_000_000).unwrap(),
        Duration::from_secs(60),
        20,
    );
    let series = source.fetch(&req).await.unwrap();
    let mean = |i: usize| series[i].values.iter().sum::<f64>() / 20.0;
    assert!(mean(0) > 8.0 * mean(2), "blue has nine times green's requests: {} vs {}", mean(0), mean(2));
    assert!(mean(3) > 2.5 * mean(1), "green's p99 is three times blue's: {} vs {}", mean(3), mean(1));
    assert_eq!(account.calls(Op::MetricsFetch), 1);
}

/// The judge's quality on simulated metrics, a small version of `--bench analysis` (seeded, so the
/// same figures every run): no healthy canary fails, every doubled error rate and +50 % p99 is
/// caught, and the sequential judge decides in fewer intervals than the window at the median.
#[tokio::test]
async fn the_sequential_judge_separates_healthy_from_regressed_canaries() {
    let (blue, green) = (env("blue"), env("green"));
    let a = Analysis::default();
    let mut times = Vec::new();
    for (canary, regression) in [
        (Traffic::default(), false),
        (Traffic::default().errors_times(2.0), true),
        (Traffic::default().p99_times(1.5), true),
    ] {
        for seed in 0..150 {
            let metrics = SimulatedMetrics::new(seed, 200.0).unwrap();
            metrics.serve(&blue, Traffic::default(), 90).unwrap();
            metrics.serve(&green, canary, 10).unwrap();
            let req = MetricRequest::new(
                vec![blue.clone(), green.clone()],
                vec![Measure::ErrorRate, Measure::LatencyP99],
                jiff::Timestamp::from_second(1_800_000_000).unwrap(),
                Duration::from_secs(60),
                10,
            );
            let s = metrics.fetch(&req).await.unwrap();
            let (verdict, n) = (1..=10)
                .find_map(|n| {
                    let data = [
                        (s[0].values[..n].to_vec(), s[2].values[..n].to_vec()),
                        (s[1].values[..n].to_vec(), s[3].values[..n].to_vec()),
                    ];
                    a.judge(&data).verdict.map(|v| (v, n))
                })
                .unwrap();
            assert_eq!(verdict != Verdict::Pass, regression, "seed {seed}, {canary:?}: {verdict:?}");
            times.push(n);
        }
    }
    times.sort_unstable();
    assert!(times[times.len() / 2] <= 5, "median intervals to a verdict: {}", times[times.len() / 2]);
}
