from __future__ import annotations

import hashlib
from typing import Any

import pytest
import rfc8785
from pydantic import ValidationError

from hallmark.release.validators import PackageMeta, ValidationResult, ValidatorConfig
from tests.unit.test_validators_support import meta_for


def test_digest_is_sha256_of_canonical_payload_without_digest_and_observations() -> None:
    result = ValidationResult.build(
        "demo",
        passed=True,
        reasons=["ok"],
        findings=[{"file": "b", "line": 2}, {"file": "a", "line": 9}, {"file": "a", "line": 1}],
        stats={"n": 3, "share": 0.25},
        observations={"duration_s": 1.234},
    )
    payload: dict[str, Any] = {
        "validator": "demo",
        "passed": True,
        "reasons": ["ok"],
        "findings": result.findings,
        "stats": {"n": 3, "share": 0.25},
    }
    assert result.digest == hashlib.sha256(rfc8785.dumps(payload)).hexdigest()
    assert [(f["file"], f["line"]) for f in result.findings] == [("a", 1), ("a", 9), ("b", 2)]
    other = ValidationResult.build(
        "demo",
        passed=True,
        reasons=["ok"],
        findings=[{"file": "a", "line": 1}, {"file": "b", "line": 2}, {"file": "a", "line": 9}],
        stats={"share": 0.25, "n": 3},
        observations={"duration_s": 9.9},
    )
    assert other.digest == result.digest  # order of findings/keys and observations do not matter


def test_a_result_whose_digest_does_not_match_cannot_be_built() -> None:
    result = ValidationResult.build("demo", passed=False, reasons=["bad"])
    data = result.model_dump(mode="json")
    assert ValidationResult.model_validate(data) == result
    data["passed"] = True
    with pytest.raises(ValidationError, match="digest"):
        ValidationResult.model_validate(data)


def test_reasons_are_deduplicated_in_order() -> None:
    result = ValidationResult.build("demo", passed=False, reasons=["b", "a", "b"])
    assert result.reasons == ["b", "a"]


def test_package_meta_rejects_unknown_impact_and_paths_in_filename() -> None:
    data = b"x"
    with pytest.raises(ValidationError):
        meta_for(data, impact="SEVERE")
    with pytest.raises(ValidationError):
        meta_for(data, filename="../evil.tar.gz")
    with pytest.raises(ValidationError):
        meta_for(data, sha256="not-hex")
    upper = meta_for(data, sha256=hashlib.sha256(data).hexdigest().upper())
    assert upper.sha256 == hashlib.sha256(data).hexdigest()
    assert PackageMeta.model_validate(upper.model_dump()).impact == "LOW"


def test_config_defaults() -> None:
    cfg = ValidatorConfig()
    assert cfg.max_size == 100 * 1024 * 1024
    assert cfg.max_entries == 10_000
    assert cfg.max_ratio == 100
    assert cfg.max_total_uncompressed == 1024**3
    assert {"MIT", "Apache-2.0", "BSD-3-Clause", "ISC", "MPL-2.0", "PSF-2.0", "0BSD", "Unlicense"} <= set(
        cfg.license_allow_list
    )
    assert cfg.max_ai_share is None
