"""The local stand-in for AWS Batch: the scoring state machine's ``batch:submitJob.sync`` state runs
the GPU job's entrypoint (``gpu_batch.entrypoint.main``) in-process, with the environment the
container would get, and the job ends SUCCEEDED or FAILED accordingly.

What moto 5.2.1 lacks, and what this module adds (installed by ``LocalCloud`` with its undoable
``_patch``):

- Step Functions' Batch integration takes the parameters in Step Functions' casing (``JobName``,
  ``ContainerOverrides.Environment[].Name``) and answers in it (``JobId``, ``Status``); moto's port
  of the ASL interpreter passes them to boto3 unchanged, which drops them, and reads ``JobId`` from a
  camelCase answer. ``_normalise_parameters`` / ``_normalise_response`` translate through the
  botocore Batch model, as AWS does.
- With ``batch.use_docker`` off, moto marks every job SUCCEEDED without running anything. For a job
  of the scoring job definition, the entrypoint is run instead: the job definition's environment,
  overridden by the submission's, plus ``AWS_BATCH_JOB_ID``; an exception fails the job with its
  message as ``statusReason`` (in AWS: the container's exit code and its log stream).
- The topology has no Batch resources (they are not functions, queues, tables ...): the compute
  environment, job queue and job definition that ``cdk/scoring_batch.py`` synthesizes are
  registered on moto under the same names when the local cloud provisions (``provision``, called by
  ``localcloud.provision``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from hallmark_tools.topology.scoring import GPU_INSTANCE_CLASSES, JOB_DEFINITION, JOB_QUEUE

Patch = Callable[[Any, str, Any], None]
COMPUTE_ENVIRONMENT = "hallmark-scoring-gpu-spot"
IMAGE = "hallmark-evi-batch:local"  # the image gpu_batch/Dockerfile builds (not pulled locally)
ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("hallmark.localcloud.batch")


def gpu_batch_module(name: str) -> ModuleType:
    """``gpu_batch.<name>``: imported when the repository root is on the path (tests), else loaded
    from its file, as the local cloud loads ``functions/<name>/app.py`` (the installed CLI)."""
    full = f"gpu_batch.{name}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError:
        if full in sys.modules:
            return sys.modules[full]
        spec = importlib.util.spec_from_file_location(full, ROOT / "gpu_batch" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
        return module


@cache
def _batch_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("batch")


def _operation(action: str) -> Any:
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    model = _batch_model()
    for name in model.operation_names:
        if camel_to_snake_case(name) == action:
            return model.operation_model(name)
    raise KeyError(f"batch has no operation {action!r}")


def _normalise_parameters(self: Any, parameters: dict[str, Any], boto_service_name: str | None = None,
                          service_action_name: str | None = None) -> None:
    op = _operation(service_action_name or self._get_boto_service_action())
    self._to_boto_request(parameters, op.input_shape)


def _normalise_response(self: Any, response: Any, boto_service_name: str | None = None,
                        service_action_name: str | None = None) -> None:
    op = _operation(service_action_name or self._get_boto_service_action())
    self._from_boto_response(response, op.output_shape)


def job_environment(job: Any) -> dict[str, str]:
    """What the container would see: the definition's environment, the overrides on top."""
    env = {e["name"]: e["value"] for e in (job.job_definition.container_properties or {}).get("environment", [])}
    env.update({e["name"]: e["value"] for e in job.container_overrides.get("environment", [])})
    env["AWS_BATCH_JOB_ID"] = job.job_id
    return env


def run_entrypoint(env: dict[str, str]) -> None:
    """``python -m gpu_batch.entrypoint`` in-process (its logging set-up must not outlive the job)."""
    entrypoint = gpu_batch_module("entrypoint")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        code = entrypoint.main(env)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    if code:
        raise RuntimeError(f"the job exited with status {code}")


def _make_mark_job_as_finished(original: Callable[..., None]) -> Callable[..., None]:
    def mark_job_as_finished(self: Any, include_start_attempt: bool, job: Any) -> None:
        if job.job_definition.name != JOB_DEFINITION:
            original(self, include_start_attempt, job)
            return
        import datetime

        self.backend._jobs[job.job_id] = job
        job.job_started_at = datetime.datetime.now()
        job.log_stream_name = job._stream_name
        if include_start_attempt:
            job._start_attempt()
        try:
            run_entrypoint(job_environment(job))
        except Exception as exc:
            log.warning("scoring job %s failed: %s", job.job_id, exc)
            job.exit_code = 1
            job.job_stopped_reason = f"{type(exc).__name__}: {exc}"[:1000]
            job._mark_stopped(success=False)
            return
        job.exit_code = 0
        job._mark_stopped(success=True)

    return mark_job_as_finished


def provision(cloud: Any) -> dict[str, str]:
    """The GPU runner's Batch resources on moto, named as ``cdk/scoring_batch.py`` names them."""
    iam, ec2, batch = cloud.client("iam"), cloud.client("ec2"), cloud.client("batch")
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    service_role = iam.create_role(RoleName="hallmark-batch-service", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    job_role = iam.create_role(RoleName="hallmark-evi-job", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    profile = iam.create_instance_profile(InstanceProfileName="hallmark-batch-instance")["InstanceProfile"]["Arn"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    group = ec2.create_security_group(GroupName="hallmark-batch", Description="Hallmark GPU scoring jobs")["GroupId"]
    env = batch.create_compute_environment(
        computeEnvironmentName=COMPUTE_ENVIRONMENT, type="MANAGED", state="ENABLED", serviceRole=service_role,
        computeResources={
            "type": "SPOT", "allocationStrategy": "SPOT_PRICE_CAPACITY_OPTIMIZED", "minvCpus": 0, "maxvCpus": 256,
            "instanceTypes": list(GPU_INSTANCE_CLASSES), "subnets": subnets, "securityGroupIds": [group],
            "instanceRole": profile,
        },
    )["computeEnvironmentArn"]
    queue = batch.create_job_queue(jobQueueName=JOB_QUEUE, state="ENABLED", priority=1,
                                   computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}])["jobQueueArn"]
    definition = batch.register_job_definition(
        jobDefinitionName=JOB_DEFINITION, type="container", platformCapabilities=["EC2"],
        containerProperties={
            "image": IMAGE,
            "jobRoleArn": job_role,
            "resourceRequirements": [{"type": "GPU", "value": "1"}, {"type": "VCPU", "value": "4"},
                                     {"type": "MEMORY", "value": "15360"}],
            "environment": [{"name": "BUCKET", "value": cloud.resources["BUCKET_SCORING"]},
                            {"name": "CORPUS_KEY", "value": "corpus/current.npy"}],
        },
        retryStrategy={"attempts": 3, "evaluateOnExit": [{"onStatusReason": "Host EC2*", "action": "RETRY"},
                                                         {"onExitCode": "*", "action": "EXIT"}]},
        timeout={"attemptDurationSeconds": 3600},
    )["jobDefinitionArn"]
    return {"BATCH_COMPUTE_ENVIRONMENT_ARN": env, "BATCH_JOB_QUEUE_ARN": queue, "BATCH_JOB_DEFINITION_ARN": definition}


def install_batch_patches(patch: Patch) -> None:
    """Install the stand-in (``patch`` records each change so that stopping the cloud undoes it)."""
    from moto.batch_simple.models import BatchSimpleBackend
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch import (
        StateTaskServiceBatch,
    )

    patch(StateTaskServiceBatch, "_normalise_parameters", _normalise_parameters)
    patch(StateTaskServiceBatch, "_normalise_response", _normalise_response)
    patch(BatchSimpleBackend, "_mark_job_as_finished",
          _make_mark_job_as_finished(BatchSimpleBackend._mark_job_as_finished))
