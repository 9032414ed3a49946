"""`hallmark demo --chaos SEED --fault-rate R` runs the demo on a cloud with that injector (and
without --chaos, with none); the scenario it runs under chaos keeps every step of the demo but the
exact-count bulk ingest, and redrives its dead letters before the webhook receiver stops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import hallmark_tools.demo as demo
from hallmark_tools.chaos_run import DEMO_STEPS, step_ingest_at_least_once, step_settle
from hallmark_tools.cli import app
from hallmark_tools.scenarios import STEPS, scoring


def _calls(monkeypatch: pytest.MonkeyPatch, ok: bool = True) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def fake(out: Path, console: Any, steps: Any = None, chaos: Any = None) -> dict[str, Any]:
        calls.append({"out": out, "chaos": chaos})
        return {"ok": ok}

    monkeypatch.setattr(demo, "run_demo", fake)
    return calls


def test_chaos_seed_and_rate_reach_the_injector(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _calls(monkeypatch)
    result = CliRunner().invoke(app, ["demo", "--chaos", "7", "--fault-rate", "0.2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    chaos = calls[0]["chaos"]
    assert (chaos.seed, chaos.rate) == (7, 0.2)
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0 and calls[1]["chaos"] is None


def test_a_failed_chaos_run_fails_the_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _calls(monkeypatch, ok=False)
    assert CliRunner().invoke(app, ["demo", "--chaos", "1", "--out", str(tmp_path)]).exit_code == 1


def test_a_fault_rate_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _calls(monkeypatch)
    result = CliRunner().invoke(app, ["demo", "--chaos", "1", "--fault-rate", "0.9", "--out", str(tmp_path)])
    assert result.exit_code != 0 and not calls


def test_the_chaos_demo_is_the_demo_with_an_at_least_once_ingest() -> None:
    steps = [s for _, s in DEMO_STEPS]
    assert scoring.step_ingest not in steps and step_ingest_at_least_once in steps
    assert [s for s in steps if s is not step_settle] == [
        step_ingest_at_least_once if s is scoring.step_ingest else s for _, s in STEPS]
    assert steps.index(step_settle) == steps.index(scoring.step_tampered) - 1
