"""Checks the end-to-end test's outcome with boto3, independently of the Rust SDK.

Usage: check_e2e.py ENDPOINT ZONE_ID RECORD_NAME TARGET_ENV OTHER_ENV IMAGE
Prints what it found as JSON and exits non-zero if the state is not what a blue/green deployment of
IMAGE to TARGET_ENV should leave.
"""

import json
import sys

import boto3

endpoint, zone, name, target, other, image = sys.argv[1:7]
session = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ecs = boto3.client("ecs", **session)
route53 = boto3.client("route53", **session)

service = ecs.describe_services(cluster=f"app-{target}", services=[target])["services"][0]
task_definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
images = [c["image"] for c in task_definition["containerDefinitions"]]
sets = route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
weighted = {s["SetIdentifier"]: s for s in sets if "SetIdentifier" in s and s["Name"].rstrip(".") == name.rstrip(".")}
found = {
    "task_definition": service["taskDefinition"],
    "images": images,
    "weights": {k: v["Weight"] for k, v in weighted.items()},
    "ttls": {k: v.get("TTL") for k, v in weighted.items()},
}
print(json.dumps(found))
problems = []
if images != [image]:
    problems.append(f"{target} runs {images}, not {image}")
if found["weights"] != {target: 100, other: 0}:
    problems.append(f"weights are {found['weights']}")
if set(found["ttls"].values()) != {60}:
    problems.append(f"TTLs are {found['ttls']}")
if problems:
    sys.exit("; ".join(problems))
