"""The JSON Schemas of the detail types Hallmark publishes on its bus (``events/schemas/bus``)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parents[1] / "events" / "schemas" / "bus"


@cache
def validator(detail_type: str) -> Draft202012Validator:
    path = SCHEMAS / f"{detail_type}.json"
    if not path.exists():
        raise AssertionError(f"no JSON Schema for the bus detail type {detail_type!r} (events/schemas/bus)")
    return Draft202012Validator(json.loads(path.read_text()))


def violations(detail_type: str, detail: Any) -> list[str]:
    """What is wrong with ``detail`` for its type (empty: it validates)."""
    return [f"{detail_type}: {e.json_path}: {e.message}" for e in validator(detail_type).iter_errors(detail)]
