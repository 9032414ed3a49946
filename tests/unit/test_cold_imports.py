"""Cold imports stay lean: importing a handler does not load the heavy libraries it needs only
later (issue 19 item 3; timed in ``benchmarks/cold_start.py``, checked structurally here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "hallmark" / "python"
HEAVY = ("aws_xray_sdk", "jsonschema", "aws_encryption_sdk", "onnxruntime", "numpy", "cryptography")

CHILD = f"""
import importlib, json, sys
importlib.import_module("app")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})))
"""


def loaded_after_import(code_dir: Path) -> list[str]:
    """Heavy top-level packages in ``sys.modules`` after a fresh interpreter imports ``app``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(code_dir), str(LAYER), str(ROOT)]))
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=code_dir,
                         capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("handler", ["packages_api", "orders_api", "scoring_ingest", "scoring_cpu", "webhooks_api"])
def test_handler_import_defers_heavy_modules(handler: str) -> None:
    assert loaded_after_import(ROOT / "functions" / handler) == []


def test_tracer_is_built_on_first_use() -> None:
    from hallmark.observability import LazyTracer

    tracer = LazyTracer(service="t", disabled=True)
    calls: list[int] = []

    @tracer.capture_method
    def work(x: int) -> int:
        calls.append(x)
        return x * 2

    assert tracer._tracer is None  # decorating built nothing
    assert work(3) == 6 and calls == [3]
    assert tracer._tracer is not None and work.__name__ == "work"


def test_the_check_sees_a_heavy_import(tmp_path: Path) -> None:
    """The structural check can fail: a handler that imports numpy at module level is caught."""
    (tmp_path / "app.py").write_text("import numpy  # noqa: F401\n")
    assert "numpy" in loaded_after_import(tmp_path)


def test_tracer_decorators_take_options() -> None:
    from hallmark.observability import LazyTracer

    tracer = LazyTracer(service="t", disabled=True)

    @tracer.capture_method(capture_response=False)
    def quiet() -> str:
        return "ok"

    @tracer.capture_lambda_handler(capture_error=False)
    def handler(event: dict[str, str], context: object) -> dict[str, str]:
        return event

    assert quiet() == "ok" and handler({"a": "b"}, None) == {"a": "b"}
