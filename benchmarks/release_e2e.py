"""Release pipeline end to end on the local cloud: submit -> Published latency (p50/p95) for N
packages, and the Step Functions state transitions per package (the cost driver).

Baseline measured in the same run (the floor): the same work without the platform, i.e. the
six validators and the DSSE signature of the manifest called directly in-process on the same
package. The ratio says what orchestration (S3 events, Step Functions, Lambda hops, DynamoDB,
KMS, the audit queue) costs on top of the work itself on this machine's local cloud.

    python benchmarks/release_e2e.py [--n 50]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hallmark.canonical import canonical_bytes
from hallmark.dsse import sign_envelope
from hallmark.release.validators import ValidatorConfig, run_all
from hallmark.release.validators.model import PackageMeta
from hallmark_tools import samples
from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import ROOT, LocalCloud
from tests.fakes.signing import LocalSigner


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def transitions(cloud: LocalCloud, arn: str) -> int:
    sfn = cloud.client("stepfunctions")
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            break
    return sum(1 for e in events if e["type"].endswith("StateEntered"))


def floor(n: int) -> list[float]:
    signer = LocalSigner.generate()
    config = ValidatorConfig(advisory_path=str(ROOT / "events" / "advisories" / "osv-sample.json"))
    out = []
    for i in range(n):
        body = samples.clean_package(f"bench-floor-{i}")
        meta = PackageMeta.model_validate({k: v for k, v in samples.submission(f"bench-floor-{i}", "1.0.0", body).items()
                                           if k in PackageMeta.model_fields})
        t0 = time.perf_counter()
        results = run_all(body, meta, config)
        sign_envelope(canonical_bytes({"preconditions": [r.digest for r in results]}), "application/vnd.in-toto+json",
                      signer)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    args = ap.parse_args()
    latencies: list[float] = []
    counts: list[int] = []
    # Handlers print their logs and EMF metrics to stdout as in Lambda; keep the report readable.
    with contextlib.redirect_stdout(io.StringIO()), LocalCloud() as cloud:
        d = Driver(cloud)
        for i in range(args.n):
            body = samples.clean_package(f"bench-{i}")
            t0 = time.perf_counter()
            pid = d.submit(body, name=f"bench-{i}", version="1.0.0")
            doc = d.wait_package(pid, timeout=300)
            latencies.append(time.perf_counter() - t0)
            assert doc["status"] == "Published", doc
            counts.append(transitions(cloud, doc["executionArn"]))
    base = floor(min(args.n, 20))
    p50, p95, f50 = pct(latencies, 50), pct(latencies, 95), pct(base, 50)
    print(f"submit -> Published over {args.n} packages: p50 {p50:.3f} s, p95 {p95:.3f} s")
    print(f"state transitions per package: {statistics.mean(counts):.1f} (min {min(counts)}, max {max(counts)})")
    print(f"floor (6 validators + DSSE sign in-process): p50 {f50:.3f} s")
    print(f"RESULT n={args.n} p50_s={p50:.3f} p95_s={p95:.3f} transitions_per_package={statistics.mean(counts):.1f} "
          f"floor_p50_s={f50:.3f} p50_vs_floor={p50 / f50:.1f}")


if __name__ == "__main__":
    main()
