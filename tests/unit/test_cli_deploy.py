"""``hallmark deploy`` and ``hallmark deployments list`` against a scripted API: the request (with
an Idempotency-Key), the stages shown as they pass, the exit code by outcome, the pages."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from hallmark_tools import cli_api
from hallmark_tools.cli import app

STAGES = [{"stage": "requested", "at": "t0"}, {"stage": "admitted", "at": "t1"}, {"stage": "deploying", "at": "t2"},
          {"stage": "canary", "at": "t3"}, {"stage": "rolled_back", "at": "t4", "reason": "alarm",
                                            "detail": "fn-v2-errors"}]


def _script(monkeypatch: pytest.MonkeyPatch, final: str) -> list[tuple[str, str, Any, dict[str, str]]]:
    calls: list[tuple[str, str, Any, dict[str, str]]] = []
    polls = iter(range(1, 10))

    def call(method: str, url: str, token: str | None = None, body: Any = None, timeout: float = 30,
             extra_headers: dict[str, str] | None = None) -> tuple[int, Any]:
        calls.append((method, url, body, extra_headers or {}))
        if method == "POST":
            return 202, {"deploymentId": "dep-1", "statusUrl": "/deployments/dep-1", "stage": "requested",
                         "functionName": "hallmark-app-svc-staging"}
        if "/deployments?" in url:
            first = "nextToken" not in url
            return 200, {"items": [{"deploymentId": "dep-2" if first else "dep-1", "package": "svc",
                                    "packageVersion": "1.0.1", "environment": "staging", "tier": "bronze",
                                    "functionVersion": "2", "stage": "live", "canaryWeight": 1.0}],
                         "nextToken": "tok" if first else None}
        n = next(polls)
        stages = STAGES[: min(n + 1, 4)] if n < 4 else [*STAGES[:4], {**STAGES[4], "stage": final}]
        return 200, {"stage": stages[-1]["stage"], "stages": stages, "functionVersion": "2",
                     "codeSha256": "abc=", "signedSha256": "00"}

    monkeypatch.setattr(cli_api, "call", call)
    monkeypatch.setattr("time.sleep", lambda s: None)
    return calls


def test_deploy_wait_shows_the_stages_and_fails_on_rollback(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _script(monkeypatch, "rolled_back")
    result = CliRunner().invoke(app, ["deploy", "svc@1.0.1", "--env", "staging", "--wait", "--token", "t",
                                      "--api", "http://api"])
    assert result.exit_code == 1, result.output
    for stage in ("admitted", "deploying", "canary", "rolled_back"):
        assert stage in result.output
    assert "fn-v2-errors" in result.output
    method, url, body, headers = calls[0]
    assert (method, url, body) == ("POST", "http://api/deployments",
                                   {"package": "svc", "version": "1.0.1", "environment": "staging"})
    assert headers["Idempotency-Key"]


def test_deploy_wait_succeeds_when_live_and_refuses_a_bad_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    _script(monkeypatch, "live")
    ok = CliRunner().invoke(app, ["deploy", "svc@1.0.1", "--env", "staging", "--wait", "--token", "t"])
    assert ok.exit_code == 0 and "live: version 2" in ok.output, ok.output
    bad = CliRunner().invoke(app, ["deploy", "svc", "--env", "staging", "--token", "t"])
    assert bad.exit_code == 2 and "NAME@VERSION" in bad.output


def test_deployments_list_follows_the_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _script(monkeypatch, "live")
    result = CliRunner().invoke(app, ["deployments", "list", "--package", "svc", "--token", "t", "--api", "http://api"])
    assert result.exit_code == 0, result.output
    assert "dep-2" in result.output and "dep-1" in result.output
    assert [u for _m, u, _b, _h in calls] == ["http://api/deployments?package=svc",
                                              "http://api/deployments?package=svc&nextToken=tok"]
