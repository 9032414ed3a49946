from __future__ import annotations

import pytest

from hallmark.release import validators as registry
from hallmark.release.validators import VALIDATORS, ValidationResult, run_all, run_one, run_validator
from tests.unit.test_validators_support import clean_tar_gz, clean_zip, config, meta_for

NAMES = ["static", "archive_safety", "security", "compliance", "attribution", "smoke"]


def test_registry_lists_the_six_validators_in_order() -> None:
    assert list(VALIDATORS) == NAMES


@pytest.mark.parametrize(
    ("build", "filename"), [(clean_tar_gz, "demo-1.0.0.tar.gz"), (clean_zip, "demo-1.0.0.zip")]
)
def test_a_clean_package_passes_every_validator(build: object, filename: str) -> None:
    data = build()  # type: ignore[operator]
    results = run_all(data, meta_for(data, filename=filename), config())
    assert [r.validator for r in results] == NAMES
    assert all(r.passed for r in results), {r.validator: r.reasons for r in results if not r.passed}


def test_results_are_reproducible() -> None:
    first_bytes, second_bytes = clean_tar_gz(), clean_tar_gz()
    assert first_bytes == second_bytes
    first = run_all(first_bytes, meta_for(first_bytes), config())
    second = run_all(second_bytes, meta_for(second_bytes), config())
    assert [r.digest for r in first] == [r.digest for r in second]
    assert all(r.digest == r.compute_digest() for r in first)
    # a failing package is just as reproducible
    bad = clean_tar_gz({"requirements.txt": b"requests==2.19.0\n"})
    a = run_all(bad, meta_for(bad, license="GPL-3.0-only"), config())
    b = run_all(bad, meta_for(bad, license="GPL-3.0-only"), config())
    assert [r.digest for r in a] == [r.digest for r in b]
    assert [r.passed for r in a] == [False, True, False, True, True, True]


def test_run_one_takes_the_submitted_record_and_returns_json() -> None:
    data = clean_tar_gz()
    record = {**meta_for(data).model_dump(mode="json"), "packageId": "p-1", "submittedBy": "alice"}
    out = run_one("static", data, record, config())
    assert out["validator"] == "static" and out["passed"] is True
    assert ValidationResult.model_validate(out).digest == out["digest"]
    with pytest.raises(KeyError):
        run_validator("nope", data, meta_for(data))


def test_a_crashing_validator_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object) -> ValidationResult:
        raise RuntimeError("bug")

    monkeypatch.setitem(registry.VALIDATORS, "compliance", boom)
    data = clean_tar_gz()
    (result,) = run_all(data, meta_for(data), config(), only=["compliance"])
    assert not result.passed
    assert result.reasons == ["validator error: RuntimeError"]
