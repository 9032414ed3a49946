"""Every bus detail type Hallmark publishes has a JSON Schema, and only those do.

(Every event published in the local cloud's flows is validated against its schema by the
integration tests' ``bus_events_validate`` fixture.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.bus_schemas import SCHEMAS, violations

ROOT = Path(__file__).resolve().parents[2]
PUBLISH = re.compile(r"""\.publish\(\s*["']([A-Za-z]+)["']""")


def published_types() -> set[str]:
    sources = [*(ROOT / "functions").glob("*/app.py"), *(ROOT / "layers" / "hallmark" / "python").rglob("*.py")]
    return {m for p in sources for m in PUBLISH.findall(p.read_text())}


def test_the_schemas_are_exactly_the_published_detail_types() -> None:
    published = published_types()
    assert len(published) >= 7
    assert {p.stem for p in SCHEMAS.glob("*.json")} == published


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.stem)
def test_each_schema_is_a_strict_2020_12_schema(path: Path) -> None:
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["title"] == path.stem and schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"])


def test_a_detail_with_a_missing_or_extra_field_is_refused() -> None:
    good = {"packageId": "p-1", "listingId": "l-1", "manifestSignatureId": "sig-1"}
    assert violations("ListingCreated", good) == []
    assert violations("ListingCreated", {k: v for k, v in good.items() if k != "listingId"})
    assert violations("ListingCreated", {**good, "price": 1900})
    assert violations("TierAwarded", {"artifactId": "a", "tier": "platinum", "ceremonyId": "c", "signatureId": "s"})
