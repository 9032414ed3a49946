"""Every Lambda task of every state machine retries the transient AWS failures.

A Lambda reports an error under the exception's class name, and botocore names a modeled error
after its code (``KMSInternalException``, ``ProvisionedThroughputExceededException``, ...), so a
Retry that names only ``ClientError`` misses exactly the faults worth retrying. The list lives in
``hallmark.errors.TRANSIENT_AWS_ERRORS``; this test keeps the ASL files in step with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hallmark.adapters.kms_signer import RETRIABLE_KMS_ERRORS
from hallmark.errors import TRANSIENT_AWS_ERRORS

ASL_FILES = sorted((Path(__file__).resolve().parents[2] / "statemachines").glob("*.asl.json"))


def _lambda_tasks(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state["Type"] == "Task" and "lambda:invoke" in state["Resource"]:
            yield name, state
        for branch in state.get("Branches", []):
            yield from _lambda_tasks(branch["States"])
        if "ItemProcessor" in state:
            yield from _lambda_tasks(state["ItemProcessor"]["States"])


def _tasks() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path.name, name, state)
        for path in ASL_FILES
        for name, state in _lambda_tasks(json.loads(path.read_text())["States"])
    ]


def test_every_state_machine_has_lambda_tasks() -> None:
    assert {p.name for p in ASL_FILES} >= {"release.asl.json", "ceremony.asl.json", "scoring.asl.json"}
    assert len(_tasks()) >= 20


@pytest.mark.parametrize(("asl", "name", "state"), _tasks(), ids=lambda v: v if isinstance(v, str) else "")
def test_lambda_task_retries_every_transient_error(asl: str, name: str, state: dict[str, Any]) -> None:
    retried = {err for rule in state.get("Retry", []) for err in rule["ErrorEquals"]}
    missing = [e for e in TRANSIENT_AWS_ERRORS if e not in retried]
    assert not missing, f"{asl}: {name!r} does not retry {missing}"
    assert {"ClientError", "Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= retried
    for rule in state["Retry"]:
        if set(TRANSIENT_AWS_ERRORS) & set(rule["ErrorEquals"]):
            assert rule["MaxAttempts"] >= 3 and rule.get("BackoffRate", 1.0) >= 1.5, (asl, name, rule)


def test_retried_errors_are_not_caught_first() -> None:
    """A Catch on a transient name would turn a retryable fault into a business outcome."""
    for asl, name, state in _tasks():
        caught = {err for rule in state.get("Catch", []) for err in rule["ErrorEquals"]}
        assert not caught & set(TRANSIENT_AWS_ERRORS), (asl, name, caught)


def test_kms_signer_passes_the_same_errors_through() -> None:
    assert set(TRANSIENT_AWS_ERRORS) == RETRIABLE_KMS_ERRORS
