"""``hallmark.ports.ExecutionControl`` over Step Functions: start an execution (named, so starting
it twice is not an error: the existing execution's ARN is returned), and resume or fail the task
that waits on a task token."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from hallmark.ports import TokenNotWaiting

#: The codes Step Functions answers for a token nothing waits on any more (timed out, finished).
_NOT_WAITING = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class SfnExecutions:
    """``state_machine_arn``: the machine :meth:`start` starts, or a callable that names it when
    first needed (a function that only settles tokens needs no ARN in its environment)."""

    def __init__(self, sfn: Any, state_machine_arn: str | Callable[[], str] | None = None) -> None:
        self.sfn = sfn
        self._arn = state_machine_arn

    @property
    def state_machine_arn(self) -> str:
        arn = self._arn() if callable(self._arn) else self._arn
        if not arn:
            raise ValueError("this ExecutionControl was built without a state machine to start")
        return arn

    def start(self, name: str, payload: dict[str, Any]) -> str:
        arn = self.state_machine_arn
        try:
            return str(self.sfn.start_execution(stateMachineArn=arn, name=name,
                                                input=json.dumps(payload, sort_keys=True))["executionArn"])
        except ClientError as exc:
            if _code(exc) != "ExecutionAlreadyExists":
                raise
        return arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def resume(self, token: str, output: dict[str, Any]) -> None:
        try:
            self.sfn.send_task_success(taskToken=token, output=json.dumps(output))
        except ClientError as exc:
            if _code(exc) in _NOT_WAITING:
                raise TokenNotWaiting(_code(exc)) from exc
            raise

    def fail(self, token: str, error: str, cause: str) -> None:
        try:
            self.sfn.send_task_failure(taskToken=token, error=error, cause=cause)
        except ClientError as exc:
            if _code(exc) in _NOT_WAITING:
                raise TokenNotWaiting(_code(exc)) from exc
            raise
