//! The CloudFormation templates shipped in `deploy/` (and the emulator's) pass cfn-lint, and declare
//! what the pipeline relies on.

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

#[test]
#[ignore = "needs cfn-lint from the test environment: run through `bash scripts/test`"]
fn templates_pass_cfn_lint() {
    let python = std::env::var("SENDY_TEST_PYTHON").expect("SENDY_TEST_PYTHON: run through `bash scripts/test`");
    // cfn-lint is installed next to the test environment's python.
    let cfn_lint = std::path::Path::new(&python).with_file_name("cfn-lint");
    let out = std::process::Command::new(cfn_lint)
        .current_dir(ROOT)
        .args(["deploy/environment.yml", "deploy/dns.yml", "deploy/ecs-managed.yml", "tests/emulator/environment.json"])
        .output()
        .expect("cfn-lint runs");
    assert!(
        out.status.success(),
        "cfn-lint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_environment_template_has_what_the_pipeline_needs() {
    let template = std::fs::read_to_string(format!("{ROOT}/deploy/environment.yml")).unwrap();
    for needed in [
        "  ImageUri:\n    Type: String",
        "  ServiceUrl:\n",
        "DeploymentCircuitBreaker:\n          Enable: true\n          Rollback: true",
        "Type: AWS::ElasticLoadBalancingV2::Listener",
        "Type: AWS::Logs::LogGroup",
        "RequiresCompatibilities: [FARGATE]",
    ] {
        assert!(template.contains(needed), "deploy/environment.yml lacks {needed:?}");
    }
    let dns = std::fs::read_to_string(format!("{ROOT}/deploy/dns.yml")).unwrap();
    assert_eq!(dns.matches("TTL: \"60\"").count(), 2, "both weighted records have a 60 s TTL");
}

#[test]
fn the_ecs_managed_template_has_what_ecs_and_the_pipeline_need() {
    let template = std::fs::read_to_string(format!("{ROOT}/deploy/ecs-managed.yml")).unwrap();
    for needed in [
        "Strategy: !Ref Strategy",
        "AllowedValues: [CANARY, LINEAR, BLUE_GREEN]",
        "AlternateTargetGroupArn: !Ref GreenTargetGroup",
        "ProductionListenerRule: !Ref ProductionRule",
        "TestListenerRule: !Ref TestRule",
        "RoleArn: !GetAtt InfrastructureRole.Arn",
        "AmazonECSInfrastructureRolePolicyForLoadBalancers",
        "Port: 8080",
        "  ServiceUrl:\n",
        "  TestUrl:\n",
        "  BlueTargetGroupArn:\n",
        "  GreenTargetGroupArn:\n",
        "DeploymentCircuitBreaker:\n          Enable: true\n          Rollback: true",
    ] {
        assert!(template.contains(needed), "deploy/ecs-managed.yml lacks {needed:?}");
    }
    assert_eq!(template.matches("Type: AWS::ElasticLoadBalancingV2::ListenerRule").count(), 2);
}
