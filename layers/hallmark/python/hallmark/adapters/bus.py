"""Publishes Hallmark's own events (for other systems to consume) on the `hallmark` bus."""

from __future__ import annotations

import json
from typing import Any

SOURCE = "hallmark"


class EventBusPublisher:
    def __init__(self, events_client: Any, bus_name: str) -> None:
        self.events = events_client
        self.bus = bus_name

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        resp = self.events.put_events(Entries=[{
            "Source": SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail, sort_keys=True),
            "EventBusName": self.bus}])
        if resp.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused {detail_type}: {resp['Entries']}")
