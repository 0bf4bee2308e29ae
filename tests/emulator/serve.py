"""Starts moto_server (the local AWS emulator) for the tests, with ECS deployments that progress.

moto leaves ECS deployments frozen: after UpdateService with a new task definition the service keeps
its single old PRIMARY deployment, IN_PROGRESS, forever, where AWS creates a new PRIMARY deployment
for the new task definition, rolls it out and drains the old one. Our deployer pins the deployment
its UpdateService created and follows it, so the tests need that behaviour. This file, and only this
file, adds it, openly:

- UpdateService with a task definition other than the service's current one adds a new PRIMARY
  deployment of it (IN_PROGRESS, no task running, a fresh deployment: nothing is copied from the one
  before but its configuration), and marks the previous deployments ACTIVE, which stay listed, with
  the rollout state they had, while the new one rolls out (as AWS shows them while it drains them);
- a PRIMARY deployment stays IN_PROGRESS for the first `SENDY_EMULATOR_ECS_READS` DescribeServices
  (default 2) that see it *after it was created*, whoever makes them; the next read completes it
  (every desired task running) and removes the ACTIVE deployments it replaced;
- a fixture hook, through the ECS API itself: tagging the service `sendy-fixture:rollout=fail`
  makes the next read fail its PRIMARY IN_PROGRESS deployment (rolloutState FAILED, every desired
  task failed, the circuit breaker's reason), once (the tag is removed). A deployment is superseded
  the AWS way, by another UpdateService.

moto also forgets a stack's outputs when a change set creates or updates it (it builds them only in
CreateStack and UpdateStack). This file rebuilds them after ExecuteChangeSet, as AWS shows them.

moto also keeps a record created by CloudFormation under the name it was given (`app.sendy.test`)
while ChangeResourceRecordSets stores names with the final dot (`app.sendy.test.`), so an UPSERT of
a CloudFormation record adds a second record with the same set identifier. AWS treats both spellings
as one name: this file stores every record name with its final dot, whichever way it was created.

Everything else is moto as released. Usage: python serve.py -H 127.0.0.1 -p PORT
"""

from moto.cloudformation import models as cloudformation
from moto.core.utils import utcnow
from moto.ecs import models
from moto.moto_api._internal import mock_random
from moto.route53 import models as route53
from moto.server import main
import os

ECS_READS = int(os.environ.get("SENDY_EMULATOR_ECS_READS", "2"))
FAIL_TAG = "sendy-fixture:rollout"

_execute_change_set = cloudformation.CloudFormationBackend.execute_change_set
_update_service = models.EC2ContainerServiceBackend.update_service
_describe_services = models.EC2ContainerServiceBackend.describe_services
_add_rrset = route53.FakeZone.add_rrset
_upsert_rrset = route53.FakeZone.upsert_rrset


def _fqdn(record_set):
    name = record_set.get("Name")
    if name and not name.endswith("."):
        return {**record_set, "Name": name + "."}
    return record_set


def add_rrset(self, record_set):
    return _add_rrset(self, _fqdn(record_set))


def upsert_rrset(self, record_set):
    return _upsert_rrset(self, _fqdn(record_set))


def update_service(self, service_properties):
    cluster = service_properties.get("cluster", "default")
    name = service_properties["service"].split("/")[-1]
    wanted = service_properties.get("task_definition")
    before = self._get_service(cluster, name).task_definition
    service = _update_service(self, service_properties)
    if wanted and wanted != before and service.deployment_controller["type"] == "ECS":
        for old in service.deployments:
            old["status"] = "ACTIVE"
        now = utcnow()
        base = service.deployments[0] if service.deployments else {}
        configuration = {k: v for k, v in base.items() if k in ("launchType", "networkConfiguration", "platformVersion")}
        service.deployments.insert(
            0,
            {
                **configuration,
                "id": f"ecs-svc/{mock_random.randint(0, 32**12)}",
                "status": "PRIMARY",
                "taskDefinition": service.task_definition,
                "desiredCount": service.desired_count,
                "runningCount": 0,
                "pendingCount": service.desired_count,
                "failedTasks": 0,
                "rolloutState": "IN_PROGRESS",
                "rolloutStateReason": "ECS deployment in progress.",
                "createdAt": now,
                "updatedAt": now,
                "sendyCdReads": 0,
            },
        )
    return service


def describe_services(self, cluster_str, service_names_or_arns):
    services, failures = _describe_services(self, cluster_str, service_names_or_arns)
    for service in services:
        primary = next((d for d in service.deployments if d.get("status") == "PRIMARY"), None)
        if primary is None:
            continue
        if primary.get("rolloutState") != "IN_PROGRESS":
            continue
        tags = service.tags or []
        if any(t.get("key") == FAIL_TAG and t.get("value") == "fail" for t in tags):
            service.tags = [t for t in tags if t.get("key") != FAIL_TAG]
            primary.update(
                rolloutState="FAILED",
                rolloutStateReason="ECS deployment circuit breaker: tasks failed to start.",
                failedTasks=service.desired_count,
                runningCount=0,
                pendingCount=0,
                updatedAt=utcnow(),
            )
            continue
        reads = primary.get("sendyCdReads", ECS_READS)
        if reads < ECS_READS:
            # Still rolling out for this read.
            primary["sendyCdReads"] = reads + 1
        else:
            primary.update(
                rolloutState="COMPLETED",
                rolloutStateReason=f"ECS deployment {primary['id']} completed.",
                runningCount=service.desired_count,
                pendingCount=0,
                updatedAt=utcnow(),
            )
            service.deployments[:] = [d for d in service.deployments if d.get("status") == "PRIMARY"]
            service.running_count = service.desired_count
    return services, failures


def execute_change_set(self, change_set_name, stack_name=None):
    _execute_change_set(self, change_set_name, stack_name)
    change_set = self.change_sets.get(change_set_name) or next(
        c for c in self.change_sets.values() if c.change_set_name == change_set_name
    )
    stack = self.stacks[change_set.stack_id]
    stack._parse_template()
    stack.output_map = stack._create_output_map()


cloudformation.CloudFormationBackend.execute_change_set = execute_change_set
route53.FakeZone.add_rrset = add_rrset
route53.FakeZone.upsert_rrset = upsert_rrset
models.EC2ContainerServiceBackend.update_service = update_service
models.EC2ContainerServiceBackend.describe_services = describe_services

if __name__ == "__main__":
    main()
