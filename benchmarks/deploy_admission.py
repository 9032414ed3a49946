"""Deployment admission against the bare cryptography it needs, in one run.

Boots the local cloud, publishes a ``lambda`` package (``--artifact-kib`` of function code in the
zip), crowns it bronze, and reads the evidence admission verifies exactly as the ``deploy_admit``
step does (the release bundle with the proofs, the public keys, the ceremony record, the bytes
under ``sha256/<digest>``). Then, best of ``--repeat`` (CPU time of this process):

- admission: ``hallmark.deploy.admission.admission_failure`` (everything it checks: DSSE manifest,
  artifact digest, inclusion proofs in signed checkpoints, the lambda declaration, the ceremony
  record and its witnesses, the tier policy);
- the floor: the same ECDSA P-256 verifications with ``cryptography`` (the manifest envelope, one
  signature per distinct checkpoint, the ceremony record, each witness; each public key loaded
  once), the same inclusion-proof hashing with ``hashlib`` (leaf and path nodes per proof), and
  sha256 of the artifact.

The last line is exactly ``RESULT admission_ms=<best> baseline_ms=<best> ratio=<a/b> ...``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from hallmark.deploy.admission import Admitted, admission_failure
from hallmark.deploy.models import Policy
from hallmark.dsse import pae
from hallmark.signing import load_public_key
from hallmark_tools import samples
from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import LocalCloud
from hallmark_tools.scenarios.deployment import Deployer


def _best(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Best CPU time of each function, the runs interleaved (a busy machine slows both alike)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            t0 = time.process_time()
            fn()
            best[k] = min(best[k], time.process_time() - t0)
    return best


def _floor(ev: Any) -> tuple[Callable[[], None], int]:
    """The bare work: (a function doing it, the number of ECDSA verifications it makes)."""
    bundle = ev.bundle
    items = [i for i in bundle["audit"]["events"]
             if i["event"]["type"] == "ManifestSigned" or i["event"]["chain"] == "ceremony"]
    checkpoints = {json.dumps(i["proof"]["checkpoint"], sort_keys=True): i["proof"]["checkpoint"] for i in items}
    from hallmark.audit.checkpoints import checkpoint_signing_bytes

    env = bundle["manifest"]["envelope"]
    manifest_msg = pae(env["payloadType"], base64.b64decode(env["payload"]))
    att = ev.attestation.envelope
    att_msg = pae(att["payloadType"], base64.b64decode(att["payload"]))
    witness = [(bundle["ceremony"]["witnesses"][w["witnessId"]]["publicKeyPem"].encode(), base64.b64decode(w["signature"]))
               for w in ev.attestation.record["witnessSignatures"]]
    # a witness signs the ceremony statement, whose sha256 the record carries
    statement = bytes.fromhex(ev.attestation.record["witnessStatementDigest"])
    sigs = [(ev.keys["manifest"], manifest_msg, base64.b64decode(env["signatures"][0]["sig"])),
            (ev.keys["proof"], att_msg, base64.b64decode(att["signatures"][0]["sig"])),
            *((ev.keys["audit"], checkpoint_signing_bytes(c), base64.b64decode(c["signature"]))
              for c in checkpoints.values())]
    paths = [(bytes.fromhex(i["proof"]["eventHash"]), [bytes.fromhex(h) for h in i["proof"]["path"]]) for i in items]
    artifact = ev.artifact
    prehashed = ec.ECDSA(hashes.SHA256())

    def work() -> None:
        keys = {pem: load_public_key(pem) for pem in {p for p, _m, _s in sigs} | {p for p, _s in witness}}
        for pem, msg, der in sigs:
            keys[pem].verify(der, msg, prehashed)
        for pem, der in witness:
            keys[pem].verify(der, statement, ec.ECDSA(Prehashed(hashes.SHA256())))
        for leaf, path in paths:
            node = hashlib.sha256(b"\x00" + leaf).digest()
            for sibling in path:
                node = hashlib.sha256(b"\x01" + sibling + node).digest()
        hashlib.sha256(artifact).digest()

    return work, len(sigs) + len(witness)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--artifact-kib", type=int, default=1024,
                    help="function code in the zip, incompressible (1 MiB: a small Python function with its "
                         "dependencies)")
    args = ap.parse_args()
    with LocalCloud(env={"AUDIT_CHECKPOINT_EVERY_SECONDS": "1"}, schedule_every_s=1.0) as cloud:
        from hallmark.adapters import runtime

        d = Deployer(Driver(cloud))
        body = samples.zip_bytes({
            **_lambda_files(),
            "vendor/blob.bin": os.urandom(args.artifact_kib * 1024)})
        pid = d.driver.submit(body, name="bench-fn", version="1.0.0", type="lambda")
        assert d.driver.wait_package(pid)["status"] == "Published"
        d.crown(pid, "bronze")
        evidence = runtime.deployment_steps().evidence
        deadline = time.monotonic() + 120
        while True:  # until the ceremony's events are checkpointed too
            ev = evidence.evidence(pid)
            try:
                verdict = admission_failure(ev, "production", Policy())
            except Exception:
                verdict = None
            if isinstance(verdict, Admitted):
                break
            assert time.monotonic() < deadline, verdict
            time.sleep(0.5)
    policy = Policy()
    floor, verifications = _floor(ev)
    floor()  # the floor must accept the same evidence (else it would time a failure path)
    admission, baseline = _best([lambda: admission_failure(ev, "production", policy), floor], args.repeat)
    proofs = sum(1 for i in ev.bundle["audit"]["events"]
                 if i["event"]["type"] == "ManifestSigned" or i["event"]["chain"] == "ceremony")
    ratio = admission / baseline
    print(f"artifact {len(ev.artifact)} bytes; {verifications} ECDSA verifications, {proofs} inclusion proofs")
    print(f"admission best of {args.repeat}: {admission * 1000:.3f} ms; bare cryptography: {baseline * 1000:.3f} ms")
    print(f"RESULT admission_ms={admission * 1000:.3f} baseline_ms={baseline * 1000:.3f} ratio={ratio:.2f} "
          f"artifact_bytes={len(ev.artifact)} verifications={verifications} proofs={proofs}")


def _lambda_files() -> dict[str, bytes]:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(samples.lambda_package("bench-fn"))) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


if __name__ == "__main__":
    main()
