"""Commands per role, on the HTTP API only (no AWS credentials):

* ``hallmark approver keygen --out approver-1.pem`` (a P-256 key, PKCS#8, mode 0600, and its
  public ``.pub.pem``) and ``hallmark approver register --id ID --public-key PUB.pem`` (superadmin);
* ``hallmark approve --key KEY.pem (--upgrade ID | --package PACKAGE_ID | --settlement ID)``: the
  decision is signed here and posted (an approver's token ``sub`` is its approver id);
* ``hallmark status PACKAGE_ID [--wait]``: status, history, validator results and reasons;
* ``hallmark local wait``: returns once the local API answers ``/health``.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from hallmark_tools import cli_api
from hallmark_tools.cli_api import CliError

approver_app = typer.Typer(help="Approver onboarding: a P-256 key, registered by a superadmin.", no_args_is_help=True)

API = cli_api.API_OPTION


@approver_app.command("keygen")
def approver_keygen(out: Path = typer.Option(..., "--out", help="private key file (PEM); PUBLIC key beside it as .pub.pem")) -> None:
    """Make an ECDSA P-256 key pair here (the private key never leaves this machine)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    def run() -> None:
        if out.exists():
            raise CliError("exists", f"{out} exists; not overwriting a key")
        key = ec.generate_private_key(ec.SECP256R1())
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        pub = out.with_name(out.name.removesuffix(".pem") + ".pub.pem")
        pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
        print(f"private key {out} (keep it), public key {pub} (register it)")

    cli_api.run_cli(run)


@approver_app.command("register")
def approver_register(
    approver_id: str = typer.Option(..., "--id", help="the approver id (the approver's token sub must equal it)"),
    public_key: Path = typer.Option(..., "--public-key", exists=True, dir_okay=False, help="P-256 public key (PEM)"),
    api: str = API,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="a superadmin's bearer token"),
) -> None:
    """Register an approver's public key (POST /approvers, superadmin)."""
    def run() -> None:
        answer = cli_api.register_public_key(api, token, "approvers", "approverId", approver_id, public_key)
        print(f"registered approver {answer.get('approverId', approver_id)}")

    cli_api.run_cli(run)


def approve_command(
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help="your approver private key (PEM); it never leaves this machine"),
    upgrade: str = typer.Option(None, "--upgrade", help="the upgrade id (GET /packages/{id} shows it as upgradeId)"),
    package: str = typer.Option(None, "--package", help="a package id: decide on its pending upgrade"),
    settlement: str = typer.Option(None, "--settlement", help="a settlement id: approve its payout plan"),
    api: str = API,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="your bearer token (role approver; sub = your approver id)"),
    decision: str = typer.Option("approve", "--decision", help="approve | reject (approvals), ratify | veto (ratifications of an emergency upgrade)"),
    approver_id: str = typer.Option("", "--approver-id", help="defaults to the token's sub"),
    valid_for: int = typer.Option(900, "--valid-for", help="seconds the signed decision stays valid"),
) -> None:
    """Sign a decision on an upgrade (or a package's upgrade, or a settlement) locally and submit it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from hallmark.governance.messages import sign_approval

    def run() -> None:
        base = api.rstrip("/")
        if sum(x is not None for x in (upgrade, package, settlement)) != 1:
            raise CliError("usage", "name exactly one of --upgrade, --package, --settlement")
        try:
            private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise CliError("bad_key", f"{key} is not an unencrypted PEM private key: {exc}") from None
        if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
            raise CliError("bad_key", f"{key} is not an ECDSA P-256 private key",
                           "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out KEY.pem")
        who = approver_id or cli_api.token_sub(token)
        expires = datetime.now(UTC) + timedelta(seconds=valid_for)
        if settlement:
            doc = cli_api.ok("GET", f"{base}/settlements/{settlement}", token)
            form = sign_approval(private, approver_id=who, subject_id=settlement, digest=doc["planDigest"],
                                 decision=decision, expires_at=expires, kind="settlement")  # type: ignore[arg-type]
            answer = cli_api.ok("POST", f"{base}/settlements/{settlement}/approvals", token, form)
            print(f"recorded {decision} by {who} on settlement {settlement}: outcome {answer.get('outcome')}")
            return
        subject = upgrade
        if package:
            subject = cli_api.ok("GET", f"{base}/packages/{package}", token).get("upgradeId")
            if not subject:
                raise CliError("no_upgrade", f"package {package} has no upgrade waiting for decisions",
                               f"hallmark status {package} shows where it is")
        doc = cli_api.ok("GET", f"{base}/upgrades/{subject}", token)
        form = sign_approval(private, approver_id=who, subject_id=str(subject), digest=doc["manifestDigest"],
                             decision=decision, expires_at=expires)  # type: ignore[arg-type]
        collection = "ratifications" if decision in ("ratify", "veto") else "approvals"
        answer = cli_api.ok("POST", f"{base}/upgrades/{subject}/{collection}", token, form)
        print(f"recorded {decision} by {who} on upgrade {subject}: outcome {answer.get('outcome')}")

    cli_api.run_cli(run)


def status_command(
    package_id: str = typer.Argument(..., metavar="PACKAGE_ID"),
    api: str = API,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="a bearer token (its submitter, an approver, auditor or superadmin)"),
    wait: bool = typer.Option(False, "--wait", help="follow until Published, Rejected, Failed or RolledBack"),
    timeout: float = typer.Option(300.0, "--timeout", help="seconds to wait (exit 3 after)"),
) -> None:
    """A package's status, history, validator results and reasons (exit 1 when Rejected/Failed)."""
    from hallmark_tools.cli_submit import FAILURE, SUCCESS, Follower, outcome

    def run() -> int:
        follower = Follower()
        deadline = time.monotonic() + timeout
        while True:
            doc: dict[str, Any] = cli_api.ok("GET", f"{api.rstrip('/')}/packages/{package_id}", token)
            follower.show(doc)
            if not wait or doc["status"] in (*SUCCESS, *FAILURE):
                if doc["status"] in (*SUCCESS, *FAILURE, "AwaitingApproval"):
                    return outcome(doc)
                print(f"{doc['status']} ({package_id})")
                return 0
            if time.monotonic() > deadline:
                print(f"still {doc['status']} after {timeout:g}s")
                return 3
            time.sleep(0.3)

    code = cli_api.run_cli(run)
    if code:
        raise typer.Exit(code)


def wait_command(api: str = API, timeout: float = typer.Option(120.0, "--timeout", help="seconds to wait")) -> None:
    """Wait until the API answers /health (after `hallmark local serve &`)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _ = cli_api.call("GET", f"{api.rstrip('/')}/health", timeout=2)
            if status == 200:
                print(f"{api} is up")
                return
        except CliError:
            pass
        if time.monotonic() > deadline:
            cli_api.fail("api_unreachable", f"{api} did not answer /health within {timeout:g}s",
                         "is hallmark local serve running (and on this port)?")
        time.sleep(0.3)


model_app = typer.Typer(help="The EVI scoring model (superadmin).", no_args_is_help=True)


@model_app.command("register")
def model_register(
    package_id: str = typer.Argument(..., metavar="PACKAGE_ID", help="a Published model package"),
    api: str = API,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="a superadmin's bearer token"),
) -> None:
    """Make a released model package the active scoring model (POST /scoring/model): its signed
    manifest and every declared file's sha256 are checked first."""
    def run() -> None:
        model = cli_api.ok("POST", f"{api.rstrip('/')}/scoring/model", token, {"packageId": package_id})
        print(f"active scoring model: evi.onnx sha256 {model.get('modelDigest')} (package {package_id}, "
              f"manifest {model.get('manifestSignatureId')})")

    cli_api.run_cli(run)
