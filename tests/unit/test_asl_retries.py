"""Every Lambda task of every state machine retries the transient AWS failures, named once.

A Lambda reports an error under the exception's class name, and botocore names a modeled error
after its code (``KMSInternalException``, ``ProvisionedThroughputExceededException``, ...). The
codes live in ``hallmark.errors.TRANSIENT_AWS_ERRORS`` only: each task's handler is decorated
with ``hallmark.errors.transient_errors``, which re-raises them as ``TransientError``, and each
task's Retry names that one class beside the Lambda service errors. A new transient code is
added in one place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hallmark.adapters.kms_signer import RETRIABLE_KMS_ERRORS
from hallmark.errors import TRANSIENT_AWS_ERRORS, Conflict, TransientError, transient_errors
from hallmark_tools.topology import TOPOLOGY

ROOT = Path(__file__).resolve().parents[2]
ASL_FILES = sorted((ROOT / "statemachines").glob("*.asl.json"))
LAMBDA_ERRORS = {"Lambda.ServiceException", "Lambda.TooManyRequestsException"}


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
    assert {"TransientError", *LAMBDA_ERRORS} <= retried, f"{asl}: {name!r} retries only {sorted(retried)}"
    assert not retried & {*TRANSIENT_AWS_ERRORS, "ClientError"}, f"{asl}: {name!r} lists codes again"
    for rule in state["Retry"]:
        if "TransientError" in rule["ErrorEquals"]:
            assert rule["MaxAttempts"] >= 3 and rule.get("BackoffRate", 1.0) >= 1.5, (asl, name, rule)
            assert len(rule["ErrorEquals"]) <= 8, (asl, name, rule)


def test_retried_errors_are_not_caught_first() -> None:
    """A Catch on a transient name would turn a retryable fault into a business outcome."""
    for asl, name, state in _tasks():
        caught = {err for rule in state.get("Catch", []) for err in rule["ErrorEquals"]}
        assert not caught & {*TRANSIENT_AWS_ERRORS, "TransientError"}, (asl, name, caught)


def _task_handler_sources() -> dict[str, Path]:
    functions = {f.name: f for f in TOPOLOGY.functions}
    return {
        fn: ROOT / "functions" / (getattr(functions[fn], "code", None) or fn) / "app.py"
        for sm in TOPOLOGY.state_machines
        for kind, fn in sm.substitutions.values()
        if kind == "function"
    }


def test_every_task_handler_translates_transient_errors() -> None:
    sources = _task_handler_sources()
    assert len(sources) >= 20
    for fn, path in sources.items():
        text = path.read_text()
        assert "@transient_errors\n" in text and "\ndef handler(" in text, f"{fn}: {path} is not @transient_errors"


class ThrottlingException(Exception):  # the class botocore makes for a modeled code
    pass


class ClientError(Exception):  # an unmodeled botocore error: the response names the code
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code, "Message": "m"}}


@pytest.mark.parametrize(
    ("error", "code"),
    [(ThrottlingException("slow down"), "ThrottlingException"),
     (ClientError("ProvisionedThroughputExceededException"), "ProvisionedThroughputExceededException"),
     (ClientError("AccessDenied"), "AccessDenied")],  # unmodeled client errors were always retried
)
def test_transient_errors_leave_under_one_name(error: Exception, code: str) -> None:
    @transient_errors
    def handler() -> None:
        raise error

    with pytest.raises(TransientError) as raised:
        handler()
    assert raised.value.code == code and raised.value.__cause__ is error
    assert type(raised.value).__name__ == "TransientError"  # the errorType a Lambda reports


@pytest.mark.parametrize("error", [ValueError("bad input"), Conflict("raced"), KeyError("packageId")])
def test_other_errors_leave_unchanged(error: Exception) -> None:
    @transient_errors
    def handler() -> None:
        raise error

    with pytest.raises(type(error)) as raised:
        handler()
    assert raised.value is error


def test_results_pass_through() -> None:
    assert transient_errors(lambda x: {"ok": x})(1) == {"ok": 1}


def test_kms_signer_passes_the_same_errors_through() -> None:
    assert set(TRANSIENT_AWS_ERRORS) == RETRIABLE_KMS_ERRORS
