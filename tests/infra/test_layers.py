"""A lean layer for every function, the scoring layer (numpy, onnxruntime) only where the code
reaches them (issue 19, item 2): every module a function imports is in its layers (or the runtime
or the standard library), and each function with its layers stays under Lambda's 250 MB."""

from __future__ import annotations

import pytest

from hallmark_tools import layers as L
from hallmark_tools.topology import TOPOLOGY

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
CODE_DIRS = sorted({f.code_dir for f in TOPOLOGY.functions})


@pytest.mark.parametrize("code_dir", CODE_DIRS)
def test_no_function_imports_a_module_its_layers_lack(code_dir: str) -> None:
    provided = set().union(*(L.provided_modules(x) for x in L.layers_for(code_dir))) | L.RUNTIME_PROVIDED
    missing = L.reached_modules(code_dir) - provided
    assert not missing, f"functions/{code_dir} reaches {sorted(missing)}, which its layers {L.layers_for(code_dir)} lack"


@pytest.mark.parametrize("code_dir", CODE_DIRS)
def test_every_function_with_its_layers_fits_lambdas_limit(code_dir: str) -> None:
    size = (sum(L.layer_bytes(x) for x in L.layers_for(code_dir)) + L.tree_bytes(L.LAYER_SRC)
            + L.tree_bytes(L.ROOT / "functions" / code_dir))
    assert size < LAMBDA_UNZIPPED_LIMIT, f"{code_dir}: {size / 2**20:.0f} MiB"


def test_the_heavy_modules_are_only_in_the_scoring_layer() -> None:
    scoring_only = L.provided_modules("scoring") - L.provided_modules("lean")
    assert {"numpy", "onnxruntime"} <= scoring_only
    assert L.layer_bytes("lean") < L.layer_bytes("scoring")
    # the release, governance, ceremony, market and core functions carry no numpy/onnxruntime
    for name in ("packages_api", "release_sign", "validate_static", "audit_writer", "orders_api", "health"):
        assert L.layers_for(TOPOLOGY.function(name).code_dir) == ("lean",), name
    assert L.layers_for("scoring_cpu") == ("lean", "scoring")


def test_the_scan_sees_deferred_imports_and_skips_type_checking_blocks(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "functions" / "probe").mkdir(parents=True)
    (root / "functions" / "probe" / "app.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import yaml\n"
        "def handler(e, c):\n    import numpy\n    return numpy\n")
    monkeypatch.setattr(L, "ROOT", root)
    L.reached_modules.cache_clear()
    try:
        assert L.reached_modules("probe") == {"numpy"}
    finally:
        L.reached_modules.cache_clear()


def test_the_composition_root_counts_a_wiring_function_only_for_code_that_names_it() -> None:
    import ast

    named = L._root_names(ast.parse(
        "from hallmark.adapters import runtime\nx = runtime.scoring_pipeline()\nweights = 1\n").body,
        inside_root=False)
    assert named == {"scoring_pipeline"}  # a local variable called `weights` names nothing
    assert "numpy" in L.reached_modules("scoring_api")
    assert "numpy" not in L.reached_modules("packages_api")
