"""`hallmark audit prove`, `hallmark audit verify` with a key set, and `hallmark keys export --api`:
the third-party verification commands. Everything here runs offline from files (except the key
download, which needs only the public `GET /keys` route, no AWS credentials)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console(soft_wrap=True)  # paths and reasons stay on one line (scripts grep them)


def _load_keys(paths: list[Path]) -> dict[str, bytes]:
    """name -> PEM; the name is the file path as given (unique, so a report can say which key)."""
    keys: dict[str, bytes] = {}
    for p in paths:
        if str(p) in keys:
            raise typer.BadParameter(f"key {p} given twice", param_hint="--key")
        keys[str(p)] = p.read_bytes()
    return keys


def _load_checkpoints(paths: list[Path]) -> list[dict[str, Any]]:
    """Checkpoints from files holding one JSON object, or JSON Lines (a <chain>.checkpoints.jsonl)."""
    out: list[dict[str, Any]] = []
    for p in paths:
        text = p.read_text(encoding="utf-8")
        try:
            docs = [json.loads(text)]
        except json.JSONDecodeError:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        for d in docs:
            if isinstance(d, dict) and isinstance(d.get("checkpoint"), dict):
                d = d["checkpoint"]  # the API's {"chain", "checkpoint"} envelope
            if not isinstance(d, dict) or "merkleRoot" not in d:
                raise typer.BadParameter(f"{p} holds something that is not a checkpoint", param_hint="--known")
            out.append(d)
    return out


def prove_command(
    proof: Path = typer.Argument(..., exists=True, dir_okay=False,
                                 help="a proof document as GET /audit/{chain}/proof/{seq} or /consistency returned it"),
    key: list[Path] = typer.Option(..., "--key", exists=True, dir_okay=False,
                                   help="audit checkpoint public key (PEM); repeat for a key set"),
    known: list[Path] = typer.Option([], "--known", exists=True, dir_okay=False,
                                     help="checkpoints seen before (JSON or JSON Lines): one of the same size "
                                          "with another root is a fork"),
) -> None:
    """Verify an inclusion or consistency proof offline: exit 0 when it holds, 2 otherwise, 3 on a fork."""
    from hallmark.audit.proofs import check_proof_document

    keys = _load_keys(key)
    try:
        doc = json.loads(proof.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        console.print(f"[bold red]FAILED[/] {proof} is not JSON: {exc}")
        raise typer.Exit(2) from None
    started = time.perf_counter()
    result = check_proof_document(doc, keys, known=_load_checkpoints(known))
    elapsed = time.perf_counter() - started
    if result.ok:
        console.print(f"[bold green]OK[/] {result.summary()} in {elapsed * 1000:.2f} ms")
        return
    console.print(f"[bold red]{'FORK' if result.fork else 'FAILED'}[/] {result.kind} proof: {result.reason}")
    raise typer.Exit(3 if result.fork else 2)


def _keys_by_first_checkpoint(checkpoints: Path, keys: dict[str, bytes]) -> list[str]:
    """Key names, those that verify the first checkpoint's signature first (a chain has one key)."""
    from hallmark.audit.proofs import signing_key

    with checkpoints.open("rb") as f:
        first = f.readline()
    try:
        ckpt = json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return list(keys)
    if not isinstance(ckpt, dict):
        return list(keys)
    hit = signing_key(ckpt, keys)
    return [hit, *(k for k in keys if k != hit)] if hit else list(keys)


def verify_command(
    events: Path = typer.Argument(..., exists=True, dir_okay=False, help="<chain>.events.jsonl"),
    checkpoints: Path = typer.Option(..., "--checkpoints", exists=True, dir_okay=False, help="<chain>.checkpoints.jsonl"),
    key: list[Path] = typer.Option(..., "--key", exists=True, dir_okay=False,
                                   help="audit checkpoint public key (PEM); repeat to give a key set: each is "
                                        "tried and the report names the one that verified"),
) -> None:
    """Replay an exported chain offline: exit 0 when every hash, link, root and signature holds."""
    from hallmark.audit.replay import verify_export_files  # (the native kernel when it is built)

    keys = _load_keys(key)
    started = time.perf_counter()
    failures: list[tuple[str, Any]] = []
    for name in _keys_by_first_checkpoint(checkpoints, keys):
        pem = keys[name]
        try:
            report = verify_export_files(events, checkpoints, pem)
        except ValueError as exc:  # an unusable key file
            failures.append((name, f"unusable key: {exc}"))
            continue
        if report.ok:
            elapsed = time.perf_counter() - started
            which = f" with key {name}" if len(keys) > 1 else ""
            console.print(f"[bold green]OK[/] {report.events} events, {report.checkpoints} checkpoints verified"
                          f"{which} in {elapsed:.2f}s (chains: {', '.join(sorted(report.chains))})")
            return
        failures.append((name, report))
    for name, rep in failures:
        prefix = f"key {name}: " if len(keys) > 1 else ""
        if isinstance(rep, str):
            console.print(f"[bold red]FAILED[/] {prefix}{rep}")
        else:
            console.print(f"[bold red]FAILED[/] {prefix}at seq {rep.first_bad_seq}: {rep.reason}")
    if len(keys) > 1:
        console.print(f"no key of the {len(keys)} given verified the chain")
    raise typer.Exit(2)


def fetch_public_keys(api: str, timeout_s: float = 30) -> list[dict[str, Any]]:
    """`GET {api}/keys` (public: no token), each entry checked: a P-256 PEM whose fingerprint
    is the one published next to it. ``ValueError`` on anything else."""
    import urllib.error
    import urllib.request

    from hallmark.public_keys import PURPOSE_PATTERN
    from hallmark.signing import public_key_fingerprint

    try:
        with urllib.request.urlopen(f"{api.rstrip('/')}/keys", timeout=timeout_s) as resp:
            body = json.loads(resp.read())
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {api}/keys: {exc}") from exc
    entries = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{api}/keys returned no keys")
    seen: set[str] = set()
    for e in entries:
        purpose = e.get("purpose") if isinstance(e, dict) else None
        if not isinstance(purpose, str) or not PURPOSE_PATTERN.match(purpose) or purpose in seen:
            raise ValueError(f"bad or repeated key purpose {purpose!r}")
        seen.add(purpose)
        pem = e.get("pem")
        if not isinstance(pem, str) or "PRIVATE" in pem:
            raise ValueError(f"key {purpose}: no public PEM")
        if public_key_fingerprint(pem.encode()) != e.get("fingerprint"):
            raise ValueError(f"key {purpose}: the PEM does not match its published fingerprint")
    return entries


def keys_export_command(
    out: Path = typer.Option(Path("keys"), "--out", help="directory for <purpose>.pem"),
    api: str = typer.Option("", "--api", help="read the public GET /keys of this Hallmark API (no AWS credentials, "
                                              "no token); without it, KMS with your AWS credentials"),
) -> None:
    """Write the public key of every signing key as <purpose>.pem (and keys.json with ids and fingerprints)."""
    if not api:
        from hallmark_tools.export import export_keys

        for purpose, path in export_keys(out).items():
            console.print(f"{purpose}: {path}")
        return
    try:
        entries = fetch_public_keys(api)
    except ValueError as exc:
        console.print(f"[bold red]FAILED[/] {exc}")
        raise typer.Exit(2) from None
    out.mkdir(parents=True, exist_ok=True)
    for e in entries:
        path = out / f"{e['purpose']}.pem"
        path.write_text(e["pem"], encoding="ascii")
        console.print(f"{e['purpose']}: {path} (keyId {e['keyId']}, sha256 {e['fingerprint']})")
    (out / "keys.json").write_text(json.dumps({"keys": entries}, indent=2) + "\n", encoding="utf-8")
