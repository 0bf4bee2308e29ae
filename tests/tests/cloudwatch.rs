//! `CloudWatchMetrics`: the request it sends and how it reads the answer, with aws-smithy-mocks.
//!
//! Not against the emulator: the Rust SDK speaks CloudWatch's Smithy RPC v2 CBOR protocol
//! (`/service/GraniteServiceVersion20100801/operation/GetMetricData`), which moto 5.2.1 does not
//! route (it answers 404; tried with `PutMetricData` when this file was written).

use std::time::Duration;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::error::ErrorMetadata;
use aws_sdk_cloudwatch::operation::get_metric_data::{GetMetricDataError, GetMetricDataOutput};
use aws_sdk_cloudwatch::types::MetricDataResult;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use sendy_cd::analysis::{Measure, MetricRequest, MetricSource};
use sendy_cd::aws::{CloudWatchMetrics, MetricQuery};
use sendy_cd::{EnvironmentName, Error};

const LB: &str = "app/shop/50dc6c495c0c9188";
const START: i64 = 1_800_000_000;

fn env(name: &str) -> EnvironmentName {
    EnvironmentName::parse(name).unwrap()
}

fn source(client: Client) -> CloudWatchMetrics {
    CloudWatchMetrics::builder()
        .target_group("blue", LB, "targetgroup/shop-blue/1")
        .target_group("green", LB, "targetgroup/shop-green/2")
        .metric("green", "checkouts", MetricQuery::new("Shop", "Checkouts", "Sum").dimension("Env", "green"))
        .build_with_client(client)
        .unwrap()
}

fn request(measures: Vec<Measure>, periods: u32) -> MetricRequest {
    MetricRequest::new(
        vec![env("blue"), env("green")],
        measures,
        jiff::Timestamp::from_second(START).unwrap(),
        Duration::from_secs(60),
        periods,
    )
}

fn result(id: &str, points: &[(i64, f64)]) -> MetricDataResult {
    let mut r = MetricDataResult::builder().id(id);
    for (t, v) in points {
        r = r.timestamps(DateTime::from_secs(START + t)).values(*v);
    }
    r.build()
}

/// One request for every measure of both environments: the queries, their statistics and
/// dimensions, the window; the answer spread over two pages; the error rate computed from its two
/// sums, the latency in milliseconds, a period without data NaN.
#[tokio::test]
async fn one_request_reads_every_measure_of_both_environments_across_pages() {
    let first = mock!(Client::get_metric_data)
        .match_requests(|r| {
            let q = r.metric_data_queries();
            let stat = |id: &str| {
                let s = q.iter().find(|x| x.id() == Some(id)).and_then(|x| x.metric_stat()).unwrap();
                let m = s.metric().unwrap();
                let dims: Vec<_> = m.dimensions().iter().map(|d| (d.name().unwrap(), d.value().unwrap())).collect();
                (
                    m.namespace().unwrap().to_owned(),
                    m.metric_name().unwrap().to_owned(),
                    s.stat().unwrap().to_owned(),
                    s.period(),
                    dims.len(),
                )
            };
            r.next_token().is_none()
                && q.len() == 8
                && r.start_time() == Some(&DateTime::from_secs(START))
                && r.end_time() == Some(&DateTime::from_secs(START + 180))
                && stat("q0_0_0")
                    == ("AWS/ApplicationELB".into(), "HTTPCode_Target_5XX_Count".into(), "Sum".into(), Some(60), 2)
                && stat("q0_0_1") == ("AWS/ApplicationELB".into(), "RequestCount".into(), "Sum".into(), Some(60), 2)
                && stat("q1_1_0")
                    == ("AWS/ApplicationELB".into(), "TargetResponseTime".into(), "p99".into(), Some(60), 2)
                && stat("q0_2_0") == ("Shop".into(), "Checkouts".into(), "Sum".into(), Some(60), 1)
                && stat("q1_2_0") == ("Shop".into(), "Checkouts".into(), "Sum".into(), Some(60), 0)
                && q.iter()
                    .filter_map(|x| x.metric_stat()?.metric())
                    .flat_map(|m| m.dimensions())
                    .any(|d| d.name() == Some("TargetGroup") && d.value() == Some("targetgroup/shop-green/2"))
        })
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(result("q0_0_0", &[(0, 5.0), (60, 10.0)]))
                .metric_data_results(result("q0_0_1", &[(0, 1000.0), (60, 1000.0), (120, 500.0)]))
                .metric_data_results(result("q0_1_0", &[(0, 0.2), (60, 0.25), (120, 0.2)]))
                .next_token("page-2")
                .build()
        });
    let second = mock!(Client::get_metric_data)
        .match_requests(|r| r.next_token() == Some("page-2") && r.metric_data_queries().len() == 8)
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(result("q1_0_0", &[(60, 3.0)]))
                .metric_data_results(result("q1_0_1", &[(0, 100.0), (60, 100.0)]))
                .metric_data_results(result("q1_1_0", &[(0, 0.6), (120, 0.9)]))
                .metric_data_results(result("q1_2_0", &[(0, 42.0), (30, 99.0), (180, 1.0)]))
                .build()
        });
    let cw = source(mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second]));
    let measures = vec![Measure::ErrorRate, Measure::LatencyP99, Measure::Named("checkouts".into())];
    // Blue has no `checkouts`: asking for it is a configuration error before any request.
    let err = cw.fetch(&request(measures.clone(), 3)).await.unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig(m) if m.contains("blue has no metric named")), "{err}");
    assert_eq!(first.num_calls(), 0);

    let cw = CloudWatchMetrics::builder()
        .target_group("blue", LB, "targetgroup/shop-blue/1")
        .target_group("green", LB, "targetgroup/shop-green/2")
        .metric("blue", "checkouts", MetricQuery::new("Shop", "Checkouts", "Sum").dimension("Env", "blue"))
        .metric("green", "checkouts", MetricQuery::new("Shop", "Checkouts", "Sum"))
        .build_with_client(mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second]))
        .unwrap();
    // A start 25 s past the minute: the window starts at the next whole minute, as the mock expects.
    let mut unaligned = request(measures, 3);
    unaligned.start = jiff::Timestamp::from_second(START - 35).unwrap();
    let series = cw.fetch(&unaligned).await.unwrap();
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1), "one request, and the second page");
    let values =
        |e: &str, m: usize| series.iter().filter(|s| s.environment.as_str() == e).nth(m).unwrap().values.clone();
    let same = |a: &[f64], b: &[f64]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x.is_nan() && y.is_nan()) || (x - y).abs() < 1e-9)
    };
    assert!(
        same(&values("blue", 0), &[0.005, 0.01, 0.0]),
        "errors over requests; none reported is 0: {:?}",
        values("blue", 0)
    );
    assert!(same(&values("blue", 1), &[200.0, 250.0, 200.0]), "seconds to ms: {:?}", values("blue", 1));
    assert!(same(&values("green", 0), &[0.0, 0.03, f64::NAN]), "no requests, no rate: {:?}", values("green", 0));
    assert!(same(&values("green", 1), &[600.0, f64::NAN, 900.0]), "{:?}", values("green", 1));
    assert!(
        same(&values("green", 2), &[42.0, f64::NAN, f64::NAN]),
        "off-period and late points dropped: {:?}",
        values("green", 2)
    );
}

#[tokio::test]
async fn throttling_is_retryable_and_bad_settings_are_refused() {
    let rule = mock!(Client::get_metric_data).then_error(|| {
        GetMetricDataError::generic(ErrorMetadata::builder().code("Throttling").message("Rate exceeded").build())
    });
    let cw = source(mock_client!(aws_sdk_cloudwatch, [&rule]));
    let err = cw.fetch(&request(vec![Measure::Requests], 2)).await.unwrap_err();
    assert!(matches!(err, Error::Throttled(_)) && err.is_retryable(), "{err:?}");
    assert_eq!(err.code(), Some("Throttling"));

    let client = || mock_client!(aws_sdk_cloudwatch, [&rule]);
    let refused = |b: sendy_cd::aws::CloudWatchMetricsBuilder| b.build_with_client(client()).unwrap_err();
    assert!(matches!(refused(CloudWatchMetrics::builder()), Error::InvalidConfig(_)));
    assert!(matches!(refused(CloudWatchMetrics::builder().target_group("Blue!", LB, "tg")), Error::InvalidInput(_)));
    assert!(matches!(refused(CloudWatchMetrics::builder().target_group("blue", "", "tg")), Error::InvalidConfig(_)));
    let twice = CloudWatchMetrics::builder().target_group("blue", LB, "a").target_group("blue", LB, "b");
    assert!(matches!(refused(twice), Error::InvalidConfig(_)));
    let nameless = CloudWatchMetrics::builder().metric("blue", "x", MetricQuery::new("", "M", "Sum"));
    assert!(matches!(refused(nameless), Error::InvalidConfig(_)));
    let calls = rule.num_calls();
    let sub_second = MetricRequest::new(
        vec![env("blue")],
        vec![Measure::Requests],
        jiff::Timestamp::from_second(START).unwrap(),
        Duration::from_millis(500),
        2,
    );
    assert!(matches!(cw.fetch(&sub_second).await, Err(Error::InvalidConfig(_))));
    assert_eq!(rule.num_calls(), calls, "refused before any request");
}

/// `DescribeAlarms` of the names asked, metric and composite alarms in `ALARM`, across pages.
#[tokio::test]
async fn alarms_in_alarm_are_read_across_pages() {
    use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
    use aws_sdk_cloudwatch::types::{AlarmType, CompositeAlarm, MetricAlarm, StateValue};
    use sendy_cd::analysis::AlarmSource;
    use sendy_cd::aws::CloudWatchAlarms;
    let asks = |r: &aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsInput| {
        r.alarm_names() == ["checkout-5xx", "latency-p99", "deps"]
            && r.alarm_types() == [AlarmType::MetricAlarm, AlarmType::CompositeAlarm]
            && r.state_value() == Some(&StateValue::Alarm)
    };
    let first =
        mock!(Client::describe_alarms).match_requests(move |r| asks(r) && r.next_token().is_none()).then_output(|| {
            DescribeAlarmsOutput::builder()
                .metric_alarms(MetricAlarm::builder().alarm_name("checkout-5xx").state_value(StateValue::Alarm).build())
                .next_token("more")
                .build()
        });
    let second = mock!(Client::describe_alarms)
        .match_requests(move |r| asks(r) && r.next_token() == Some("more"))
        .then_output(|| {
            DescribeAlarmsOutput::builder()
                .composite_alarms(CompositeAlarm::builder().alarm_name("deps").state_value(StateValue::Alarm).build())
                // An answer outside the state asked for is not counted.
                .metric_alarms(MetricAlarm::builder().alarm_name("latency-p99").state_value(StateValue::Ok).build())
                .build()
        });
    let alarms = CloudWatchAlarms::from_client(mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second]));
    let names: Vec<String> = ["checkout-5xx", "latency-p99", "deps"].map(String::from).to_vec();
    assert_eq!(alarms.firing(&names).await.unwrap(), ["checkout-5xx", "deps"]);
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}
