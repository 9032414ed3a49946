"""The shared Powertools logger starts each invocation from a clean state (issue 25, item 3): a key
one invocation appends (a caller, a correlation id) is not on the next invocation's log lines in the
same (warm) execution environment."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from hallmark.observability import logger


@dataclass
class _Context:
    aws_request_id: str
    function_name: str = "packages_api"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:packages_api"


@logger.inject_lambda_context(correlation_id_path="requestId")
def _handler(event: dict[str, Any], context: _Context) -> None:
    if "caller" in event:
        logger.append_keys(caller=event["caller"])
    logger.warning("handled")


def test_keys_appended_by_one_invocation_are_gone_in_the_next() -> None:
    stream = io.StringIO()
    handler = logger.registered_handler
    saved = handler.stream  # type: ignore[attr-defined]
    handler.stream = stream  # type: ignore[attr-defined]
    try:
        _handler({"requestId": "req-a", "caller": "alice"}, _Context("r-1"))
        _handler({"requestId": "req-b"}, _Context("r-2"))
    finally:
        handler.stream = saved  # type: ignore[attr-defined]
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["caller"], first["correlation_id"], first["function_request_id"]) == ("alice", "req-a", "r-1")
    assert "caller" not in second
    assert (second["correlation_id"], second["function_request_id"]) == ("req-b", "r-2")
