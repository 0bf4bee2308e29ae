"""One ECS image rollout the AWS CLI way, for the request-count benchmark: register-task-definition,
update-service, then `wait services-stable` (the CLI's waiter, from botocore; the delay between polls
is shortened to 1 s, which changes how long it takes, not what one poll costs).

Usage: cli_rollout.py ENDPOINT TASK_DEFINITION_ARN IMAGE
"""

import sys

import boto3

endpoint, task_definition_arn, image = sys.argv[1:4]
ecs = boto3.client("ecs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
td = ecs.describe_task_definition(taskDefinition=task_definition_arn)["taskDefinition"]
containers = td["containerDefinitions"]
containers[0]["image"] = image
new = ecs.register_task_definition(family=td["family"], networkMode=td["networkMode"], containerDefinitions=containers)
ecs.update_service(cluster="shop", service="api", taskDefinition=new["taskDefinition"]["taskDefinitionArn"])
ecs.get_waiter("services_stable").wait(cluster="shop", services=["api"], WaiterConfig={"Delay": 1, "MaxAttempts": 40})
