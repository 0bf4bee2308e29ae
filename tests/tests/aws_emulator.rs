//! The AWS backends against the local emulator (moto_server). Run through `bash scripts/test`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use sendy_cd::aws::Route53Dns;
use sendy_cd::conformance::{self, DnsHarness, Patience};
use sendy_cd::wait::PollPolicy;
use sendy_cd::{DnsSwitch, Result, SetIdentifier};
use sendy_cd_tests::emulator;

fn quick() -> Patience {
    let poll =
        PollPolicy { first: Duration::from_millis(50), max: Duration::from_millis(200), ..PollPolicy::default() };
    Patience { poll, deadline: Duration::from_secs(60) }
}

/// A hosted zone with `app.sendy.test` CNAME records `blue` (weight 100) and `green` (weight 0).
async fn weighted_zone(r53: &aws_sdk_route53::Client) -> String {
    let zone =
        r53.create_hosted_zone().name("sendy.test").caller_reference(emulator::unique("zone")).send().await.unwrap();
    let zone_id = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_owned();
    let record = |id: &str, weight: i64| {
        let set = ResourceRecordSet::builder()
            .name("app.sendy.test")
            .r#type(RrType::Cname)
            .set_identifier(id)
            .weight(weight)
            .ttl(300)
            .resource_records(ResourceRecord::builder().value(format!("{id}.lb.sendy.test")).build().unwrap())
            .build()
            .unwrap();
        Change::builder().action(ChangeAction::Create).resource_record_set(set).build().unwrap()
    };
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(ChangeBatch::builder().changes(record("blue", 100)).changes(record("green", 0)).build().unwrap())
        .send()
        .await
        .unwrap();
    zone_id
}

struct Route53Harness(Arc<Route53Dns>);

#[async_trait]
impl DnsHarness for Route53Harness {
    fn dns(&self) -> Arc<dyn DnsSwitch> {
        self.0.clone()
    }
    async fn set_identifiers(&self) -> Result<(SetIdentifier, SetIdentifier)> {
        Ok((SetIdentifier::parse("blue")?, SetIdentifier::parse("green")?))
    }
    fn patience(&self) -> Patience {
        quick()
    }
    /// moto answers INSYNC for any change id; AWS answers NoSuchChange (tested in `aws_mocked`).
    fn knows_unknown_changes(&self) -> bool {
        false
    }
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn route53_dns_conforms() {
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let r53 = aws_sdk_route53::Client::new(config.sdk_config());
    let zone = weighted_zone(&r53).await;
    let dns = Route53Dns::new(&config, &zone, "app.sendy.test").unwrap().record_type("CNAME").unwrap();
    conformance::dns(&Route53Harness(Arc::new(dns))).await;

    // Each change kept the records' targets and set the TTL to 60 s.
    let sets = r53.list_resource_record_sets().hosted_zone_id(&zone).send().await.unwrap();
    let weighted: Vec<_> = sets.resource_record_sets().iter().filter(|s| s.set_identifier().is_some()).collect();
    assert_eq!(weighted.len(), 2);
    for set in weighted {
        assert_eq!(set.ttl(), Some(60), "{set:?}");
        let id = set.set_identifier().unwrap();
        assert_eq!(set.resource_records()[0].value(), format!("{id}.lb.sendy.test"));
    }
}

const TINY_TEMPLATE: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": { "DesiredCount": { "Type": "String", "Default": "1" } },
  "Resources": {
    "Queue": { "Type": "AWS::SQS::Queue", "Properties": { "DelaySeconds": { "Ref": "DesiredCount" } } }
  },
  "Outputs": { "ServiceUrl": { "Value": "http://app.sendy.test/" } }
}"#;

struct CfnHarness(Arc<sendy_cd::aws::CloudFormationStack>, aws_sdk_cloudformation::Client);

#[async_trait]
impl conformance::StackHarness for CfnHarness {
    fn stack(&self) -> Arc<dyn sendy_cd::Stack> {
        self.0.clone()
    }
    /// Created with CreateStack: moto leaves a stack created through a change set without outputs.
    async fn existing(&self) -> Result<sendy_cd::StackName> {
        let name = sendy_cd::StackName::parse(emulator::unique("conformance"))?;
        self.1.create_stack().stack_name(name.as_str()).template_body(TINY_TEMPLATE).send().await.unwrap();
        Ok(name)
    }
    fn change(&self, n: u32) -> sendy_cd::StackChange {
        sendy_cd::StackChange {
            parameters: sendy_cd::StackParameters::new().with("DesiredCount", (n + 1).to_string()).unwrap(),
            template: None,
        }
    }
    fn patience(&self) -> Patience {
        quick()
    }
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn cloudformation_stack_conforms() {
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let stack = sendy_cd::aws::CloudFormationStack::new(&config).plan_polling(quick().poll, Duration::from_secs(30));
    let cfn = aws_sdk_cloudformation::Client::new(config.sdk_config());
    conformance::stack(&CfnHarness(Arc::new(stack), cfn)).await;
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run through `bash scripts/test`"]
async fn cloudformation_creates_a_stack_through_a_create_change_set() {
    use sendy_cd::{Plan, PlanKind, Stack, StackChange, StackName, StackParameters, StackStatus};
    let _emulator = emulator::acquire().await;
    let config = emulator::config().await;
    let stack = sendy_cd::aws::CloudFormationStack::new(&config).plan_polling(quick().poll, Duration::from_secs(30));
    let name = StackName::parse("created-by-plan").unwrap();
    let change = StackChange {
        parameters: StackParameters::new().with("DesiredCount", "1").unwrap(),
        template: Some(TINY_TEMPLATE.into()),
    };
    let Plan::Ready(plan) = stack.plan(&name, &change).await.unwrap() else { panic!("a create is a plan") };
    assert_eq!(plan.kind, PlanKind::Create);
    assert_eq!(plan.changes.len(), 1, "{:?}", plan.changes);
    assert_eq!(plan.changes[0].logical_id, "Queue");
    assert_eq!(plan.changes[0].action, sendy_cd::ChangeAction::Add);
    stack.apply(&plan).await.unwrap();
    assert_eq!(stack.status(&plan).await.unwrap(), StackStatus::Complete);
    // The stack now exists: the same change again is NoChanges (moto refuses the empty change set).
    assert_eq!(stack.plan(&name, &StackChange { template: None, ..change }).await.unwrap(), Plan::NoChanges);
}
