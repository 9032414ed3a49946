"""`hallmark audit prove` on a consistency proof of a 1,000,000-event chain, against the hashing floor.

Builds ``--n`` (1,000,000) event hashes (random 32-byte leaves: the RFC 6962 tree depends on the
event hashes alone), two checkpoints signed by a ``LocalSigner`` (sizes ``--old`` and ``n``) and
times, interleaved, ``--repeat`` times, keeping each one's best (CPU time of this process):

(a) prove: the offline check ``hallmark audit prove`` runs (``check_proof_document``: both
    checkpoint signatures, then RFC 9162 2.1.4.2 over the proof) on the document the API serves;
(b) prove floor: the SHA-256 calls that check makes and nothing else (two hash paths of
    ``len(proof)`` nodes), plus the two ECDSA P-256 verifications, done directly;
(c) generate: the server side, ``consistency_proof`` over the n leaves (what
    ``GET /audit/{chain}/consistency`` computes after reading the event hashes);
(d) generate floor: a tree head over the n leaves in a tight loop (n leaf hashes and n - 1 node
    hashes, the minimum any proof generator without stored interior nodes must do).

The last line is exactly
``RESULT n=<n> proof_nodes=<k> prove_ms=<a> prove_floor_ms=<b> prove_ratio=<a/b> gen_s=<c> gen_floor_s=<d> gen_ratio=<c/d>``.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fakes

from hallmark.audit.checkpoints import build_checkpoint, checkpoint_signing_bytes
from hallmark.audit.merkle import consistency_proof, merkle_root
from hallmark.audit.proofs import check_proof_document
from hallmark.signing import verify_signature
from tests.fakes.signing import LocalSigner


def _best(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--old", type=int, default=0, help="size of the older checkpoint (default: n * 0.7, not a power of 2)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--prove-loops", type=int, default=200, help="prove checks per timed run (they take ~1 ms)")
    args = ap.parse_args()
    n, m = args.n, args.old or int(args.n * 0.7) + 3
    leaves = [os.urandom(32) for _ in range(n)]
    signer = LocalSigner.generate(key_id="bench-audit")
    pem = signer.public_key_pem()

    def ckpt(size: int, prev: str) -> dict[str, Any]:
        root = merkle_root(leaves[:size]).hex()
        return build_checkpoint(chain="release", seq=size, ts="2026-12-02T12:00:00Z", head_hash=leaves[size - 1].hex(),
                                merkle_root=root, prev_checkpoint_hash=prev, signer=signer)

    old = ckpt(m, "0" * 64)
    new = ckpt(n, "1" * 64)
    path = consistency_proof(leaves, m, n)
    doc = {"chain": "release", "proof": {"chain": "release", "oldSize": m, "newSize": n, "path": [p.hex() for p in path],
                                         "oldCheckpoint": old, "newCheckpoint": new}}
    keys = {"audit.pem": pem}
    assert check_proof_document(doc, keys).ok
    sigs = [(checkpoint_signing_bytes(c), base64.b64decode(c["signature"])) for c in (old, new)]
    sha = hashlib.sha256

    def prove() -> None:
        for _ in range(args.prove_loops):
            if not check_proof_document(doc, keys).ok:
                raise AssertionError("proof failed")

    def prove_floor() -> None:
        for _ in range(args.prove_loops):
            for msg, sig in sigs:
                verify_signature(pem, msg, sig)
            a = b = path[0]
            for p in path[1:]:  # both running hashes of 2.1.4.2, at most one node each per level
                a = sha(b"\x01" + p + a).digest()
                b = sha(b"\x01" + p + b).digest()

    def generate() -> None:
        consistency_proof(leaves, m, n)

    def generate_floor() -> None:
        level = [sha(b"\x00" + x).digest() for x in leaves]
        while len(level) > 1:
            nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
            if len(level) & 1:
                nxt.append(level[-1])
            level = nxt

    t: dict[str, float] = {}
    for _ in range(args.repeat):  # interleaved, best of each
        t["prove"] = min(t.get("prove", float("inf")), _best(prove, 1) / args.prove_loops)
        t["prove_floor"] = min(t.get("prove_floor", float("inf")), _best(prove_floor, 1) / args.prove_loops)
        t["gen"] = min(t.get("gen", float("inf")), _best(generate, 1))
        t["gen_floor"] = min(t.get("gen_floor", float("inf")), _best(generate_floor, 1))
    print(f"n={n} old={m} proof nodes={len(path)}")
    print(f"audit prove (offline check): {t['prove'] * 1000:.3f} ms; floor (2 ECDSA verifies + path hashes) "
          f"{t['prove_floor'] * 1000:.3f} ms")
    print(f"proof generation over {n} leaves: {t['gen']:.3f} s; floor (one tree head, 2n-1 hashes) {t['gen_floor']:.3f} s")
    print(f"RESULT n={n} proof_nodes={len(path)} prove_ms={t['prove'] * 1000:.3f} "
          f"prove_floor_ms={t['prove_floor'] * 1000:.3f} prove_ratio={t['prove'] / t['prove_floor']:.2f} "
          f"gen_s={t['gen']:.3f} gen_floor_s={t['gen_floor']:.3f} gen_ratio={t['gen'] / t['gen_floor']:.2f}")


if __name__ == "__main__":
    main()
