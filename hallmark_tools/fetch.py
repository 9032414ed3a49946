"""`hallmark fetch ORDER`: the buyer's side of an encrypted delivery.

The command (:func:`fetch_via_api`) needs the API and the buyer's token only, no AWS
credentials: the public keys from ``GET /keys``, the order from ``GET /orders/{id}``, the listing
from ``GET /listings/{id}``, and the plaintext with the signed manifest envelope from ``GET
/orders/{id}/content`` (decrypted inside the orders function with KMS, after it checked the
buyer, the order's state, the ciphertext digest and the exact encryption context). It then
checks what it can without trusting the server: both proofs and the manifest's DSSE signature
with the keys, the proof's ciphertext digest against the content's, the plaintext's sha256
against the listing's artifact and the signed manifest's subject.

:func:`fetch_order` is the lower-level path for a caller that holds AWS credentials with
``kms:Decrypt`` on the delivery key (operators, tests):

Reads the order through the HTTP API (``GET /orders/{id}`` and ``GET /listings/{id}``, with
the buyer's token), downloads the ciphertext from the presigned URL, decrypts it with the
aws-encryption-sdk over the delivery KMS key *with the encryption context the buyer expects*
(``orderId``, ``buyer``, and the listing's ``manifestDigest``, not whatever the delivery
claims), and verifies, before writing anything:

* the ciphertext's sha256 is the one the signed delivery proof names;
* the plaintext's sha256 is the listing's artifact sha256 (the manifest's subject);
* the manifest digest bound into the context is the listing's ``manifestDigest``;
* the ledger proof and the delivery proof verify with the proof public key alone (PEM), the
  delivery proof cites the listing's ``manifestSignatureId`` and the ledger proof's id, and the
  ledger proof is this order's balanced capture (buyer -> escrow, the price);
* optionally (``--manifest-key``), the signed manifest envelope itself: its DSSE signature, its
  digest, its ``manifestSignatureId`` and its subject digest.

Register on the main CLI with ``app.command("fetch")(fetch_command)``. Against ``hallmark local
serve``: ``--api http://127.0.0.1:8080 --token ...``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import typer

ORDER_DELIVERED = "Delivered"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class Decryptor(Protocol):
    def decrypt(self, ciphertext: bytes, expected_context: Mapping[str, str]) -> bytes: ...


class FetchError(Exception):
    """A delivery that does not verify: ``check`` names what failed."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check
        self.message = message


@dataclass
class FetchReport:
    order_id: str
    listing_id: str
    path: str | None
    artifact_sha256: str
    manifest_digest: str
    manifest_signature_id: str
    ledger_proof_id: str
    delivery_proof_id: str
    checks: dict[str, bool] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def quiet_esdk() -> None:
    """The ESDK logs a traceback ("Error on closing") for every refused message on top of
    raising; the refusal is reported here, so keep its log quiet."""
    logging.getLogger("aws_encryption_sdk").setLevel(logging.CRITICAL)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _require(ok: bool, check: str, message: str, checks: dict[str, bool]) -> None:
    checks[check] = ok
    if not ok:
        raise FetchError(check, message)


def wait_delivered(get_json: Callable[[str], Any], order_id: str, timeout: float = 30.0,
                   interval: float = 0.1) -> dict[str, Any]:
    """Poll ``GET /orders/{id}`` until the ArtifactPublisher has delivered it."""
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = get_json(f"/orders/{order_id}")
        if view["status"] == ORDER_DELIVERED:
            return view
        if time.monotonic() > deadline:
            raise TimeoutError(f"order {order_id} is still {view['status']}")
        time.sleep(interval)


def verify_proofs(view: Mapping[str, Any], listing: Mapping[str, Any], proof_key_pem: bytes,
                  checks: dict[str, bool] | None = None) -> dict[str, bool]:
    """The ledger and delivery proofs of an order view, with the proof public key alone."""
    from hallmark.market.proofs import SignedProof, verify_proof

    checks = {} if checks is None else checks
    order = view["order"]
    proofs = view.get("proofs") or {}
    _require(bool(proofs.get("ledger")) and bool(proofs.get("delivery")), "proofs_present",
             "the order has no ledger or delivery proof yet", checks)
    ledger = SignedProof.model_validate(proofs["ledger"])
    delivery = SignedProof.model_validate(proofs["delivery"])
    _require(ledger.kind == "ledger" and verify_proof(ledger, proof_key_pem), "ledger_proof_signature",
             "the ledger proof does not verify with the proof key", checks)
    _require(delivery.kind == "delivery" and verify_proof(delivery, proof_key_pem), "delivery_proof_signature",
             "the delivery proof does not verify with the proof key", checks)
    _require(ledger.proof_id == order["ledgerProofId"] and delivery.proof_id == order["deliveryProofId"],
             "proof_ids", "the order cites other proofs", checks)
    postings = ledger.proof["postings"]
    buyer_wallet = f"wallet:{order['buyer']}:{order['currency']}"
    _require(ledger.proof["txId"] == f"{order['orderId']}:capture"
             and sum(p["amountMinor"] for p in postings) == 0
             and {p["currency"] for p in postings} == {order["currency"]}
             and any(p["account"] == buyer_wallet and p["amountMinor"] == -order["priceMinor"] for p in postings),
             "ledger_proof_content", "the ledger proof is not this order's balanced capture", checks)
    d = delivery.proof
    _require(d["orderId"] == order["orderId"] and d["ledgerProofId"] == ledger.proof_id
             and d["manifestSignatureId"] == listing["manifestSignatureId"] == order["manifestSignatureId"],
             "delivery_proof_citations",
             "the delivery proof does not cite this order, its ledger proof and the listing's manifest signature",
             checks)
    return checks


def verify_manifest(envelope: Mapping[str, Any], manifest_key_pem: bytes, listing: Mapping[str, Any],
                    plaintext_sha256: str, checks: dict[str, bool]) -> None:
    """The signed manifest (DSSE over in-toto) the listing names, down to its subject digest."""
    from hallmark.canonical import sha256_hex
    from hallmark.dsse import DsseError, manifest_signature_id, verify_envelope

    try:
        payload = verify_envelope(envelope, manifest_key_pem)
    except DsseError as exc:
        _require(False, "manifest_signature", str(exc), checks)
        return
    checks["manifest_signature"] = True
    _require(sha256_hex(payload) == listing["manifestDigest"], "manifest_digest_matches_envelope",
             "the envelope's payload is not the listing's manifest digest", checks)
    _require(manifest_signature_id(envelope) == listing["manifestSignatureId"], "manifest_signature_id",
             "the envelope is not the listing's manifestSignatureId", checks)
    subjects = json.loads(payload).get("subject") or []
    _require(any((s.get("digest") or {}).get("sha256") == plaintext_sha256 for s in subjects),
             "manifest_subject", "the decrypted artifact is not the manifest's subject", checks)


def _deliver(order_id: str, order: Mapping[str, Any], listing: Mapping[str, Any], plaintext: bytes, digest: str,
             out_dir: Path | None, checks: dict[str, bool]) -> FetchReport:
    """Every check held: write the artifact (under a safe name) and report."""
    path: Path | None = None
    if out_dir is not None:
        name = str(listing.get("artifactName") or "")
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / (name if _SAFE_NAME.match(name) else f"{order_id}.bin")
        path.write_bytes(plaintext)
    return FetchReport(order_id=order_id, listing_id=listing["listingId"], path=str(path) if path else None,
                       artifact_sha256=digest, manifest_digest=listing["manifestDigest"],
                       manifest_signature_id=listing["manifestSignatureId"],
                       ledger_proof_id=order["ledgerProofId"], delivery_proof_id=order["deliveryProofId"],
                       checks=checks)


def fetch_order(
    order_id: str,
    *,
    get_json: Callable[[str], Any],
    download: Callable[[str], bytes],
    decryptor_for: Callable[[str], Decryptor],
    proof_key_pem: bytes,
    out_dir: Path | None = None,
    manifest_key_pem: bytes | None = None,
    read_manifest: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    wait_s: float = 0.0,
) -> FetchReport:
    """Download, decrypt and verify one order's delivery; write the artifact to ``out_dir``
    only when every check holds. Raises :class:`FetchError` naming the failed check."""
    from hallmark.errors import DomainError
    from hallmark.market.delivery import encryption_context

    view = wait_delivered(get_json, order_id, wait_s) if wait_s > 0 else get_json(f"/orders/{order_id}")
    checks: dict[str, bool] = {}
    _require(view.get("status") == ORDER_DELIVERED, "delivered", f"the order is {view.get('status')}", checks)
    order = view["order"]
    listing: dict[str, Any] = get_json(f"/listings/{order['listingId']}")
    delivery = view.get("delivery") or {}
    _require(bool(delivery.get("url")), "download_url", "no download URL (expired, or not the buyer)", checks)
    verify_proofs(view, listing, proof_key_pem, checks)
    delivery_proof = view["proofs"]["delivery"]["proof"]

    ciphertext = download(str(delivery["url"]))
    _require(_sha256(ciphertext) == delivery_proof["ciphertextDigest"], "ciphertext_digest",
             "the downloaded ciphertext is not the one the delivery proof names", checks)
    _require(order["manifestDigest"] == listing["manifestDigest"], "manifest_digest",
             "the order's manifest digest is not the listing's", checks)
    expected = encryption_context(order_id, order["buyer"], listing["manifestDigest"])
    try:
        plaintext = decryptor_for(str(delivery.get("keyArn") or "")).decrypt(ciphertext, expected)
    except DomainError as exc:
        raise FetchError("decrypt", f"{exc.code}: {exc.message}") from None
    checks["decrypt"] = True
    checks["encryption_context"] = True  # the decryptor refuses any other context
    digest = _sha256(plaintext)
    _require(digest == listing["artifactSha256"], "artifact_sha256",
             "the decrypted artifact is not the listing's artifact", checks)
    if manifest_key_pem is not None and read_manifest is not None:
        verify_manifest(read_manifest(listing["manifestRef"]), manifest_key_pem, listing, digest, checks)

    return _deliver(order_id, order, listing, plaintext, digest, out_dir, checks)


def public_keys(get_json: Callable[[str], Any]) -> dict[str, bytes]:
    """``GET /keys``: purpose -> PEM."""
    return {str(k["purpose"]): str(k["pem"]).encode("ascii") for k in get_json("/keys").get("keys") or []}


def fetch_via_api(order_id: str, *, get_json: Callable[[str], Any], out_dir: Path | None = None,
                  keys: Mapping[str, bytes] | None = None, wait_s: float = 0.0) -> FetchReport:
    """The buyer's path with a token only (see the module docstring). Writes the artifact to
    ``out_dir`` only when every check holds; raises :class:`FetchError` naming the failed check."""
    import base64
    import binascii

    keys = dict(keys) if keys is not None else public_keys(get_json)
    checks: dict[str, bool] = {}
    _require("proof" in keys and "manifest" in keys, "public_keys", "GET /keys lists no proof or manifest key", checks)
    view = wait_delivered(get_json, order_id, wait_s) if wait_s > 0 else get_json(f"/orders/{order_id}")
    _require(view.get("status") == ORDER_DELIVERED, "delivered", f"the order is {view.get('status')}", checks)
    order = view["order"]
    listing: dict[str, Any] = get_json(f"/listings/{order['listingId']}")
    verify_proofs(view, listing, keys["proof"], checks)
    _require(order["manifestDigest"] == listing["manifestDigest"], "manifest_digest",
             "the order's manifest digest is not the listing's", checks)
    content: dict[str, Any] = get_json(f"/orders/{order_id}/content")
    _require(content.get("ciphertextDigest") == view["proofs"]["delivery"]["proof"]["ciphertextDigest"],
             "ciphertext_digest", "the decrypted delivery is not the one the signed delivery proof names", checks)
    try:
        plaintext = base64.b64decode(str(content.get("contentBase64") or ""), validate=True)
    except (binascii.Error, ValueError):
        _require(False, "content_encoding", "the content is not base64", checks)
    digest = _sha256(plaintext)
    _require(digest == content.get("contentSha256") == listing["artifactSha256"], "artifact_sha256",
             "the decrypted artifact is not the listing's artifact", checks)
    verify_manifest(content.get("manifestEnvelope") or {}, keys["manifest"], listing, digest, checks)
    return _deliver(order_id, order, listing, plaintext, digest, out_dir, checks)


# --------------------------------------------------------------------------- the command


def fetch_command(
    order_id: str = typer.Argument(..., metavar="ORDER", help="The order id (from the checkout)."),
    api: str = typer.Option("http://127.0.0.1:8080", "--api", envvar="HALLMARK_API", help="Base URL of the HTTP API."),
    token: str = typer.Option(..., "--token", envvar="HALLMARK_TOKEN", help="The buyer's bearer token."),
    proof_key: Path | None = typer.Option(None, "--proof-key", exists=True, dir_okay=False,
                                          help="proof.pem to pin (default: GET /keys)."),
    manifest_key: Path | None = typer.Option(None, "--manifest-key", exists=True, dir_okay=False,
                                             help="manifest.pem to pin (default: GET /keys)."),
    out: Path = typer.Option(Path("."), "--out", help="Where to write the decrypted artifact."),
    wait: float = typer.Option(30.0, "--wait", help="Seconds to wait for the delivery to be published."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Download the decrypted delivery through the API (token only, no AWS credentials) and verify it
    (proofs, signed manifest, digests); exit 2 if any check fails."""
    import requests
    from rich.console import Console

    console = Console()
    headers = {"authorization": f"Bearer {token}"}
    base = api.rstrip("/")

    def get_json(path: str) -> Any:
        try:
            resp = requests.get(base + path, headers=headers, timeout=60)
        except requests.RequestException as exc:
            raise FetchError("api", f"GET {base + path}: {exc}") from None
        if resp.status_code >= 300:
            raise FetchError("api", f"GET {path} -> {resp.status_code}: {resp.text[:300]}")
        return resp.json()

    try:
        keys = public_keys(get_json)
        if proof_key is not None:
            keys["proof"] = proof_key.read_bytes()
        if manifest_key is not None:
            keys["manifest"] = manifest_key.read_bytes()
        report = fetch_via_api(order_id, get_json=get_json, out_dir=out, keys=keys, wait_s=wait)
    except FetchError as exc:
        if as_json:
            print(json.dumps({"ok": False, "check": exc.check, "message": exc.message}))
        else:
            console.print(f"[bold red]FAILED[/] {exc.check}: {exc.message}")
        raise typer.Exit(2) from None
    except TimeoutError as exc:
        if as_json:
            print(json.dumps({"ok": False, "check": "delivered", "message": str(exc)}))
        else:
            console.print(f"[bold red]NOT DELIVERED[/] {exc}")
        raise typer.Exit(3) from None
    if as_json:
        print(json.dumps({"ok": True, **report.as_dict()}))
        return
    console.print(f"[bold green]OK[/] {report.path}  sha256 {report.artifact_sha256}")
    for check, ok in report.checks.items():
        console.print(f"  {'[green]✓' if ok else '[red]✗'}[/] {check}")
