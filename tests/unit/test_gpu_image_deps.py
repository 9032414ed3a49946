"""The GPU Batch image (gpu_batch/Dockerfile) installs every third-party distribution the job's
entrypoint imports (directly or as a requirement of one it installs): a module the image lacks
would fail the job at start, on the GPU only."""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
GPU_ONLY = {"onnxruntime-gpu": "onnxruntime"}  # the image's name -> the distribution installed here


def image_distributions() -> set[str]:
    text = (ROOT / "gpu_batch" / "Dockerfile").read_text()
    install = text[text.index("pip install"):].split("\n\n", 1)[0]
    names = {canonicalize_name(Requirement(r).name) for r in re.findall(r'"([^"]+)"', install)}
    return {canonicalize_name(GPU_ONLY.get(n, n)) for n in names}


def with_requirements(roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for r in map(Requirement, requires):
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(r.name))
    return seen


def test_the_image_installs_what_the_entrypoint_imports() -> None:
    code = ("import json, sys\n"
            "before = set(sys.modules)\n"  # what the interpreter itself loaded (site hooks)
            "import gpu_batch.entrypoint\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=ROOT, env={"PYTHONPATH": f"{ROOT / 'layers' / 'hallmark' / 'python'}:{ROOT}"}).stdout
    modules = set(json.loads(out.strip().splitlines()[-1])) - set(sys.stdlib_module_names) - {"gpu_batch", "hallmark"}
    dists = md.packages_distributions()
    needed = {canonicalize_name(d) for m in modules for d in dists.get(m, [])}
    missing = needed - with_requirements(image_distributions())
    assert not missing, f"gpu_batch/Dockerfile does not install {sorted(missing)}"
