//! The AWS backends against `aws-smithy-mocks` clients: the answers the emulator never gives
//! (pending changes, rollbacks, failed rollouts and builds, throttling).

use std::time::Duration;

use aws_sdk_route53::error::ErrorMetadata;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use sendy_cd::aws::Route53Dns;
use sendy_cd::wait::{Check, PollPolicy, Wait};
use sendy_cd::{ChangeStatus, DnsSwitch, Error, Id};

fn throttling() -> ErrorMetadata {
    ErrorMetadata::builder().code("Throttling").message("Rate exceeded").build()
}

mod route53 {
    use aws_sdk_route53::Client;
    use aws_sdk_route53::operation::get_change::{GetChangeError, GetChangeOutput};
    use aws_sdk_route53::operation::list_resource_record_sets::{
        ListResourceRecordSetsError, ListResourceRecordSetsOutput,
    };
    use aws_sdk_route53::types::{ChangeInfo, ResourceRecord, ResourceRecordSet, RrType};

    use super::*;

    fn info(status: aws_sdk_route53::types::ChangeStatus) -> ChangeInfo {
        ChangeInfo::builder()
            .id("/change/C123")
            .status(status)
            .submitted_at(aws_smithy_types::DateTime::from_secs(0))
            .build()
            .unwrap()
    }

    fn records() -> ListResourceRecordSetsOutput {
        let set = |id: &str, w: i64| {
            ResourceRecordSet::builder()
                .name("app.sendy.test.")
                .r#type(RrType::Cname)
                .set_identifier(id)
                .weight(w)
                .ttl(60)
                .resource_records(ResourceRecord::builder().value(format!("{id}.lb")).build().unwrap())
                .build()
                .unwrap()
        };
        ListResourceRecordSetsOutput::builder()
            .resource_record_sets(set("blue", 100))
            .resource_record_sets(set("green", 0))
            .is_truncated(false)
            .max_items(100)
            .build()
            .unwrap()
    }

    fn dns(client: Client) -> Route53Dns {
        Route53Dns::builder("Z1", "app.sendy.test")
            .record_type(sendy_cd::aws::RecordType::Cname)
            .build_with_client(client)
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_is_pending_then_applied() {
        // The change id without its `/change/` prefix, as the API takes it.
        let rule = mock!(Client::get_change)
            .match_requests(|r| r.id() == Some("C123"))
            .sequence()
            .output(|| {
                GetChangeOutput::builder().change_info(info(aws_sdk_route53::types::ChangeStatus::Pending)).build()
            })
            .times(3)
            .output(|| {
                GetChangeOutput::builder().change_info(info(aws_sdk_route53::types::ChangeStatus::Insync)).build()
            })
            .build();
        let dns = dns(mock_client!(aws_sdk_route53, [&rule]));
        let change = Id::parse("/change/C123").unwrap();
        assert_eq!(dns.change_status(&change).await.unwrap(), ChangeStatus::Pending);
        let (status, stats) = Wait::new(&PollPolicy::default(), "dns", Duration::from_secs(600))
            .until(|| async {
                Ok(match dns.change_status(&change).await? {
                    ChangeStatus::Applied => Check::Ready(ChangeStatus::Applied),
                    ChangeStatus::Pending => Check::Pending,
                })
            })
            .await
            .unwrap();
        assert_eq!(status, ChangeStatus::Applied);
        assert_eq!(stats.calls, 3);
        assert_eq!(rule.num_calls(), 4);
    }

    /// The weighted records span two pages: the second request starts where the first page said
    /// (`NextRecordName`/`NextRecordType`/`NextRecordIdentifier`), and the weights of both pages are read.
    #[tokio::test]
    async fn weights_are_read_across_pages() {
        let set = |id: &str, w: i64| {
            ResourceRecordSet::builder()
                .name("app.sendy.test.")
                .r#type(RrType::Cname)
                .set_identifier(id)
                .weight(w)
                .ttl(60)
                .resource_records(ResourceRecord::builder().value(format!("{id}.lb")).build().unwrap())
                .build()
                .unwrap()
        };
        let first = mock!(Client::list_resource_record_sets)
            .match_requests(|r| {
                r.hosted_zone_id() == Some("Z1")
                    && r.start_record_name() == Some("app.sendy.test.")
                    && r.start_record_identifier().is_none()
            })
            .then_output(move || {
                ListResourceRecordSetsOutput::builder()
                    .resource_record_sets(set("blue", 30))
                    .is_truncated(true)
                    .next_record_name("app.sendy.test.")
                    .next_record_type(RrType::Cname)
                    .next_record_identifier("green")
                    .max_items(1)
                    .build()
                    .unwrap()
            });
        let second = mock!(Client::list_resource_record_sets)
            .match_requests(|r| {
                r.start_record_identifier() == Some("green") && r.start_record_type() == Some(&RrType::Cname)
            })
            .then_output(move || {
                ListResourceRecordSetsOutput::builder()
                    .resource_record_sets(set("green", 70))
                    .is_truncated(false)
                    .max_items(1)
                    .build()
                    .unwrap()
            });
        let dns = dns(mock_client!(aws_sdk_route53, RuleMode::MatchAny, [&first, &second]));
        let weights = dns.weights().await.unwrap();
        assert_eq!(weights.to_string(), "blue=30 green=70");
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn an_unknown_change_is_not_found() {
        // As the SDK deserializes it: the modeled error with its code in the metadata.
        let rule = mock!(Client::get_change).then_error(|| {
            let meta = ErrorMetadata::builder().code("NoSuchChange").message("no such change").build();
            GetChangeError::NoSuchChange(
                aws_sdk_route53::types::error::NoSuchChange::builder().message("no such change").meta(meta).build(),
            )
        });
        let err = dns(mock_client!(aws_sdk_route53, [&rule])).change_status(&Id::parse("/change/X").unwrap()).await;
        assert!(matches!(err, Err(Error::NotFound { .. })), "{err:?}");
    }

    #[tokio::test]
    async fn throttling_is_retried_then_succeeds() {
        let rule = mock!(Client::list_resource_record_sets)
            .sequence()
            .error(|| ListResourceRecordSetsError::generic(throttling()))
            .times(2)
            .output(records)
            .build();
        let dns = dns(mock_client!(aws_sdk_route53, RuleMode::Sequential, [&rule]));
        let weights = dns.weights().await.unwrap();
        assert_eq!(weights.to_string(), "blue=100 green=0");
        assert_eq!(rule.num_calls(), 3, "two throttled attempts, then one that worked");
    }

    #[tokio::test]
    async fn throttling_past_the_sdk_retries_is_a_retryable_error() {
        let rule = mock!(Client::list_resource_record_sets)
            .sequence()
            .error(|| ListResourceRecordSetsError::generic(throttling()))
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_route53, RuleMode::Sequential, [&rule], |c| c
            .retry_config(aws_sdk_route53::config::retry::RetryConfig::standard().with_max_attempts(2)));
        let err = dns(client).weights().await.unwrap_err();
        assert!(matches!(err, Error::Throttled(_)), "{err:?}");
        assert!(err.is_retryable());
        assert!(err.to_string().contains("route53:ListResourceRecordSets: Throttling: Rate exceeded"), "{err}");
        assert_eq!(rule.num_calls(), 2);
    }

    #[test]
    fn record_types_parse_from_their_names() {
        use sendy_cd::aws::RecordType;
        assert_eq!("CNAME".parse::<RecordType>().unwrap(), RecordType::Cname);
        assert_eq!("AAAA".parse::<RecordType>().unwrap(), RecordType::Aaaa);
        assert!(matches!("MX".parse::<RecordType>(), Err(Error::InvalidConfig(_))));
    }

    /// Issue 8, defect 6: two records with one set identifier (`name` and `name.`, which AWS treats
    /// as one) are an error naming both, never "last one wins".
    #[tokio::test]
    async fn two_records_with_one_set_identifier_are_an_error_naming_both() {
        let rule = mock!(Client::list_resource_record_sets).then_output(|| {
            let set = |name: &str, id: &str, w: i64| {
                ResourceRecordSet::builder()
                    .name(name)
                    .r#type(RrType::Cname)
                    .set_identifier(id)
                    .weight(w)
                    .ttl(60)
                    .resource_records(ResourceRecord::builder().value(format!("{id}.lb")).build().unwrap())
                    .build()
                    .unwrap()
            };
            ListResourceRecordSetsOutput::builder()
                .resource_record_sets(set("app.sendy.test", "blue", 100))
                .resource_record_sets(set("app.sendy.test.", "blue", 0))
                .resource_record_sets(set("app.sendy.test.", "green", 100))
                .is_truncated(false)
                .max_items(100)
                .build()
                .unwrap()
        });
        let dns = dns(mock_client!(aws_sdk_route53, [&rule]));
        let err = dns.weights().await.unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("\"blue\""), "{text}");
        assert!(text.contains("app.sendy.test CNAME weight Some(100)"), "{text}");
        assert!(text.contains("app.sendy.test. CNAME weight Some(0)"), "{text}");
    }

    /// Alias records (to two load balancers): the weight change keeps each record's alias target and
    /// sends no TTL and no values (Route 53 refuses either on an alias), all in one batch of UPSERTs.
    #[tokio::test]
    async fn an_alias_record_keeps_its_target_and_gets_no_ttl() {
        use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsOutput;
        use aws_sdk_route53::types::{AliasTarget, ChangeAction as Action};
        let alias = |id: &str, w: i64| {
            ResourceRecordSet::builder()
                .name("app.sendy.test.")
                .r#type(RrType::A)
                .set_identifier(id)
                .weight(w)
                .alias_target(
                    AliasTarget::builder()
                        .hosted_zone_id("Z35SXDOTRQ7X7K")
                        .dns_name(format!("{id}-lb.us-east-1.elb.amazonaws.com"))
                        .evaluate_target_health(true)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        };
        let list = mock!(Client::list_resource_record_sets).then_output(move || {
            ListResourceRecordSetsOutput::builder()
                .resource_record_sets(alias("blue", 100))
                .resource_record_sets(alias("green", 0))
                .is_truncated(false)
                .max_items(100)
                .build()
                .unwrap()
        });
        let change = mock!(Client::change_resource_record_sets)
            .match_requests(|r| {
                let changes = r.change_batch().map(|b| b.changes()).unwrap_or_default();
                changes.len() == 2
                    && changes.iter().all(|c| {
                        let set = c.resource_record_set();
                        let target = set.and_then(|s| s.alias_target());
                        c.action() == &Action::Upsert
                            && set.is_some_and(|s| s.ttl().is_none() && s.resource_records().is_empty())
                            && target.is_some_and(|t| {
                                t.dns_name().ends_with("-lb.us-east-1.elb.amazonaws.com") && t.evaluate_target_health()
                            })
                    })
                    && changes.iter().any(|c| {
                        c.resource_record_set()
                            .is_some_and(|s| s.set_identifier() == Some("green") && s.weight() == Some(100))
                    })
            })
            .then_output(|| {
                ChangeResourceRecordSetsOutput::builder()
                    .change_info(info(aws_sdk_route53::types::ChangeStatus::Pending))
                    .build()
            });
        let client = mock_client!(aws_sdk_route53, RuleMode::MatchAny, [&list, &change]);
        let dns = Route53Dns::builder("Z1", "app.sendy.test").build_with_client(client).unwrap();
        let split = sendy_cd::TrafficSplit::new([
            (sendy_cd::SetIdentifier::parse("blue").unwrap(), 0),
            (sendy_cd::SetIdentifier::parse("green").unwrap(), 100),
        ])
        .unwrap();
        let id = dns.set_weights(&split).await.unwrap();
        assert_eq!(id.as_str(), "/change/C123");
        assert_eq!(change.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_unknown_set_identifier_is_refused_before_any_change() {
        let list = mock!(Client::list_resource_record_sets).then_output(records);
        let change = mock!(Client::change_resource_record_sets).then_error(|| unreachable!("no change is sent"));
        let dns = dns(mock_client!(aws_sdk_route53, RuleMode::MatchAny, [&list, &change]));
        let split = sendy_cd::TrafficSplit::new([(sendy_cd::SetIdentifier::parse("purple").unwrap(), 100)]).unwrap();
        assert!(matches!(dns.set_weights(&split).await, Err(Error::Conflict(_))));
        assert_eq!(change.num_calls(), 0);
    }
}

mod cloudformation {
    use aws_sdk_cloudformation::Client;
    use aws_sdk_cloudformation::operation::create_change_set::CreateChangeSetOutput;
    use aws_sdk_cloudformation::operation::delete_change_set::DeleteChangeSetOutput;
    use aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput;
    use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
    use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
    use aws_sdk_cloudformation::types::{ChangeSetStatus, Parameter, ResourceStatus, StackEvent, StackStatus as Cfn};
    use aws_smithy_types::DateTime;
    use sendy_cd::aws::CloudFormationStack;
    use sendy_cd::{Plan, PlanKind, Stack, StackChange, StackName, StackParameters, StackPlan, StackStatus};

    use super::*;

    const CHANGE_SET: &str = "arn:aws:cloudformation:us-east-1:1:changeSet/sendy-cd-1/abc";

    fn stack(status: Cfn) -> DescribeStacksOutput {
        let stack = aws_sdk_cloudformation::types::Stack::builder()
            .stack_name("app-green")
            .creation_time(DateTime::from_secs(0))
            .stack_status(status)
            .change_set_id(CHANGE_SET)
            .parameters(Parameter::builder().parameter_key("ImageUri").parameter_value("app:1").build())
            .parameters(Parameter::builder().parameter_key("DesiredCount").parameter_value("2").build())
            .build();
        DescribeStacksOutput::builder().stacks(stack).build()
    }

    fn event(n: i64, logical: &str, status: ResourceStatus, reason: &str) -> StackEvent {
        StackEvent::builder()
            .stack_id("stack/app-green/1")
            .event_id(format!("e{n}"))
            .stack_name("app-green")
            .logical_resource_id(logical)
            .timestamp(DateTime::from_secs(n))
            .resource_status(status)
            .resource_status_reason(reason)
            .build()
    }

    fn plan() -> StackPlan {
        StackPlan {
            id: Id::parse(CHANGE_SET).unwrap(),
            stack: StackName::parse("app-green").unwrap(),
            kind: PlanKind::Update,
            changes: vec![],
        }
    }

    #[tokio::test]
    async fn a_rolled_back_update_names_the_resource_that_failed_first() {
        let describe = mock!(Client::describe_stacks).then_output(|| stack(Cfn::UpdateRollbackComplete));
        // Newest first; the failure before "User Initiated" belongs to an earlier update.
        let events = mock!(Client::describe_stack_events).then_output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(event(9, "app-green", ResourceStatus::UpdateRollbackComplete, ""))
                .stack_events(event(8, "Service", ResourceStatus::UpdateFailed, "Resource update cancelled"))
                .stack_events(event(7, "TaskDefinition", ResourceStatus::UpdateFailed, "Invalid memory: 3"))
                .stack_events(event(6, "app-green", ResourceStatus::UpdateInProgress, "User Initiated"))
                .stack_events(event(5, "Cluster", ResourceStatus::UpdateFailed, "an older failure"))
                .build()
        });
        let stacks = CloudFormationStack::from_client(mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&describe, &events]
        ));
        assert_eq!(
            stacks.status(&plan()).await.unwrap(),
            StackStatus::RolledBack { resource: Some("TaskDefinition".into()), reason: "Invalid memory: 3".into() }
        );
    }

    #[tokio::test]
    async fn an_update_in_progress_is_in_progress() {
        let describe = mock!(Client::describe_stacks).then_output(|| stack(Cfn::UpdateInProgress));
        let stacks = CloudFormationStack::from_client(mock_client!(aws_sdk_cloudformation, [&describe]));
        assert_eq!(
            stacks.status(&plan()).await.unwrap(),
            StackStatus::InProgress { status: "UPDATE_IN_PROGRESS".into() }
        );
    }

    fn other_change_set_stack(status: Cfn) -> DescribeStacksOutput {
        let stack = aws_sdk_cloudformation::types::Stack::builder()
            .stack_name("app-green")
            .creation_time(DateTime::from_secs(0))
            .stack_status(status)
            .change_set_id("arn:aws:cloudformation:us-east-1:1:changeSet/someone-else/def")
            .build();
        DescribeStacksOutput::builder().stacks(stack).build()
    }

    fn change_set(status: aws_sdk_cloudformation::types::ExecutionStatus) -> DescribeChangeSetOutput {
        DescribeChangeSetOutput::builder()
            .change_set_id(CHANGE_SET)
            .status(ChangeSetStatus::CreateComplete)
            .execution_status(status)
            .build()
    }

    /// Issue 8, defect 4: right after ExecuteChangeSet the change set may still read AVAILABLE (the
    /// stack's newest change set is not ours yet): that is pending, not a conflict.
    #[tokio::test]
    async fn a_change_set_still_available_after_execute_is_pending() {
        use aws_sdk_cloudformation::types::ExecutionStatus;
        let describe = mock!(Client::describe_stacks).then_output(|| other_change_set_stack(Cfn::UpdateComplete));
        let cs = mock!(Client::describe_change_set)
            .match_requests(|r| r.change_set_name() == Some(CHANGE_SET) && r.stack_name() == Some("app-green"))
            .then_output(|| change_set(ExecutionStatus::Available));
        let stacks = CloudFormationStack::from_client(mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&describe, &cs]
        ));
        let status = stacks.status(&plan()).await.unwrap();
        assert!(matches!(status, StackStatus::InProgress { .. }), "{status:?}");
        assert_eq!(cs.num_calls(), 1, "the change set is read by its own id");
    }

    /// When the stack's newest change set is another one, ours is judged by its own execution status.
    #[tokio::test]
    async fn a_change_set_that_is_not_the_newest_is_judged_by_its_own_status() {
        use aws_sdk_cloudformation::types::ExecutionStatus;
        for (execution, expected) in [
            (ExecutionStatus::ExecuteComplete, Some(StackStatus::Complete)),
            (ExecutionStatus::ExecuteInProgress, Some(StackStatus::InProgress { status: "UPDATE_IN_PROGRESS".into() })),
            (ExecutionStatus::Unavailable, None),
        ] {
            let describe = mock!(Client::describe_stacks).then_output(|| other_change_set_stack(Cfn::UpdateInProgress));
            let e = execution.clone();
            let cs = mock!(Client::describe_change_set).then_output(move || change_set(e.clone()));
            let stacks = CloudFormationStack::from_client(mock_client!(
                aws_sdk_cloudformation,
                RuleMode::MatchAny,
                [&describe, &cs]
            ));
            let status = stacks.status(&plan()).await;
            match expected {
                Some(expected) => assert_eq!(status.unwrap(), expected, "{execution:?}"),
                None => assert!(matches!(status, Err(Error::Conflict(_))), "{execution:?}: {status:?}"),
            }
        }
    }

    /// Issue 8, defect 3: an ExecuteChangeSet whose answer was lost is retried; CloudFormation says
    /// the change set cannot be executed in its state, and that state is "executed": applied.
    #[tokio::test]
    async fn applying_a_change_set_that_was_executed_already_succeeds() {
        use aws_sdk_cloudformation::operation::execute_change_set::ExecuteChangeSetError;
        use aws_sdk_cloudformation::types::ExecutionStatus;
        use aws_sdk_cloudformation::types::error::InvalidChangeSetStatusException;
        for (execution, applied) in [
            (ExecutionStatus::ExecuteInProgress, true),
            (ExecutionStatus::ExecuteComplete, true),
            (ExecutionStatus::Unavailable, false),
        ] {
            let execute = mock!(Client::execute_change_set)
                .match_requests(|r| r.change_set_name() == Some(CHANGE_SET) && r.stack_name() == Some("app-green"))
                .then_error(|| {
                    ExecuteChangeSetError::InvalidChangeSetStatusException(
                        InvalidChangeSetStatusException::builder()
                            .message("ChangeSet cannot be executed in its current status of [EXECUTE_IN_PROGRESS]")
                            .meta(ErrorMetadata::builder().code("InvalidChangeSetStatus").build())
                            .build(),
                    )
                });
            let e = execution.clone();
            let cs = mock!(Client::describe_change_set).then_output(move || change_set(e.clone()));
            let stacks = CloudFormationStack::from_client(mock_client!(
                aws_sdk_cloudformation,
                RuleMode::MatchAny,
                [&execute, &cs]
            ));
            let result = stacks.apply(&plan()).await;
            if applied {
                result.unwrap();
            } else {
                assert!(matches!(result, Err(Error::Conflict(_))), "{execution:?}: {result:?}");
            }
            assert_eq!((execute.num_calls(), cs.num_calls()), (1, 1), "{execution:?}");
        }
    }

    #[tokio::test]
    async fn an_empty_change_set_is_no_changes_and_is_deleted() {
        let describe = mock!(Client::describe_stacks).then_output(|| stack(Cfn::UpdateComplete));
        let create = mock!(Client::create_change_set)
            .match_requests(|r| {
                r.change_set_type() == Some(&aws_sdk_cloudformation::types::ChangeSetType::Update)
                    && r.use_previous_template() == Some(true)
                    // The parameter not given keeps its previous value.
                    && r.parameters().iter().any(|p| p.parameter_key() == Some("DesiredCount") && p.use_previous_value() == Some(true))
                    && r.parameters().iter().any(|p| p.parameter_key() == Some("ImageUri") && p.parameter_value() == Some("app:1"))
            })
            .then_output(|| CreateChangeSetOutput::builder().id(CHANGE_SET).build());
        let failed = mock!(Client::describe_change_set).then_output(|| {
            DescribeChangeSetOutput::builder()
                .status(ChangeSetStatus::Failed)
                .status_reason("The submitted information didn't contain changes. Submit different information to create a change set.")
                .build()
        });
        let delete = mock!(Client::delete_change_set)
            .match_requests(|r| r.change_set_name() == Some(CHANGE_SET) && r.stack_name() == Some("app-green"))
            .then_output(|| DeleteChangeSetOutput::builder().build());
        let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&describe, &create, &failed, &delete]);
        let stacks = CloudFormationStack::from_client(client);
        let change =
            StackChange { parameters: StackParameters::parse([("ImageUri", "app:1")]).unwrap(), template: None };
        let plan = stacks.plan(&StackName::parse("app-green").unwrap(), &change).await.unwrap();
        assert_eq!(plan, Plan::NoChanges);
        assert_eq!((create.num_calls(), delete.num_calls()), (1, 1));
    }

    /// A change set's changes are read across its pages: the second `DescribeChangeSet` carries the
    /// first page's token, and the plan lists the changes of both (fails when the loop stops at the
    /// first page).
    #[tokio::test]
    async fn a_plan_reads_every_page_of_its_change_set() {
        use aws_sdk_cloudformation::types::{Change, ChangeAction as CfnAction, ResourceChange};
        let change = |logical: &str| {
            Change::builder()
                .resource_change(
                    ResourceChange::builder()
                        .logical_resource_id(logical)
                        .resource_type("AWS::ECS::TaskDefinition")
                        .action(CfnAction::Modify)
                        .build(),
                )
                .build()
        };
        let describe = mock!(Client::describe_stacks).then_output(|| stack(Cfn::UpdateComplete));
        let create =
            mock!(Client::create_change_set).then_output(|| CreateChangeSetOutput::builder().id(CHANGE_SET).build());
        let first =
            mock!(Client::describe_change_set).match_requests(|r| r.next_token().is_none()).then_output(move || {
                DescribeChangeSetOutput::builder()
                    .status(ChangeSetStatus::CreateComplete)
                    .changes(change("TaskDefinition"))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::describe_change_set)
            .match_requests(|r| r.next_token() == Some("page-2") && r.change_set_name() == Some(CHANGE_SET))
            .then_output(move || {
                DescribeChangeSetOutput::builder()
                    .status(ChangeSetStatus::CreateComplete)
                    .changes(change("Service"))
                    .build()
            });
        let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&describe, &create, &first, &second]);
        let stacks = CloudFormationStack::from_client(client);
        let change =
            StackChange { parameters: StackParameters::parse([("ImageUri", "app:2")]).unwrap(), template: None };
        let Plan::Ready(plan) = stacks.plan(&StackName::parse("app-green").unwrap(), &change).await.unwrap() else {
            panic!("a plan")
        };
        let logical: Vec<_> = plan.changes.iter().map(|c| c.logical_id.as_str()).collect();
        assert_eq!(logical, ["TaskDefinition", "Service"]);
        assert_eq!(second.num_calls(), 1);
    }

    /// Issue 11: a change set is named after the pipeline's key; when an earlier attempt made it (its
    /// answer lost), CreateChangeSet says it exists and that change set is described and answered:
    /// no second change set.
    #[tokio::test]
    async fn a_plan_made_once_for_a_key_answers_the_change_set_an_earlier_attempt_made() {
        let key = "shop/exec-3-abc/plan-stack/green";
        let name = format!("sendy-cd-{}", &sendy_cd::aws::idempotency_token(key)[..40]);
        let describe = mock!(Client::describe_stacks).then_output(|| stack(Cfn::UpdateComplete));
        let wanted = name.clone();
        let create = mock!(Client::create_change_set)
            .match_requests(move |r| r.change_set_name() == Some(wanted.as_str()))
            .then_error(|| {
                aws_sdk_cloudformation::operation::create_change_set::CreateChangeSetError::AlreadyExistsException(
                    aws_sdk_cloudformation::types::error::AlreadyExistsException::builder()
                        .message("ChangeSet exists")
                        .build(),
                )
            });
        let wanted = name.clone();
        let existing = mock!(Client::describe_change_set)
            .match_requests(move |r| {
                r.change_set_name() == Some(wanted.as_str()) && r.stack_name() == Some("app-green")
            })
            .then_output(|| {
                DescribeChangeSetOutput::builder()
                    .status(ChangeSetStatus::CreateComplete)
                    .changes(
                        aws_sdk_cloudformation::types::Change::builder()
                            .resource_change(
                                aws_sdk_cloudformation::types::ResourceChange::builder()
                                    .logical_resource_id("TaskDefinition")
                                    .resource_type("AWS::ECS::TaskDefinition")
                                    .action(aws_sdk_cloudformation::types::ChangeAction::Modify)
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&describe, &create, &existing]);
        let stacks = CloudFormationStack::from_client(client);
        let change =
            StackChange { parameters: StackParameters::parse([("ImageUri", "app:2")]).unwrap(), template: None };
        let plan = stacks.plan_once(&StackName::parse("app-green").unwrap(), &change, key).await.unwrap();
        let Plan::Ready(plan) = plan else { panic!("{plan:?}") };
        assert_eq!(plan.id.as_str(), name, "the change set the earlier attempt made");
        assert_eq!(plan.changes.len(), 1);
        assert_eq!((create.num_calls(), existing.num_calls()), (1, 1));
    }
}

mod codebuild {
    use aws_sdk_codebuild::Client;
    use aws_sdk_codebuild::operation::batch_get_builds::BatchGetBuildsOutput;
    use aws_sdk_codebuild::types::{Build, BuildPhase, BuildPhaseType, PhaseContext, StatusType};
    use sendy_cd::aws::CodeBuildBuilder;
    use sendy_cd::{BuildId, BuildStatus, Builder};

    use super::*;

    fn builder(client: Client) -> CodeBuildBuilder {
        let ecr = mock_client!(aws_sdk_ecr, []);
        CodeBuildBuilder::from_clients(client, ecr, "shop-api", "shop/api").unwrap()
    }

    #[tokio::test]
    async fn a_failed_build_names_its_phase_and_reason() {
        let rule = mock!(Client::batch_get_builds).then_output(|| {
            let phase = |t: BuildPhaseType, s: StatusType| BuildPhase::builder().phase_type(t).phase_status(s);
            BatchGetBuildsOutput::builder()
                .builds(
                    Build::builder()
                        .id("shop-api:1")
                        .build_status(StatusType::Failed)
                        .current_phase("COMPLETED")
                        .phases(phase(BuildPhaseType::PreBuild, StatusType::Succeeded).build())
                        .phases(
                            phase(BuildPhaseType::Build, StatusType::Failed)
                                .contexts(
                                    PhaseContext::builder()
                                        .status_code("COMMAND_EXECUTION_ERROR")
                                        .message("Error while executing command: docker build . Reason: exit status 1")
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let status =
            builder(mock_client!(aws_sdk_codebuild, [&rule])).status(&BuildId::parse("shop-api:1").unwrap()).await;
        let Ok(BuildStatus::Failed { phase, reason }) = status else { panic!("{status:?}") };
        assert_eq!(phase, "BUILD");
        assert!(reason.contains("docker build") && reason.contains("exit status 1"), "{reason}");
    }

    #[tokio::test]
    async fn a_running_build_reports_its_phase() {
        let rule = mock!(Client::batch_get_builds).then_output(|| {
            BatchGetBuildsOutput::builder()
                .builds(
                    Build::builder()
                        .id("shop-api:1")
                        .build_status(StatusType::InProgress)
                        .current_phase("BUILD")
                        .build(),
                )
                .build()
        });
        let status =
            builder(mock_client!(aws_sdk_codebuild, [&rule])).status(&BuildId::parse("shop-api:1").unwrap()).await;
        assert_eq!(status.unwrap(), BuildStatus::InProgress { phase: "BUILD".into() });
    }

    /// `start_once` sends what the buildspec needs (the commit as source version, `IMAGE_TAG`,
    /// `IMAGE_REPO_NAME`, `COMMIT_ID`) and an idempotency token made from the key: the same token on
    /// a retry, another for another key.
    #[tokio::test]
    async fn start_sends_the_overrides_and_one_idempotency_token_per_key() {
        use aws_sdk_codebuild::operation::start_build::{StartBuildInput, StartBuildOutput};
        use std::sync::{Arc, Mutex};
        let seen: Arc<Mutex<Vec<StartBuildInput>>> = Arc::default();
        let rule = {
            let seen = Arc::clone(&seen);
            mock!(Client::start_build)
                .match_requests(move |r| {
                    seen.lock().unwrap().push(r.clone());
                    true
                })
                .then_output(|| {
                    StartBuildOutput::builder().build_value(Build::builder().id("shop-api:9").build()).build()
                })
        };
        let b = builder(mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&rule]));
        let revision = sendy_cd::Revision {
            commit: sendy_cd::CommitId::parse("ab".repeat(20)).unwrap(),
            branch: sendy_cd::BranchName::parse("main").unwrap(),
            message: "x".into(),
            author: "a".into(),
            time: jiff::Timestamp::UNIX_EPOCH,
        };
        for key in ["shop/exec-1/start-build", "shop/exec-1/start-build", "shop/exec-2/start-build"] {
            assert_eq!(b.start_once(&revision, key).await.unwrap().as_str(), "shop-api:9");
        }
        b.start(&revision).await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 4);
        let tokens: Vec<_> = seen.iter().map(|r| r.idempotency_token().map(str::to_owned)).collect();
        let token = |k: &str| Some(sendy_cd::aws::idempotency_token(k));
        assert_eq!(
            tokens,
            [
                token("shop/exec-1/start-build"),
                token("shop/exec-1/start-build"),
                token("shop/exec-2/start-build"),
                None
            ]
        );
        assert_ne!(tokens[0], tokens[2]);
        // The build carries its key's token, where `find_started` looks for it.
        let keyed: Vec<_> = seen
            .iter()
            .map(|r| {
                r.environment_variables_override()
                    .iter()
                    .find(|v| v.name() == "SENDY_CD_KEY")
                    .map(|v| v.value().to_owned())
            })
            .collect();
        assert_eq!(keyed, tokens);
        for r in seen.iter() {
            assert_eq!(r.project_name(), Some("shop-api"));
            assert_eq!(r.source_version(), Some("ab".repeat(20).as_str()));
            let vars: Vec<_> = r
                .environment_variables_override()
                .iter()
                .map(|v| (v.name().to_owned(), v.value().to_owned()))
                .collect();
            assert!(vars.contains(&("COMMIT_ID".into(), "ab".repeat(20))), "{vars:?}");
            assert!(vars.contains(&("IMAGE_REPO_NAME".into(), "shop/api".into())), "{vars:?}");
            assert!(vars.iter().any(|(k, v)| k == "IMAGE_TAG" && *v == revision.image_tag()), "{vars:?}");
        }
    }

    #[tokio::test]
    async fn a_queued_build_is_queued() {
        for phase in ["QUEUED", "SUBMITTED"] {
            let rule = mock!(Client::batch_get_builds).then_output(move || {
                BatchGetBuildsOutput::builder()
                    .builds(
                        Build::builder()
                            .id("shop-api:1")
                            .build_status(StatusType::InProgress)
                            .current_phase(phase)
                            .build(),
                    )
                    .build()
            });
            let status =
                builder(mock_client!(aws_sdk_codebuild, [&rule])).status(&BuildId::parse("shop-api:1").unwrap()).await;
            assert_eq!(status.unwrap(), BuildStatus::Queued, "{phase}");
        }
    }

    fn stop_error(code: &'static str) -> aws_sdk_codebuild::operation::stop_build::StopBuildError {
        use aws_sdk_codebuild::error::ErrorMetadata;
        use aws_sdk_codebuild::operation::stop_build::StopBuildError;
        use aws_sdk_codebuild::types::error::InvalidInputException;
        let meta = ErrorMetadata::builder().code(code).message("Build is already finished").build();
        match code {
            "InvalidInputException" => StopBuildError::InvalidInputException(
                InvalidInputException::builder().message("Build is already finished").meta(meta).build(),
            ),
            _ => StopBuildError::generic(meta),
        }
    }

    #[tokio::test]
    async fn stop_sends_the_build_id_and_a_finished_build_is_stopped_already() {
        use aws_sdk_codebuild::operation::stop_build::StopBuildOutput;
        let ok = mock!(Client::stop_build)
            .match_requests(|r| r.id() == Some("shop-api:7"))
            .then_output(|| StopBuildOutput::builder().build());
        let finished = mock!(Client::stop_build)
            .match_requests(|r| r.id() == Some("shop-api:8"))
            .then_error(|| stop_error("InvalidInputException"));
        let denied = mock!(Client::stop_build)
            .match_requests(|r| r.id() == Some("shop-api:9"))
            .then_error(|| stop_error("AccessDeniedException"));
        let b = builder(mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&ok, &finished, &denied]));
        b.stop(&BuildId::parse("shop-api:7").unwrap()).await.unwrap();
        assert_eq!(ok.num_calls(), 1);
        b.stop(&BuildId::parse("shop-api:8").unwrap()).await.unwrap();
        assert_eq!(finished.num_calls(), 1);
        // Any other error is one, and keeps the service's code and the SDK error as its source.
        let err = b.stop(&BuildId::parse("shop-api:9").unwrap()).await.unwrap_err();
        assert!(matches!(err, Error::AccessDenied(_)), "{err:?}");
        assert_eq!(err.code(), Some("AccessDeniedException"));
        let source = std::error::Error::source(&err).expect("the SDK error is kept");
        assert!(
            source
                .downcast_ref::<aws_sdk_codebuild::error::SdkError<
                    aws_sdk_codebuild::operation::stop_build::StopBuildError,
                    aws_sdk_codebuild::config::http::HttpResponse,
                >>()
                .is_some(),
            "{source:?}"
        );
    }

    /// Issue 11: resume looks for the build an unanswered start may have started: the build that
    /// carries the key's token, else the newest build of the commit started since the execution
    /// began; none when neither is there (then a build is started).
    #[tokio::test]
    async fn find_started_finds_the_build_by_its_key_or_its_commit() {
        use aws_sdk_codebuild::operation::list_builds_for_project::ListBuildsForProjectOutput;
        use aws_sdk_codebuild::types::{EnvironmentType, EnvironmentVariable, ProjectEnvironment, SortOrderType};
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let since = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let key = "shop/exec-4-0123456/start-build";
        let token = sendy_cd::aws::idempotency_token(key);
        let build = |id: &str, version: &str, started: i64, key: Option<&str>| {
            let mut env = ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(aws_sdk_codebuild::types::ComputeType::BuildGeneral1Small);
            if let Some(key) = key {
                env = env.environment_variables(
                    EnvironmentVariable::builder().name("SENDY_CD_KEY").value(key).build().unwrap(),
                );
            }
            Build::builder()
                .id(id)
                .source_version(version)
                .start_time(aws_smithy_types::DateTime::from_secs(started))
                .environment(env.build().unwrap())
                .build()
        };
        let revision = sendy_cd::Revision::new(
            sendy_cd::CommitId::parse(commit).unwrap(),
            sendy_cd::BranchName::parse("main").unwrap(),
        );
        let cases: Vec<(Vec<Build>, Option<&str>)> = vec![
            // The key wins over a newer build of the same commit.
            (
                vec![
                    build("shop-api:3", commit, 1_800_000_100, None),
                    build("shop-api:2", commit, 1_800_000_050, Some(&token)),
                ],
                Some("shop-api:2"),
            ),
            // No key (a service that drops it): the newest build of the commit since then.
            (
                vec![
                    build("shop-api:3", "feedfeedfeedfeedfeedfeedfeedfeedfeedfeed", 1_800_000_100, None),
                    build("shop-api:2", commit, 1_800_000_050, None),
                    build("shop-api:1", commit, 1_700_000_000, None),
                ],
                Some("shop-api:2"),
            ),
            // Only an old build of the commit, and another commit's: none.
            (
                vec![
                    build("shop-api:3", "feedfeedfeedfeedfeedfeedfeedfeedfeedfeed", 1_800_000_100, None),
                    build("shop-api:1", commit, 1_700_000_000, None),
                ],
                None,
            ),
        ];
        for (builds, expected) in cases {
            let ids: Vec<String> = builds.iter().filter_map(|b| b.id().map(str::to_owned)).collect();
            let list = mock!(Client::list_builds_for_project)
                .match_requests(|r| {
                    r.project_name() == Some("shop-api") && r.sort_order() == Some(&SortOrderType::Descending)
                })
                .then_output(move || ListBuildsForProjectOutput::builder().set_ids(Some(ids.clone())).build());
            let wanted: Vec<String> = builds.iter().filter_map(|b| b.id().map(str::to_owned)).collect();
            let get = mock!(Client::batch_get_builds)
                .match_requests(move |r| r.ids() == wanted.as_slice())
                .then_output(move || BatchGetBuildsOutput::builder().set_builds(Some(builds.clone())).build());
            let client = mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&list, &get]);
            let found = builder(client).find_started(&revision, key, since).await.unwrap();
            assert_eq!(found.as_ref().map(BuildId::as_str), expected);
            assert_eq!((list.num_calls(), get.num_calls()), (1, 1));
        }
    }
}

mod ecs {
    use aws_sdk_ecs::Client;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
    use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionOutput;
    use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
    use aws_sdk_ecs::types::{ContainerDefinition, Deployment, DeploymentRolloutState, Service, TaskDefinition};
    use sendy_cd::aws::EcsDeployer;
    use sendy_cd::{Deployer, ImageRef, Rollout, RolloutStatus};

    use super::*;

    const TD1: &str = "arn:aws:ecs:us-east-1:1:task-definition/shop-api:1";
    const TD2: &str = "arn:aws:ecs:us-east-1:1:task-definition/shop-api:2";

    fn deployment(id: &str, status: &str, td: &str, state: DeploymentRolloutState, reason: &str) -> Deployment {
        Deployment::builder()
            .id(id)
            .status(status)
            .task_definition(td)
            .rollout_state(state)
            .rollout_state_reason(reason)
            .desired_count(4)
            .running_count(1)
            .failed_tasks(2)
            .build()
    }

    fn service(deployments: Vec<Deployment>) -> Service {
        Service::builder()
            .service_name("api")
            .service_arn("arn:aws:ecs:us-east-1:1:service/shop/api")
            .set_deployments(Some(deployments))
            .build()
    }

    fn rollout(id: &str) -> Rollout {
        Rollout { deployment_id: Id::parse(id).unwrap(), image: ImageRef::parse("shop/api:v2").unwrap() }
    }

    #[tokio::test]
    async fn a_circuit_breaker_rollback_is_a_failure() {
        let rule = mock!(Client::describe_services)
            .match_requests(|r| r.cluster() == Some("shop") && r.services() == ["api"])
            .then_output(|| {
                DescribeServicesOutput::builder()
                .services(service(vec![
                    deployment("ecs-svc/3", "PRIMARY", TD1, DeploymentRolloutState::InProgress, "rolling back"),
                    deployment(
                        "ecs-svc/2",
                        "ACTIVE",
                        TD2,
                        DeploymentRolloutState::Failed,
                        "ECS deployment circuit breaker: tasks failed to start. Rolling back to deployment ecs-svc/3.",
                    ),
                ]))
                .build()
            });
        let deployer = EcsDeployer::from_client(mock_client!(aws_sdk_ecs, [&rule]), "shop", "api").unwrap();
        let status = deployer.status(&rollout("ecs-svc/2")).await.unwrap();
        let RolloutStatus::Failed { reason, rolled_back, failed } = status else { panic!("{status:?}") };
        assert!(rolled_back, "the circuit breaker put the previous revision back");
        assert!(reason.contains("circuit breaker"), "{reason}");
        assert_eq!(failed, 2);
    }

    #[tokio::test]
    async fn a_newer_deployment_supersedes_an_unfinished_one() {
        let rule = mock!(Client::describe_services)
            .match_requests(|r| r.cluster() == Some("shop") && r.services() == ["api"])
            .then_output(|| {
                DescribeServicesOutput::builder()
                    .services(service(vec![
                        deployment("ecs-svc/9", "PRIMARY", TD1, DeploymentRolloutState::InProgress, ""),
                        deployment("ecs-svc/2", "ACTIVE", TD2, DeploymentRolloutState::InProgress, ""),
                    ]))
                    .build()
            });
        let deployer = EcsDeployer::from_client(mock_client!(aws_sdk_ecs, [&rule]), "shop", "api").unwrap();
        assert_eq!(
            deployer.status(&rollout("ecs-svc/2")).await.unwrap(),
            RolloutStatus::Superseded { by: Id::parse("ecs-svc/9").unwrap() }
        );
    }

    #[tokio::test]
    async fn one_rollout_costs_four_requests_and_pins_its_own_deployment() {
        let describe = mock!(Client::describe_services)
            .match_requests(|r| r.cluster() == Some("shop") && r.services() == ["api"])
            .then_output(|| {
                let mut s =
                    service(vec![deployment("ecs-svc/1", "PRIMARY", TD1, DeploymentRolloutState::Completed, "")]);
                s.task_definition = Some(TD1.into());
                DescribeServicesOutput::builder().services(s).build()
            });
        let td = mock!(Client::describe_task_definition).then_output(|| {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(
                    TaskDefinition::builder()
                        .family("shop-api")
                        .task_definition_arn(TD1)
                        .container_definitions(ContainerDefinition::builder().name("web").image("shop/api:v1").build())
                        .container_definitions(ContainerDefinition::builder().name("proxy").image("envoy:1.30").build())
                        .build(),
                )
                .build()
        });
        let register = mock!(Client::register_task_definition)
            .match_requests(|r| {
                let images: Vec<_> = r.container_definitions().iter().map(|c| c.image().unwrap_or_default()).collect();
                // The revision running now completed its rollout: the new one records it as last good.
                let tagged =
                    r.tags().iter().any(|t| t.key() == Some("sendy-cd:previous-good") && t.value() == Some(TD1));
                r.family() == Some("shop-api") && images == ["shop/api:v2", "envoy:1.30"] && tagged
            })
            .then_output(|| {
                RegisterTaskDefinitionOutput::builder()
                    .task_definition(TaskDefinition::builder().task_definition_arn(TD2).build())
                    .build()
            });
        let update =
            mock!(Client::update_service).match_requests(|r| r.task_definition() == Some(TD2)).then_output(|| {
                UpdateServiceOutput::builder()
                    .service(service(vec![
                        deployment("ecs-svc/2", "PRIMARY", TD2, DeploymentRolloutState::InProgress, ""),
                        deployment("ecs-svc/1", "ACTIVE", TD1, DeploymentRolloutState::Completed, ""),
                    ]))
                    .build()
            });
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&describe, &td, &register, &update]);
        let deployer = EcsDeployer::from_client(client, "shop", "api").unwrap().container("web");
        let rollout = deployer.deploy(&ImageRef::parse("shop/api:v2").unwrap()).await.unwrap();
        assert_eq!(rollout.deployment_id.as_str(), "ecs-svc/2", "pinned to the deployment its update created");
        let calls = [describe.num_calls(), td.num_calls(), register.num_calls(), update.num_calls()];
        assert_eq!(calls, [1, 1, 1, 1]);
    }

    #[tokio::test]
    async fn several_containers_need_a_name() {
        let describe = mock!(Client::describe_services)
            .match_requests(|r| r.cluster() == Some("shop") && r.services() == ["api"])
            .then_output(|| {
                let mut s = service(vec![]);
                s.task_definition = Some(TD1.into());
                DescribeServicesOutput::builder().services(s).build()
            });
        let td = mock!(Client::describe_task_definition).then_output(|| {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(
                    TaskDefinition::builder()
                        .container_definitions(ContainerDefinition::builder().name("a").image("a:1").build())
                        .container_definitions(ContainerDefinition::builder().name("b").image("b:1").build())
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&describe, &td]);
        let deployer = EcsDeployer::from_client(client, "shop", "api").unwrap();
        let err = deployer.deploy(&ImageRef::parse("a:2").unwrap()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(m) if m.contains("2 containers")));
    }

    /// Issue 11: a rollback to a revision whose rollback is already under way (a retry after a lost
    /// `UpdateService` answer) pins that deployment and sends no second `UpdateService`.
    #[tokio::test]
    async fn a_rollback_already_under_way_is_pinned_not_started_again() {
        let describe = mock!(Client::describe_services)
            .match_requests(|r| r.cluster() == Some("shop") && r.services() == ["api"])
            .then_output(|| {
                let mut s = service(vec![
                    deployment("ecs-svc/back", "PRIMARY", TD1, DeploymentRolloutState::InProgress, ""),
                    deployment("ecs-svc/bad", "ACTIVE", TD2, DeploymentRolloutState::Completed, ""),
                ]);
                s.task_definition = Some(TD1.into());
                DescribeServicesOutput::builder().services(s).build()
            });
        let td = mock!(Client::describe_task_definition)
            .match_requests(|r| r.task_definition() == Some(TD1))
            .then_output(|| {
                DescribeTaskDefinitionOutput::builder()
                    .task_definition(
                        TaskDefinition::builder()
                            .family("shop-api")
                            .task_definition_arn(TD1)
                            .container_definitions(
                                ContainerDefinition::builder().name("web").image("shop/api:v1").build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let update = mock!(Client::update_service).then_error(|| unreachable!("no second UpdateService"));
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&describe, &td, &update]);
        let deployer = EcsDeployer::from_client(client, "shop", "api").unwrap();
        let back = deployer.rollback(&sendy_cd::RollbackTarget::Revision(TD1.into())).await.unwrap();
        assert_eq!(back.deployment_id.as_str(), "ecs-svc/back");
        assert_eq!(back.image, ImageRef::parse("shop/api:v1").unwrap());
        assert_eq!(update.num_calls(), 0);
    }
}

mod codepipeline {
    use std::sync::{Arc, Mutex};

    use aws_sdk_codepipeline::Client;
    use aws_sdk_codepipeline::operation::get_pipeline_execution::GetPipelineExecutionOutput;
    use aws_sdk_codepipeline::operation::get_pipeline_state::GetPipelineStateOutput;
    use aws_sdk_codepipeline::types::{
        ActionExecution, ActionState, ErrorDetails, PipelineExecution, PipelineExecutionStatus, StageExecution,
        StageExecutionStatus, StageState,
    };
    use sendy_cd::codepipeline::{CodePipelineOutcome, CodePipelines};
    use sendy_cd::{Event, EventKind, StageOutcome};

    use super::*;

    fn stage(name: &str, status: StageExecutionStatus, error: Option<&str>) -> StageState {
        let mut state = StageState::builder().stage_name(name).latest_execution(
            StageExecution::builder().pipeline_execution_id("exec-1").status(status).build().unwrap(),
        );
        if let Some(message) = error {
            state = state.action_states(
                ActionState::builder()
                    .action_name("Image")
                    .latest_execution(
                        ActionExecution::builder()
                            .error_details(ErrorDetails::builder().message(message).build())
                            .build(),
                    )
                    .build(),
            );
        }
        state.build()
    }

    fn execution(status: PipelineExecutionStatus) -> GetPipelineExecutionOutput {
        GetPipelineExecutionOutput::builder()
            .pipeline_execution(PipelineExecution::builder().status(status).status_summary("Build failed").build())
            .build()
    }

    #[tokio::test(start_paused = true)]
    async fn an_execution_becomes_events_and_an_outcome() {
        let states = mock!(Client::get_pipeline_state)
            .match_requests(|r| r.name() == Some("shop-api"))
            .sequence()
            .output(|| {
                GetPipelineStateOutput::builder()
                    .stage_states(stage("Source", StageExecutionStatus::InProgress, None))
                    .build()
            })
            .output(|| {
                GetPipelineStateOutput::builder()
                    .stage_states(stage("Source", StageExecutionStatus::Succeeded, None))
                    .stage_states(stage("Build", StageExecutionStatus::InProgress, None))
                    .build()
            })
            .output(|| {
                GetPipelineStateOutput::builder()
                    .stage_states(stage("Source", StageExecutionStatus::Succeeded, None))
                    .stage_states(stage(
                        "Build",
                        StageExecutionStatus::Failed,
                        Some("COMMAND_EXECUTION_ERROR: docker build exited 1"),
                    ))
                    .build()
            })
            .build();
        let executions = mock!(Client::get_pipeline_execution)
            .match_requests(|r| r.pipeline_name() == Some("shop-api") && r.pipeline_execution_id() == Some("exec-1"))
            .sequence()
            .output(|| execution(PipelineExecutionStatus::InProgress))
            .times(2)
            .output(|| execution(PipelineExecutionStatus::Failed))
            .build();
        // The actions' times, by stage: Source ran 40 s, Build 95 s (two actions, overlapping).
        let actions = mock!(Client::list_action_executions)
            .match_requests(|r| {
                r.pipeline_name() == Some("shop-api")
                    && r.filter().and_then(|f| f.pipeline_execution_id()) == Some("exec-1")
            })
            .then_output(|| {
                let detail = |stage: &str, action: &str, start: i64, end: i64| {
                    aws_sdk_codepipeline::types::ActionExecutionDetail::builder()
                        .pipeline_execution_id("exec-1")
                        .stage_name(stage)
                        .action_name(action)
                        .start_time(aws_smithy_types::DateTime::from_secs(start))
                        .last_update_time(aws_smithy_types::DateTime::from_secs(end))
                        .build()
                };
                aws_sdk_codepipeline::operation::list_action_executions::ListActionExecutionsOutput::builder()
                    .action_execution_details(detail("Source", "Checkout", 1_000, 1_040))
                    .action_execution_details(detail("Build", "Image", 1_040, 1_120))
                    .action_execution_details(detail("Build", "Scan", 1_045, 1_135))
                    .build()
            });
        let client = mock_client!(aws_sdk_codepipeline, RuleMode::MatchAny, [&states, &executions, &actions]);
        let events: Arc<Mutex<Vec<Event>>> = Arc::default();
        let sink = {
            let events = events.clone();
            move |e: &Event| events.lock().unwrap().push(e.clone())
        };
        let outcome = CodePipelines::from_client(client)
            .follow("shop-api", "exec-1", &sink, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(outcome, CodePipelineOutcome::Failed { status: "Failed".into(), reason: "Build failed".into() });
        let kinds: Vec<EventKind> = events.lock().unwrap().iter().map(|e| e.kind.clone()).collect();
        let started = |name: &str| EventKind::PipelineStageStarted { name: name.into() };
        // Issue 8, defect 7: the stages keep CodePipeline's names and their real durations.
        assert_eq!(
            kinds,
            vec![
                started("Source"),
                EventKind::PipelineStageProgress { name: "Source".into(), status: "InProgress".into() },
                EventKind::PipelineStageFinished {
                    name: "Source".into(),
                    duration_ms: Some(40_000),
                    outcome: StageOutcome::Succeeded
                },
                started("Build"),
                EventKind::PipelineStageProgress { name: "Build".into(), status: "InProgress".into() },
                EventKind::PipelineStageFinished {
                    name: "Build".into(),
                    duration_ms: Some(95_000),
                    outcome: StageOutcome::Failed { reason: "COMMAND_EXECUTION_ERROR: docker build exited 1".into() }
                },
            ]
        );
        assert_eq!(executions.num_calls(), 3);
    }
}

/// Issue 10: a request count read from a recording must not pass on an empty recording or one that
/// lost lines.
mod recording {
    use sendy_cd_tests::emulator::parse_recording;

    #[test]
    fn a_recording_is_parsed_into_operations() {
        let line = r#"{"headers": {"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.DescribeServices"}, "body": "", "method": "POST", "url": "http://127.0.0.1:1/"}"#;
        assert_eq!(parse_recording(line), vec!["DescribeServices".to_owned()]);
    }

    #[test]
    #[should_panic(expected = "recorded no request")]
    fn an_empty_recording_fails() {
        parse_recording("\n");
    }

    #[test]
    #[should_panic(expected = "unreadable line")]
    fn an_unreadable_line_fails() {
        parse_recording("{\"headers\": {}}\nnot json\n");
    }
}
