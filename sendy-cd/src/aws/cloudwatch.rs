//! [`MetricSource`] on CloudWatch `GetMetricData`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};

use super::AwsConfig;
use super::error::from_sdk;
use crate::analysis::{Measure, MetricRequest, MetricSource, Series};
use crate::error::{Error, Result};
use crate::model::EnvironmentName;

/// One CloudWatch metric statistic: namespace, metric name, dimensions and statistic (`Sum`,
/// `Average`, `p99`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricQuery {
    /// The namespace, such as `AWS/ApplicationELB`.
    pub namespace: String,
    /// The metric's name, such as `RequestCount`.
    pub metric_name: String,
    /// Its dimensions, name and value.
    pub dimensions: Vec<(String, String)>,
    /// The statistic: `Sum`, `Average`, `Maximum`, `p50`, `p99`, ...
    pub stat: String,
}

impl MetricQuery {
    /// A statistic of a metric, without dimensions.
    pub fn new(namespace: impl Into<String>, metric_name: impl Into<String>, stat: impl Into<String>) -> Self {
        MetricQuery {
            namespace: namespace.into(),
            metric_name: metric_name.into(),
            dimensions: vec![],
            stat: stat.into(),
        }
    }

    /// With one more dimension.
    #[must_use]
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.dimensions.push((name.into(), value.into()));
        self
    }
}

/// How one environment's measures are read.
#[derive(Clone, Debug, Default)]
struct Sources {
    /// The ALB and target group of the environment's service, for the built-in measures.
    target_group: Option<(String, String)>,
    /// Measures the user named.
    named: BTreeMap<String, MetricQuery>,
}

/// The environments' metrics from CloudWatch, as a [`MetricSource`].
///
/// The built-in measures come from the Application Load Balancer's target group of each
/// environment (namespace `AWS/ApplicationELB`, dimensions `LoadBalancer` and `TargetGroup`):
/// [`Measure::Requests`] is `RequestCount` (Sum), [`Measure::ErrorRate`] is
/// `HTTPCode_Target_5XX_Count` (Sum) over `RequestCount` (computed here, so a period without
/// requests has no value rather than a division by zero), [`Measure::LatencyP50`] and
/// [`Measure::LatencyP99`] are `TargetResponseTime` p50 and p99 converted to milliseconds.
/// [`Measure::Named`] reads the query given to [`CloudWatchMetricsBuilder::metric`] for that
/// environment.
///
/// A fetch is **one** `GetMetricData` request for every measure of every environment (more only
/// when CloudWatch pages its answer). CloudWatch's periods sit on multiples of the period (whole
/// minutes): the window starts at the first period boundary at or after the request's start. ALB
/// metrics arrive a minute or two late, so the newest periods may have no data yet (NaN); each fetch
/// reads the whole window again, and fills them in once CloudWatch has them.
///
/// ```
/// # async fn f() -> sendy_cd::Result<()> {
/// use sendy_cd::aws::{AwsConfig, CloudWatchMetrics, MetricQuery};
/// let config = AwsConfig::builder().region("us-east-1").load().await?;
/// let metrics = CloudWatchMetrics::builder()
///     .target_group("blue", "app/shop/50dc6c495c0c9188", "targetgroup/shop-blue/73e2d6bc24d8a067")
///     .target_group("green", "app/shop/50dc6c495c0c9188", "targetgroup/shop-green/0f4a29d1b6c5e3a8")
///     .metric("green", "checkout_failures", MetricQuery::new("Shop", "CheckoutFailures", "Sum").dimension("Env", "green"))
///     .build(&config)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct CloudWatchMetrics {
    client: aws_sdk_cloudwatch::Client,
    environments: BTreeMap<EnvironmentName, Sources>,
}

/// Builds a [`CloudWatchMetrics`]: the setters never fail, [`build`](Self::build) checks everything.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct CloudWatchMetricsBuilder {
    target_groups: Vec<(String, String, String)>,
    named: Vec<(String, String, MetricQuery)>,
}

impl CloudWatchMetrics {
    /// Starts describing where each environment's metrics are.
    pub fn builder() -> CloudWatchMetricsBuilder {
        CloudWatchMetricsBuilder::default()
    }
}

impl CloudWatchMetricsBuilder {
    /// Environment `env`'s service is target group `target_group` (its ARN suffix,
    /// `targetgroup/<name>/<id>`) of load balancer `load_balancer` (`app/<name>/<id>`).
    pub fn target_group(mut self, env: &str, load_balancer: &str, target_group: &str) -> Self {
        self.target_groups.push((env.to_owned(), load_balancer.to_owned(), target_group.to_owned()));
        self
    }

    /// [`Measure::Named`]`(name)` of environment `env` is `query`.
    pub fn metric(mut self, env: &str, name: &str, query: MetricQuery) -> Self {
        self.named.push((env.to_owned(), name.to_owned(), query));
        self
    }

    /// The source, with a client from `config`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an environment name that does not parse, an empty load balancer,
    /// target group, namespace, metric name or statistic, or an environment given twice.
    pub fn build(self, config: &AwsConfig) -> Result<CloudWatchMetrics> {
        self.build_with_client(aws_sdk_cloudwatch::Client::new(config.sdk_config()))
    }

    /// As [`build`](Self::build), with a client of your own.
    ///
    /// # Errors
    /// As [`build`](Self::build).
    pub fn build_with_client(self, client: aws_sdk_cloudwatch::Client) -> Result<CloudWatchMetrics> {
        let bad = |m: String| Err(Error::InvalidConfig(format!("CloudWatch metrics: {m}")));
        let mut environments: BTreeMap<EnvironmentName, Sources> = BTreeMap::new();
        for (env, lb, tg) in self.target_groups {
            let name = EnvironmentName::parse(&env)?;
            if lb.trim().is_empty() || tg.trim().is_empty() {
                return bad(format!("{env}: an empty load balancer or target group"));
            }
            let sources = environments.entry(name).or_default();
            if sources.target_group.replace((lb, tg)).is_some() {
                return bad(format!("{env}: two target groups"));
            }
        }
        for (env, name, query) in self.named {
            let env_name = EnvironmentName::parse(&env)?;
            if [&query.namespace, &query.metric_name, &query.stat].iter().any(|s| s.trim().is_empty())
                || name.is_empty()
            {
                return bad(format!("{env}: metric {name:?} needs a name, a namespace, a metric name and a statistic"));
            }
            if environments.entry(env_name).or_default().named.insert(name.clone(), query).is_some() {
                return bad(format!("{env}: metric {name:?} given twice"));
            }
        }
        if environments.is_empty() {
            return bad("no environment".into());
        }
        Ok(CloudWatchMetrics { client, environments })
    }
}

/// What one query id stands for.
#[derive(Clone, Copy)]
enum Part {
    /// The value as it is, times a factor (seconds to milliseconds).
    Value(f64),
    /// The numerator of the error rate.
    Errors,
    /// The denominator of the error rate.
    Requests,
}

fn alb(lb: &str, tg: &str, metric: &str, stat: &str) -> MetricQuery {
    MetricQuery::new("AWS/ApplicationELB", metric, stat).dimension("LoadBalancer", lb).dimension("TargetGroup", tg)
}

impl CloudWatchMetrics {
    /// The CloudWatch queries of `measure` for environment `env`.
    fn queries(&self, env: &EnvironmentName, measure: &Measure) -> Result<Vec<(Part, MetricQuery)>> {
        let sources = self
            .environments
            .get(env)
            .ok_or_else(|| Error::InvalidConfig(format!("CloudWatch metrics: no metrics for environment {env}")))?;
        let tg = || {
            sources.target_group.as_ref().ok_or_else(|| {
                Error::InvalidConfig(format!("CloudWatch metrics: {env} has no target group for {measure}"))
            })
        };
        Ok(match measure {
            Measure::Requests => {
                let (lb, tg) = tg()?;
                vec![(Part::Value(1.0), alb(lb, tg, "RequestCount", "Sum"))]
            }
            Measure::ErrorRate => {
                let (lb, tg) = tg()?;
                vec![
                    (Part::Errors, alb(lb, tg, "HTTPCode_Target_5XX_Count", "Sum")),
                    (Part::Requests, alb(lb, tg, "RequestCount", "Sum")),
                ]
            }
            Measure::LatencyP50 | Measure::LatencyP99 => {
                let (lb, tg) = tg()?;
                let stat = if *measure == Measure::LatencyP50 { "p50" } else { "p99" };
                vec![(Part::Value(1000.0), alb(lb, tg, "TargetResponseTime", stat))]
            }
            Measure::Named(name) => {
                let query = sources.named.get(name).ok_or_else(|| {
                    Error::InvalidConfig(format!("CloudWatch metrics: {env} has no metric named {name:?}"))
                })?;
                vec![(Part::Value(1.0), query.clone())]
            }
        })
    }
}

#[async_trait]
impl MetricSource for CloudWatchMetrics {
    async fn fetch(&self, request: &MetricRequest) -> Result<Vec<Series>> {
        request.validate()?;
        let period = i32::try_from(request.period.as_secs())
            .map_err(|_| Error::InvalidConfig(format!("metric period {:?} is too long", request.period)))?;
        let n = request.periods as usize;
        // Query ids: `q<environment>_<measure>_<part>` (CloudWatch wants a lowercase letter first).
        let mut parts: BTreeMap<String, (usize, usize, Part)> = BTreeMap::new();
        let mut queries = Vec::new();
        for (e, env) in request.environments.iter().enumerate() {
            for (m, measure) in request.measures.iter().enumerate() {
                for (p, (part, q)) in self.queries(env, measure)?.into_iter().enumerate() {
                    let id = format!("q{e}_{m}_{p}");
                    let mut metric = Metric::builder().namespace(&q.namespace).metric_name(&q.metric_name);
                    for (name, value) in &q.dimensions {
                        metric = metric.dimensions(Dimension::builder().name(name).value(value).build());
                    }
                    let stat = MetricStat::builder().metric(metric.build()).period(period).stat(&q.stat).build();
                    queries.push(MetricDataQuery::builder().id(&id).metric_stat(stat).return_data(true).build());
                    parts.insert(id, (e, m, part));
                }
            }
        }
        // CloudWatch's data points sit on multiples of the period (whole minutes for 60 s): the
        // window starts at the first one at or after the request's start, so no period mixes in
        // traffic from before it.
        let start = request.start.as_second();
        let start = start.saturating_add((i64::from(period) - start.rem_euclid(i64::from(period))) % i64::from(period));
        let end = start.saturating_add(i64::from(period).saturating_mul(n as i64));
        // Per (environment, measure): the values, and the error rate's two sums.
        let mut values = vec![vec![vec![f64::NAN; n]; request.measures.len()]; request.environments.len()];
        let mut ratios: BTreeMap<(usize, usize), [Vec<f64>; 2]> = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .get_metric_data()
                .set_metric_data_queries(Some(queries.clone()))
                .start_time(aws_smithy_types::DateTime::from_secs(start))
                .end_time(aws_smithy_types::DateTime::from_secs(end))
                .scan_by(ScanBy::TimestampAscending)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| from_sdk("cloudwatch:GetMetricData", e))?;
            for result in out.metric_data_results() {
                let Some(&(e, m, part)) = result.id().and_then(|id| parts.get(id)) else { continue };
                for (ts, value) in result.timestamps().iter().zip(result.values()) {
                    let offset = ts.secs().saturating_sub(start);
                    if offset < 0 || offset % i64::from(period) != 0 {
                        continue;
                    }
                    let Ok(k) = usize::try_from(offset / i64::from(period)) else { continue };
                    if k >= n {
                        continue;
                    }
                    let slot = match part {
                        Part::Value(factor) => {
                            values[e][m][k] = value * factor;
                            continue;
                        }
                        Part::Errors => 0,
                        Part::Requests => 1,
                    };
                    // The error rate's two sums: no errors reported is 0, no requests reported no rate.
                    let sums = ratios.entry((e, m)).or_insert_with(|| [vec![0.0; n], vec![f64::NAN; n]]);
                    sums[slot][k] = *value;
                }
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        // An error rate: errors over requests where there were requests (no errors reported is 0).
        for ((e, m), [errors, requests]) in ratios {
            for k in 0..n {
                if requests[k] > 0.0 {
                    values[e][m][k] = errors[k] / requests[k];
                }
            }
        }
        Ok(request
            .environments
            .iter()
            .enumerate()
            .flat_map(|(e, env)| {
                let values = &values[e];
                request
                    .measures
                    .iter()
                    .enumerate()
                    .map(move |(m, measure)| Series::new(env.clone(), measure.clone(), values[m].clone()))
            })
            .collect())
    }
}

/// CloudWatch alarms as an [`AlarmSource`](crate::analysis::AlarmSource): one `DescribeAlarms` of
/// the names asked (metric and composite alarms, state `ALARM`; 100 names a request, as CloudWatch
/// takes them), whatever pages CloudWatch answers in.
#[derive(Clone, Debug)]
pub struct CloudWatchAlarms {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchAlarms {
    /// The alarms of the account and region of `config`.
    pub fn new(config: &AwsConfig) -> Self {
        CloudWatchAlarms { client: aws_sdk_cloudwatch::Client::new(config.sdk_config()) }
    }

    /// As [`new`](Self::new), with a client of your own.
    pub fn from_client(client: aws_sdk_cloudwatch::Client) -> Self {
        CloudWatchAlarms { client }
    }
}

#[async_trait]
impl crate::analysis::AlarmSource for CloudWatchAlarms {
    async fn firing(&self, names: &[String]) -> Result<Vec<String>> {
        use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
        let mut firing = Vec::new();
        for chunk in names.chunks(100) {
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .client
                    .describe_alarms()
                    .set_alarm_names(Some(chunk.to_vec()))
                    .alarm_types(AlarmType::MetricAlarm)
                    .alarm_types(AlarmType::CompositeAlarm)
                    .state_value(StateValue::Alarm)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| from_sdk("cloudwatch:DescribeAlarms", e))?;
                let in_alarm = |state: Option<&StateValue>| state == Some(&StateValue::Alarm);
                firing.extend(
                    out.metric_alarms()
                        .iter()
                        .filter(|a| in_alarm(a.state_value()))
                        .filter_map(|a| a.alarm_name().map(str::to_owned)),
                );
                firing.extend(
                    out.composite_alarms()
                        .iter()
                        .filter(|a| in_alarm(a.state_value()))
                        .filter_map(|a| a.alarm_name().map(str::to_owned)),
                );
                token = out.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        firing.retain(|n| names.contains(n));
        firing.sort();
        firing.dedup();
        Ok(firing)
    }
}
