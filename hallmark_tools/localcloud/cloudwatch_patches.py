"""moto 5 does not implement CloudWatch ``DescribeAlarmHistory`` (it raises NotImplementedError),
which the deployment canary reads to see an alarm that fired and cleared during the bake. moto
does keep each alarm's earlier states (``FakeAlarm.history``: the state before every
``update_state``); this answers ``StateUpdate`` items from it, in AWS's shape (``HistoryData``
JSON with ``oldState``/``newState``), newest first, filtered by ``StartDate``/``EndDate``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return _aware(value)
    return _aware(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _items(alarm: Any) -> list[dict[str, Any]]:
    """One item per state change: moto's history holds (type, reason, data, state, at) before it."""
    before = [(h[3], h[4]) for h in alarm.history if h[0] == "StateUpdate"]
    if not before:
        return []
    after = [*before[1:], (alarm.state_value, alarm.state_updated_timestamp)]
    items = []
    for (old, _), (new, at) in zip(before, after, strict=True):
        items.append({
            "AlarmName": alarm.name, "AlarmType": "MetricAlarm", "Timestamp": _aware(at),
            "HistoryItemType": "StateUpdate", "HistorySummary": f"Alarm updated from {old} to {new}",
            "HistoryData": json.dumps({"version": "1.0", "oldState": {"stateValue": old},
                                       "newState": {"stateValue": new}})})
    return items


def describe_alarm_history(self: CloudWatchResponse) -> ActionResult:
    name = self._get_param("AlarmName")
    kind = self._get_param("HistoryItemType")
    start, end = _when(self._get_param("StartDate")), _when(self._get_param("EndDate"))
    items = []
    for alarm in self.cloudwatch_backend.alarms.values():
        if name and alarm.name != name:
            continue
        for item in _items(alarm):
            if (kind in (None, "StateUpdate") and (start is None or item["Timestamp"] >= start)
                    and (end is None or item["Timestamp"] <= end)):
                items.append(item)
    items.sort(key=lambda i: i["Timestamp"], reverse=True)
    return ActionResult({"AlarmHistoryItems": items})


def install_cloudwatch_patches(patch: Callable[[Any, str, Any], None]) -> None:
    patch(CloudWatchResponse, "describe_alarm_history", describe_alarm_history)
