"""``hallmark.scoring.batching.ExecutionStarter`` over Step Functions: the execution's name is the
batch id, so starting it twice is not an error (the existing execution's ARN is returned)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError


class SfnExecutionStarter:
    def __init__(self, sfn: Any, state_machine_arn: str) -> None:
        self.sfn = sfn
        self.state_machine_arn = state_machine_arn

    def start(self, name: str, payload: dict[str, Any]) -> str:
        try:
            return str(self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name,
                                                input=json.dumps(payload, sort_keys=True))["executionArn"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        return arn
