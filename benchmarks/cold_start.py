"""Cold import of every Lambda handler vs the bare runtime libraries, same machine, same run.

    python benchmarks/cold_start.py               # every functions/<name>/app.py, 5 repetitions
    python benchmarks/cold_start.py --repeats 9 --only packages_api,orders_api

Each sample is a fresh interpreter (``sys.executable``) with the Lambda layer
(``layers/hallmark/python``) and the function's own directory on the path, as Lambda lays them
out. The child times only the import (interpreter start-up excluded) of:

- baseline: ``import boto3, aws_lambda_powertools, pydantic`` (what any Powertools handler pays);
- each handler: ``import app`` from ``functions/<name>/``;
- floor (for reference): the smallest validated Powertools HTTP handler: ``APIGatewayHttpResolver
  (enable_validation=True)`` with one route taking a one-field pydantic body. What any handler
  built on Powertools' event handler pays before its own code; ``floor_ratio`` in the RESULT.

The clock is the child's CPU time by default (``time.process_time``: an import is CPU work, and
CPU time does not grow when other processes share the cores); ``--clock wall`` uses
``time.perf_counter``. Every handler sample is paired with a baseline sample taken just before it (rounds over all
handlers, after one unrecorded warm-up round that writes the byte-code caches), so load from
other processes on the machine hits both sides alike. Reported per handler: the median import
time and the median of its paired ratios (handler / baseline). The goal of
issue 19 is every ratio <= 1.3. ``--show-modules`` lists, per handler, the heavy modules the
import pulled into ``sys.modules``.

The last line is ``RESULT worst_ratio=.. median_ratio=.. worst_handler=.. baseline_ms=..
handlers=.. over_target=..``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "hallmark" / "python"
FUNCTIONS = ROOT / "functions"
BASELINE = "__baseline__"
FLOOR = "__floor__"
TARGET = 1.3
CLOCK = ["process_time"]  # set from --clock
NO_BYTECODE = [False]  # set from --no-bytecode
HEAVY = ("aws_xray_sdk", "jsonschema", "cryptography", "aws_encryption_sdk",
         "onnxruntime", "numpy")

CHILD = f"""
import importlib, json, sys, time
name, clock = sys.argv[1], getattr(time, sys.argv[2])
t0 = clock()
if name in ({BASELINE!r}, {FLOOR!r}):
    import boto3, aws_lambda_powertools, pydantic  # noqa: F401
    if name == {FLOOR!r}:
        from typing import Annotated
        from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
        from aws_lambda_powertools.event_handler.openapi.params import Body
        class Body1(pydantic.BaseModel):
            x: int
        floor_app = APIGatewayHttpResolver(enable_validation=True)
        @floor_app.post("/x")
        def post(body: Annotated[Body1, Body()]) -> dict:
            return {{}}
else:
    importlib.import_module("app")
dt = clock() - t0
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(json.dumps({{"ms": dt * 1000.0, "heavy": heavy}}))
"""


def handlers() -> list[str]:
    return sorted(p.parent.name for p in FUNCTIONS.glob("*/app.py"))


def sample(name: str) -> dict[str, object]:
    reference = name in (BASELINE, FLOOR)
    path = [str(LAYER), str(ROOT)] if reference else [str(FUNCTIONS / name), str(LAYER), str(ROOT)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up round writes the byte-code caches
    if NO_BYTECODE[0]:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    cwd = ROOT if reference else FUNCTIONS / name
    out = subprocess.run([sys.executable, "-c", CHILD, name, CLOCK[0]], env=env, cwd=cwd, capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"import of {name} failed:\n{out.stderr.strip()}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="fresh-process samples per handler (median)")
    ap.add_argument("--only", default="", help="comma-separated handler names (default: all)")
    ap.add_argument("--show-modules", action="store_true", help="list heavy modules each import loaded")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="cpu: the child's CPU time (time.process_time; robust on a shared machine); "
                         "wall: time.perf_counter")
    ap.add_argument("--no-bytecode", action="store_true",
                    help="compile the layer and handler sources on every import (no __pycache__), as a layer "
                         "shipped without byte code does on Lambda's read-only file system")
    args = ap.parse_args()
    NO_BYTECODE[0] = args.no_bytecode
    CLOCK[0] = "process_time" if args.clock == "cpu" else "perf_counter"
    names = [n for n in args.only.split(",") if n] or handlers()
    unknown = sorted(set(names) - set(handlers()))
    if unknown:
        raise SystemExit(f"no such handler: {', '.join(unknown)}")

    for name in [BASELINE, FLOOR, *names]:  # warm-up round: byte-code caches, page cache
        sample(name)
    times: dict[str, list[float]] = {n: [] for n in [BASELINE, FLOOR, *names]}
    paired: dict[str, list[float]] = {n: [] for n in [FLOOR, *names]}
    heavy: dict[str, list[str]] = {}
    for _ in range(args.repeats):
        for name in [FLOOR, *names]:
            base_ms = float(sample(BASELINE)["ms"])  # type: ignore[arg-type]
            got = sample(name)
            times[BASELINE].append(base_ms)
            times[name].append(float(got["ms"]))  # type: ignore[arg-type]
            paired[name].append(times[name][-1] / base_ms)
            heavy[name] = list(got["heavy"])  # type: ignore[call-overload]
    base = statistics.median(times[BASELINE])
    ratios = {n: statistics.median(paired[n]) for n in names}
    floor = statistics.median(paired[FLOOR])

    print(f"baseline (boto3 + aws_lambda_powertools + pydantic): {base:.1f} ms {args.clock} "
          f"(median of {len(times[BASELINE])}; min {min(times[BASELINE]):.1f})")
    print(f"floor (minimal validated Powertools HTTP handler): {statistics.median(times[FLOOR]):.1f} ms, "
          f"ratio {floor:.2f}")
    print(f"{'handler':24} {'median_ms':>9} {'ratio':>6}")
    for name in sorted(names, key=lambda n: -ratios[n]):
        flag = "" if ratios[name] <= TARGET else "  > target"
        mods = f"  [{', '.join(heavy[name])}]" if args.show_modules and heavy[name] else ""
        print(f"{name:24} {statistics.median(times[name]):9.1f} {ratios[name]:6.2f}{flag}{mods}")
    worst = max(names, key=lambda n: ratios[n])
    over = sum(1 for n in names if ratios[n] > TARGET)
    print(f"RESULT worst_ratio={ratios[worst]:.2f} median_ratio={statistics.median(ratios.values()):.2f} "
          f"worst_handler={worst} floor_ratio={floor:.2f} baseline_ms={base:.1f} handlers={len(names)} over_target={over} clock={args.clock}")


if __name__ == "__main__":
    main()
