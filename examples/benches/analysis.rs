//! Judge quality on the simulated account's metrics (figures in `docs/benchmarks.md`).
//!
//! `cargo bench -p sendy-cd-examples --bench analysis` judges 1,000 canaries per scenario; without
//! `--bench` (as under `cargo test --benches`) 40 run as a smoke test. `SENDY_BENCH_SEED` (default
//! 42) seeds the metrics; `SENDY_BENCH_CANARIES` overrides the count.
//!
//! Each canary is a first canary step: a service receiving 200 requests/s in all, 10 % of it on the
//! canary, the rest on the baseline, one-minute intervals, a window of 10 intervals. Healthy, both
//! serve 1 % errors and a 200 ms p99; a regression doubles the canary's errors, or raises its p99 by
//! half. Three judges see the same metrics: the sequential judge (the default), Kayenta's fixed
//! window (Mann-Whitney at the end of the window), and a static-threshold alarm gate on the canary
//! alone (ECS deployment alarms: errors above 2 %, or p99 above 300 ms, three intervals in a row).

use std::time::Duration;

use sendy_cd::EnvironmentName;
use sendy_cd::analysis::{Analysis, Measure, Method, Metric, MetricRequest, MetricSource, Verdict};
use sendy_cd::memory::{SimulatedMetrics, Traffic};

const WINDOW: u32 = 10;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let canaries: u64 =
        std::env::var("SENDY_BENCH_CANARIES").ok().and_then(|s| s.parse().ok()).unwrap_or(if full { 1000 } else { 40 });
    let seed: u64 = std::env::var("SENDY_BENCH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(42);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime");
    let judges = [
        ("sequential (default)", Analysis::default()),
        ("fixed window (Kayenta)", Analysis::default().method(Method::FixedWindow { confidence: 0.98 })),
        (
            "static threshold (alarm)",
            Analysis::default()
                .metrics([Metric::error_rate().threshold(0.02), Metric::latency_p99().threshold(300.0)])
                .method(Method::Threshold { datapoints: 3 }),
        ),
    ];
    let scenarios: [(&str, Traffic, bool); 3] = [
        ("healthy", Traffic::default(), false),
        ("2x error rate", Traffic::default().errors_times(2.0), true),
        ("+50 % p99 latency", Traffic::default().p99_times(1.5), true),
    ];
    println!("{canaries} canaries per scenario, seed {seed}, window {WINDOW} intervals of 60 s");
    println!("| judge | scenario | right verdicts | wrong | median intervals to a verdict | p90 |");
    println!("|---|---|---|---|---|---|");
    let mut medians = Vec::new();
    for (name, analysis) in &judges {
        let mut all_times = Vec::new();
        for (scenario, traffic, regression) in &scenarios {
            let (mut right, mut times) = (0u64, Vec::new());
            for i in 0..canaries {
                let data = runtime.block_on(metrics(seed.wrapping_mul(1_000_003).wrapping_add(i), *traffic));
                let (verdict, intervals) = first_verdict(analysis, &data);
                let failed = verdict != Verdict::Pass;
                if failed == *regression {
                    right += 1;
                }
                times.push(intervals);
            }
            times.sort_unstable();
            let wrong = canaries - right;
            println!(
                "| {name} | {scenario} | {right} ({:.1} %) | {wrong} ({:.1} %) | {} | {} |",
                pct(right, canaries),
                pct(wrong, canaries),
                times[times.len() / 2],
                times[times.len() * 9 / 10]
            );
            all_times.extend(times);
        }
        all_times.sort_unstable();
        medians.push((name, all_times[all_times.len() / 2]));
    }
    for (name, median) in &medians {
        println!("{name}: median {median} intervals to a verdict over every scenario");
    }
}

fn pct(n: u64, of: u64) -> f64 {
    n as f64 * 100.0 / of as f64
}

/// The window's error rate and p99 of the baseline and the canary, one batched fetch.
async fn metrics(seed: u64, canary: Traffic) -> Vec<(Vec<f64>, Vec<f64>)> {
    let (blue, green) = (EnvironmentName::parse("blue").unwrap(), EnvironmentName::parse("green").unwrap());
    let source = SimulatedMetrics::new(seed, 200.0).expect("a valid rate");
    source.serve(&blue, Traffic::default(), 90).expect("valid traffic");
    source.serve(&green, canary, 10).expect("valid traffic");
    let measures = vec![Measure::ErrorRate, Measure::LatencyP99];
    let request = MetricRequest::new(
        vec![blue.clone(), green.clone()],
        measures.clone(),
        jiff::Timestamp::from_second(1_800_000_000).unwrap(),
        Duration::from_secs(60),
        WINDOW,
    );
    let series = source.fetch(&request).await.expect("simulated metrics");
    let values = |env: &EnvironmentName, m: &Measure| {
        series.iter().find(|s| &s.environment == env && &s.measure == m).expect("a series").values.clone()
    };
    measures.iter().map(|m| (values(&blue, m), values(&green, m))).collect()
}

/// The verdict the judge reaches looking after each interval, and after how many.
fn first_verdict(analysis: &Analysis, data: &[(Vec<f64>, Vec<f64>)]) -> (Verdict, u32) {
    for n in 1..=WINDOW as usize {
        let prefix: Vec<(Vec<f64>, Vec<f64>)> = data.iter().map(|(b, c)| (b[..n].to_vec(), c[..n].to_vec())).collect();
        if let Some(v) = analysis.judge(&prefix).verdict {
            return (v, n as u32);
        }
    }
    unreachable!("every judge decides at the end of the window")
}
