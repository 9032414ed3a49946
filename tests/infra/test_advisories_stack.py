"""The advisory set on AWS (issue 16, part 4): the scheduled sync function and what the security
validator is given (bucket read + ADVISORY_SET_* settings, no file path), nothing more."""

from __future__ import annotations

from typing import Any


def _functions(template: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for logical, f in template.find_resources("AWS::Lambda::Function").items():
        env = f["Properties"].get("Environment", {}).get("Variables", {})
        if "POWERTOOLS_SERVICE_NAME" in env:
            out[env["POWERTOOLS_SERVICE_NAME"]] = {"logical": logical, **f["Properties"]}
    return out


def test_the_sync_runs_every_6_hours(template: Any) -> None:
    sync = _functions(template)["advisories_sync"]
    env = sync["Environment"]["Variables"]
    assert env["ADVISORY_OSV_BASE_URL"] == "https://osv-vulnerabilities.storage.googleapis.com"
    assert "BUCKET_PACKAGES" in env and "QUEUE_AUDIT_URL" in env
    assert sync["Timeout"] == 900
    rules = [r["Properties"] for r in template.find_resources("AWS::Events::Rule").values()
             if r["Properties"].get("ScheduleExpression") == "rate(6 hours)"]
    assert len(rules) == 1
    (target,) = rules[0]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [sync["logical"], "Arn"]}


def test_only_the_security_validator_reads_the_advisory_set(template: Any) -> None:
    fns = _functions(template)
    security = fns["validate_security"]["Environment"]["Variables"]
    assert security["ADVISORY_SET_MAX_AGE_HOURS"] == "48"
    assert "ADVISORY_SET_CACHE_SECONDS" in security and "BUCKET_PACKAGES" in security
    for name, fn in fns.items():
        env = fn["Environment"]["Variables"]
        assert "ADVISORY_SET_PATH" not in env and "ADVISORY_SET_S3_URI" not in env, name
        if name.startswith("validate_") and name != "validate_security":
            assert not any(k.startswith("ADVISORY_") for k in env), name
