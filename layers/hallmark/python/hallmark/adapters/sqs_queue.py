"""A plain SQS queue (QUEUE_<NAME>_URL) as the scoring functions use it: batches of message
bodies sent ten per call, and a received message's next attempt pushed back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


class SqsQueue:
    def __init__(self, sqs: Any, url: Callable[[], str]) -> None:
        self._sqs = sqs
        self._url = url  # resolved on first use: a function that never sends needs no queue

    def send_batch(self, bodies: Sequence[str], attributes: Sequence[dict[str, str]] | None = None,
                   *, stop_on_failure: bool = False) -> list[int]:
        """Send ``bodies`` (with string ``attributes``, one dict per body), ten per call; the indexes
        of the refused ones. ``stop_on_failure``: nothing more is sent after a refused call."""
        failed: list[int] = []
        for start in range(0, len(bodies), 10):
            entries: list[dict[str, Any]] = []
            for i, body in enumerate(bodies[start:start + 10]):
                entry: dict[str, Any] = {"Id": str(i), "MessageBody": body}
                if attributes is not None:
                    entry["MessageAttributes"] = {k: {"DataType": "String", "StringValue": v}
                                                  for k, v in attributes[start + i].items()}
                entries.append(entry)
            resp = self._sqs.send_message_batch(QueueUrl=self._url(), Entries=entries)
            failed += [start + int(f["Id"]) for f in resp.get("Failed", [])]
            if failed and stop_on_failure:
                break
        return failed

    def delay(self, receipt_handle: str, seconds: int) -> None:
        """The received message comes back in ``seconds`` (its visibility timeout)."""
        self._sqs.change_message_visibility(QueueUrl=self._url(), ReceiptHandle=receipt_handle,
                                            VisibilityTimeout=seconds)
