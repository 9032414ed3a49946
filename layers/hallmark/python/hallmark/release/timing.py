"""How long a release took from submit to publish, counting only the pipeline's own time: the
stretches the package spent in ``AwaitingApproval`` (people deciding a governed upgrade) are
left out, so the SLO (p95 < 30 s) measures the system, not the approvers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hallmark.canonical import parse_rfc3339

WAITING = "AwaitingApproval"


def submit_to_publish_seconds(history: Sequence[dict[str, Any]]) -> float:
    """Seconds from the first ``Submitted`` to the first ``Published`` entry of a package's status
    history, minus each ``AwaitingApproval`` stretch (to the next entry). ValueError when the
    history does not hold both ends in order."""
    times = [(str(h["status"]), parse_rfc3339(str(h["at"]))) for h in history]
    try:
        start = next(i for i, (s, _) in enumerate(times) if s == "Submitted")
        end = next(i for i, (s, _) in enumerate(times) if s == "Published" and i > start)
    except StopIteration:
        raise ValueError("history lacks a Submitted entry followed by a Published one") from None
    total = (times[end][1] - times[start][1]).total_seconds()
    waiting = sum((times[i + 1][1] - t).total_seconds() for i, (s, t) in enumerate(times[start:end], start)
                  if s == WAITING)
    if total < 0 or waiting > total:
        raise ValueError("history is out of order")
    return total - waiting
