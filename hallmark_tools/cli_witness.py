"""Witnesses and ceremonies from the command line, on the HTTP API only:

* ``hallmark witness register --id W --public-key PUB.pem`` (superadmin; ``POST /witnesses``);
* ``hallmark witness sign --key KEY.pem --ceremony ID``: fetches the ceremony, signs the exact
  ``signingPayload`` bytes here (DER ECDSA P-256/SHA-256; the key never leaves the machine) and
  posts the signature (the token's ``sub`` is the witness id);
* ``hallmark witness payload --ceremony ID --out FILE`` and ``hallmark witness add --ceremony ID
  --signature SIG.der``: the same with a signer outside the CLI (openssl, an HSM);
* ``hallmark ceremony open --tier T --artifact A ... --blessing TEXT`` prints the ceremony id;
* ``hallmark ceremony status ID [--wait]``: status, witnesses so far, tier awarded.
"""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path
from typing import Any

import typer

from hallmark_tools import cli_api
from hallmark_tools.cli_api import CliError

witness_app = typer.Typer(help="Witnesses: register a P-256 key, sign ceremonies.", no_args_is_help=True)
ceremony_app = typer.Typer(help="Ceremonies: open one, follow it.", no_args_is_help=True)

API = cli_api.API_OPTION
TOKEN = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="a bearer token")
CEREMONY_TERMINAL = ("Completed", "Lapsed")


@witness_app.command("register")
def witness_register(
    witness_id: str = typer.Option(..., "--id", help="the witness id (the witness's token sub must equal it)"),
    public_key: Path = typer.Option(..., "--public-key", exists=True, dir_okay=False, help="P-256 public key (PEM)"),
    api: str = API,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="a superadmin's bearer token"),
) -> None:
    """Register a witness's public key (POST /witnesses, superadmin)."""
    def run() -> None:
        cli_api.register_public_key(api, token, "witnesses", "witnessId", witness_id, public_key)
        print(f"registered witness {witness_id}")

    cli_api.run_cli(run)


@witness_app.command("sign")
def witness_sign(
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help="your witness private key (PEM)"),
    ceremony: str = typer.Option(..., "--ceremony", help="the ceremony id"),
    api: str = API,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="your bearer token (sub = your witness id)"),
) -> None:
    """Sign a ceremony's signingPayload locally and add the signature."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    def run() -> None:
        base = api.rstrip("/")
        try:
            private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise CliError("bad_key", f"{key} is not an unencrypted PEM private key: {exc}") from None
        if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
            raise CliError("bad_key", f"{key} is not an ECDSA P-256 private key")
        doc = cli_api.ok("GET", f"{base}/ceremonies/{ceremony}", token)
        payload = base64.b64decode(doc["signingPayload"])
        _add(base, token, ceremony, private.sign(payload, ec.ECDSA(hashes.SHA256())), doc)

    cli_api.run_cli(run)


def _add(base: str, token: str, ceremony: str, der_signature: bytes, doc: dict[str, Any]) -> None:
    signature = base64.b64encode(der_signature).decode()
    answer = cli_api.ok("POST", f"{base}/ceremonies/{ceremony}/witnesses", token, {"signature": signature})
    after = answer.get("ceremony") or {}
    print(f"signed ceremony {ceremony} (statement {doc.get('statementDigest')}): status {after.get('status')}, "
          f"{len(after.get('witnesses') or [])}/{after.get('requiredWitnesses')} witnesses")


@witness_app.command("payload")
def witness_payload(
    ceremony: str = typer.Option(..., "--ceremony", help="the ceremony id"),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="where to write the exact bytes to sign"),
    api: str = API,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="your bearer token"),
) -> None:
    """Write a ceremony's signingPayload bytes, for a signer outside this CLI (openssl, an HSM):
    ``openssl dgst -sha256 -sign KEY.pem -out SIG.der FILE``, then ``hallmark witness add``."""
    def run() -> None:
        doc = cli_api.ok("GET", f"{api.rstrip('/')}/ceremonies/{ceremony}", token)
        out.write_bytes(base64.b64decode(doc["signingPayload"]))
        print(f"wrote {out} (statement {doc.get('statementDigest')})")

    cli_api.run_cli(run)


@witness_app.command("add")
def witness_add(
    ceremony: str = typer.Option(..., "--ceremony", help="the ceremony id"),
    signature: Path = typer.Option(..., "--signature", exists=True, dir_okay=False,
                                   help="a DER ECDSA P-256/SHA-256 signature over the payload (openssl dgst -sign)"),
    api: str = API,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="your bearer token (sub = your witness id)"),
) -> None:
    """Add a signature made elsewhere (over ``hallmark witness payload``'s bytes) to a ceremony."""
    def run() -> None:
        base = api.rstrip("/")
        der = signature.read_bytes()
        if not der or der[0] != 0x30 or len(der) > 80:
            raise CliError("bad_signature", f"{signature} is not a DER ECDSA signature",
                           "openssl dgst -sha256 -sign KEY.pem -out SIG.der PAYLOAD")
        _add(base, token, ceremony, der, cli_api.ok("GET", f"{base}/ceremonies/{ceremony}", token))

    cli_api.run_cli(run)


@ceremony_app.command("open")
def ceremony_open(
    tier: str = typer.Option(..., "--tier", help="bronze | silver | gold"),
    artifact: list[str] = typer.Option(..., "--artifact", help="an artifact id (repeat for several)"),
    blessing: str = typer.Option(..., "--blessing", help="the human-readable description witnesses sign"),
    type_: str = typer.Option("release", "--type", help="release | update | milestone | collaboration"),
    deadline: str = typer.Option("7d", "--deadline", help="how long witnesses have (60s, 5m, 7d; at most 7d)"),
    api: str = API,
    token: str = TOKEN,
) -> None:
    """Open a ceremony; prints its id alone on stdout (CEREMONY=$(hallmark ceremony open ...))."""
    def run() -> None:
        body: dict[str, Any] = {"tier": tier, "type": type_, "artifacts": list(artifact), "blessing": blessing,
                                "deadlineSeconds": cli_api.parse_duration(deadline)}
        doc = cli_api.ok("POST", f"{api.rstrip('/')}/ceremonies", token, body)
        print(f"opened {tier} ceremony {doc['ceremonyId']}: {doc.get('requiredWitnesses')} witness(es) needed",
              file=sys.stderr)
        print(doc["ceremonyId"])

    cli_api.run_cli(run)


@ceremony_app.command("status")
def ceremony_status(
    ceremony: str = typer.Argument(..., metavar="CEREMONY_ID"),
    api: str = API,
    token: str = TOKEN,
    wait: bool = typer.Option(False, "--wait", help="follow until Completed or Lapsed"),
    timeout: float = typer.Option(120.0, "--timeout", help="seconds to wait (exit 3 after)"),
) -> None:
    """A ceremony's status, witnesses and awarded tier (exit 1 when Lapsed)."""
    def run() -> int:
        deadline = time.monotonic() + timeout
        while True:
            doc = cli_api.ok("GET", f"{api.rstrip('/')}/ceremonies/{ceremony}", token)
            if not wait or doc["status"] in CEREMONY_TERMINAL:
                break
            if time.monotonic() > deadline:
                print(f"still {doc['status']} after {timeout:g}s")
                return 3
            time.sleep(0.3)
        witnesses = [w.get("witnessId", "?") if isinstance(w, dict) else str(w) for w in doc.get("witnesses") or []]
        print(f"{doc['status']} {doc.get('tier')} ceremony {ceremony}: witnesses {', '.join(witnesses) or 'none'} "
              f"({len(witnesses)}/{doc.get('requiredWitnesses')})")
        return 1 if doc["status"] == "Lapsed" else 0

    code = cli_api.run_cli(run)
    if code:
        raise typer.Exit(code)
