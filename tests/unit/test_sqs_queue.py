"""The SQS queue adapter the scoring functions send through: ten per call, refused indexes, delays."""

from __future__ import annotations

from typing import Any

from hallmark.adapters.sqs_queue import SqsQueue


class _Sqs:
    def __init__(self, refuse: set[int]) -> None:
        self.calls: list[dict[str, Any]] = []
        self.refuse = refuse

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        offset = sum(len(c["Entries"]) for c in self.calls)
        self.calls.append({"QueueUrl": QueueUrl, "Entries": Entries})
        return {"Failed": [{"Id": e["Id"]} for e in Entries if offset + int(e["Id"]) in self.refuse]}

    def change_message_visibility(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def test_sends_ten_per_call_and_returns_the_refused_indexes() -> None:
    sqs = _Sqs(refuse={3, 12})
    failed = SqsQueue(sqs, lambda: "url").send_batch([f"b{i}" for i in range(23)], [{"reason": "r"}] * 23)
    assert failed == [3, 12]
    assert [len(c["Entries"]) for c in sqs.calls] == [10, 10, 3]
    assert sqs.calls[1]["Entries"][2] == {"Id": "2", "MessageBody": "b12",
                                          "MessageAttributes": {"reason": {"DataType": "String", "StringValue": "r"}}}


def test_stop_on_failure_sends_nothing_after_a_refused_call() -> None:
    sqs = _Sqs(refuse={1})
    assert SqsQueue(sqs, lambda: "url").send_batch(["x"] * 25, stop_on_failure=True) == [1]
    assert len(sqs.calls) == 1 and "MessageAttributes" not in sqs.calls[0]["Entries"][0]


def test_delay_pushes_the_message_back() -> None:
    sqs = _Sqs(refuse=set())
    SqsQueue(sqs, lambda: "q").delay("rh", 40)
    assert sqs.calls == [{"QueueUrl": "q", "ReceiptHandle": "rh", "VisibilityTimeout": 40}]
