"""Audit replay throughput against raw SHA-256 over the same canonical bytes.

Generates ``--n`` events (default 1,000,000) on one chain with the real ``AuditLog`` on the
in-memory store, checkpoints every ``--every`` events (10,000) signed by a ``LocalSigner``,
exports them as JSON Lines into a temporary directory, then times in the same run:

(a) replay: ``verify_export_files`` over the two files (read, parse, recompute every hash,
    link, signature reference and Merkle root, check every checkpoint signature), on the
    native kernel when it is built (``path=native``), else in pure Python (``path=python``);
    the same replay forced to pure Python (``HALLMARK_REPLAY_NATIVE=0``) is timed too, for
    reference;
(b) raw: ``hashlib.sha256(b).digest()`` over the precomputed RFC 8785 hash input of each
    event (the event without ``hash`` and ``signature``), i.e. hashing only;
(c) for reference, the hashing floor of replay: the three SHA-256 calls per event that the
    wire format requires (event hash, RFC 6962 leaf hash, one interior node on average).

They are run interleaved, ``--repeat`` times, and each keeps its best run. Timings
are the CPU time of this process (``time.process_time``: on a shared, noisy machine a long
run otherwise loses more to other processes than a short one); wall-clock figures are
printed too. The last line is exactly
``RESULT replay_events_per_s=<n> raw_sha256_events_per_s=<n> ratio=<replay/raw> path=<native|python>``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fakes

from hallmark.audit.checkpoints import CheckpointPolicy
from hallmark.audit.events import EVENT_TYPES
from hallmark.audit.log import AuditLog
from hallmark.audit.replay import native_replay, verify_export_files
from hallmark.canonical import canonical_bytes
from tests.fakes.audit import InMemoryAuditStore
from tests.fakes.signing import LocalSigner


class StepClock:
    """A deterministic clock: 1 ms per reading."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def generate(n: int, every: int) -> tuple[AuditLog, LocalSigner]:
    signer = LocalSigner.generate(key_id="bench-audit-key")
    clock = StepClock()
    log = AuditLog(
        InMemoryAuditStore(), signer, CheckpointPolicy(every_n=every, every_seconds=math.inf), clock
    )
    types = [t for flow in EVENT_TYPES.values() for t in flow]
    for i in range(1, n + 1):
        digest = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
        log.append(
            "release",
            f"evt-{i:09d}",
            clock(),
            types[i % len(types)],
            f"svc-{i % 13}",
            f"pkg-{i % 977}",
            {"artifact": f"pkg-{i % 977}-1.{i % 50}.0.tar.gz", "sha256": digest, "size": 1000 + i % 100_000,
             "ok": i % 11 != 0, "score": (i % 1000) / 1000 + 0.0005},
        )  # fmt: skip
    log.checkpoint_now("release")
    return log, signer


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(CPU seconds, wall seconds, result) of one call."""
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - c0, time.perf_counter() - w0, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000, help="events on the chain (default 1,000,000)")
    parser.add_argument(
        "--every", type=int, default=10_000, help="checkpoint every N events (default 10,000)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="best of R timings (default 3)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    log, signer = generate(args.n, args.every)
    print(f"generated {args.n:,} events in {time.perf_counter() - t0:.1f}s")

    with tempfile.TemporaryDirectory(prefix="hallmark-bench-") as tmp:
        t0 = time.perf_counter()
        events_path, ckpts_path = log.write_export("release", Path(tmp))
        size_mb = events_path.stat().st_size / 1e6
        n_ckpts = len(ckpts_path.read_text().splitlines())
        print(
            f"exported {events_path.name} ({size_mb:.0f} MB) and {n_ckpts} checkpoints "
            f"in {time.perf_counter() - t0:.1f}s"
        )

        # raw: the canonical hash input of every event, precomputed
        blobs = [canonical_bytes(ev.hash_input()) for ev in log.store.events("release")]
        assert hashlib.sha256(blobs[-1]).hexdigest() == log.store.head("release")[1]  # type: ignore[index]
        pem = signer.public_key_pem()
        del log
        gc.collect()

        def raw() -> int:
            sha = hashlib.sha256
            for b in blobs:
                sha(b).digest()
            return len(blobs)

        def floor() -> int:  # the 3 SHA-256 calls per event the format needs, nothing else
            sha = hashlib.sha256
            leaf, node = sha(b"\x00").copy, sha(b"\x01").copy
            prev = bytes(32)
            for b in blobs:
                d = sha(b).digest()
                h = leaf()
                h.update(d)
                x = h.digest()
                h = node()
                h.update(prev)
                h.update(x)
                prev = h.digest()
            return len(blobs)

        def replay() -> object:  # files on disk, read, parsed and verified
            report = verify_export_files(events_path, ckpts_path, pem)
            assert report.ok and report.events == args.n, report
            return report

        def replay_python() -> object:  # the same, forced onto the pure-Python path
            old = os.environ.get("HALLMARK_REPLAY_NATIVE")
            os.environ["HALLMARK_REPLAY_NATIVE"] = "0"
            try:
                return replay()
            finally:
                if old is None:
                    del os.environ["HALLMARK_REPLAY_NATIVE"]
                else:
                    os.environ["HALLMARK_REPLAY_NATIVE"] = old

        path = "native" if native_replay() else "python"
        cpu = {"replay": math.inf, "replay_python": math.inf, "raw": math.inf, "floor": math.inf}
        wall = dict(cpu)
        report: object = None
        runs = (("replay", replay), ("replay_python", replay_python), ("raw", raw), ("floor", floor))
        for _ in range(args.repeat):
            for name, fn in runs:
                c, w, result = timed(fn)
                cpu[name], wall[name] = min(cpu[name], c), min(wall[name], w)
                if name == "replay":
                    report = result

    eps = {k: args.n / v for k, v in cpu.items()}
    wall_eps = {k: args.n / v for k, v in wall.items()}
    checkpoints = getattr(report, "checkpoints", 0)
    print(
        f"replay : {cpu['replay']:7.2f}s CPU  {eps['replay']:12,.0f} events/s  "
        f"(wall {wall_eps['replay']:,.0f}/s; {checkpoints} checkpoint signatures and roots verified; "
        f"path={path})"
    )
    print(
        f"python : {cpu['replay_python']:7.2f}s CPU  {eps['replay_python']:12,.0f} events/s  "
        f"(wall {wall_eps['replay_python']:,.0f}/s; the same replay, pure Python, HALLMARK_REPLAY_NATIVE=0; "
        f"{eps['replay_python'] / eps['raw']:.3f}x raw)"
    )
    print(
        f"raw    : {cpu['raw']:7.2f}s CPU  {eps['raw']:12,.0f} events/s  "
        f"(wall {wall_eps['raw']:,.0f}/s; sha256 of the canonical bytes only)"
    )
    print(
        f"floor  : {cpu['floor']:7.2f}s CPU  {eps['floor']:12,.0f} events/s  "
        f"(wall {wall_eps['floor']:,.0f}/s; the 3 sha256 per event the format needs, as hashlib calls: the pure-Python path's floor)"
    )
    print(
        f"ratio replay/raw = {eps['replay'] / eps['raw']:.3f} (wall {wall_eps['replay'] / wall_eps['raw']:.3f}); "
        f"hashing floor/raw = {eps['floor'] / eps['raw']:.3f}"
    )
    print(
        f"RESULT replay_events_per_s={eps['replay']:.0f} raw_sha256_events_per_s={eps['raw']:.0f} "
        f"ratio={eps['replay'] / eps['raw']:.3f} path={path}"
    )


if __name__ == "__main__":
    main()
