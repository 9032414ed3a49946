"""submit -> publish counted without approval waits (issue 19, item 4)."""

from __future__ import annotations

import pytest

from hallmark.release.timing import submit_to_publish_seconds


def _h(*entries: tuple[str, str]) -> list[dict[str, str]]:
    return [{"status": s, "at": f"2026-12-03T07:{t}Z"} for s, t in entries]


def test_an_ungoverned_release_counts_its_whole_time() -> None:
    assert submit_to_publish_seconds(_h(("Submitted", "00:00.000"), ("Validating", "00:04.000"),
                                        ("Published", "00:21.500"))) == 21.5


def test_the_approval_wait_is_left_out() -> None:
    history = _h(("Submitted", "00:00.000"), ("Validating", "00:02.000"), ("AwaitingApproval", "00:10.000"),
                 ("Published", "40:10.000"))
    assert submit_to_publish_seconds(history) == 10.0


def test_a_history_without_both_ends_is_refused() -> None:
    with pytest.raises(ValueError):
        submit_to_publish_seconds(_h(("Submitted", "00:00.000"), ("Rejected", "00:05.000")))
    with pytest.raises(ValueError):
        submit_to_publish_seconds(_h(("Published", "00:00.000"), ("Submitted", "00:05.000")))
