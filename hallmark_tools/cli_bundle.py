"""`hallmark bundle PACKAGE_ID [--order ORDER_ID] --out FILE` (download a release bundle, with a
purchase's ledger and delivery proofs) and `hallmark bundle verify FILE --keys DIR [--artifact FILE]
[--ciphertext FILE]` (check it offline)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from hallmark_tools import cli_api

console = Console(soft_wrap=True)


def bundle_command(
    args: list[str] = typer.Argument(..., help="PACKAGE_ID (download) or: verify FILE"),
    out: Path = typer.Option(Path("bundle.json"), "--out", help="where the downloaded bundle goes"),
    api: str = cli_api.API_OPTION,
    token: str = typer.Option("", "--token", envvar="HALLMARK_TOKEN", help="a bearer token (a reader of the package)"),
    order: str = typer.Option("", "--order", help="download: add this order's ledger and delivery proofs"),
    keys: Path = typer.Option(None, "--keys", help="verify: directory holding manifest.pem, audit.pem (and proof.pem "
                                                   "for a ceremony or a purchase)"),
    artifact: Path = typer.Option(None, "--artifact", help="verify: the released file (its sha256 must be the subject's)"),
    ciphertext: Path = typer.Option(None, "--ciphertext", help="verify: the delivered ciphertext of the purchase "
                                                               "(its sha256 must be the delivery proof's)"),
    threshold: int = typer.Option(3, "--threshold", min=1, help="verify: the fewest distinct approvers a HIGH/CRITICAL "
                                                                "release needs (the deployment's multisig threshold)"),
) -> None:
    """Download a release bundle, or verify one offline (exit 0 only when every check holds)."""
    if args[0] == "verify":
        if len(args) != 2 or keys is None:
            raise typer.BadParameter("usage: hallmark bundle verify FILE --keys DIR [--artifact FILE]")
        _verify(Path(args[1]), keys, artifact, threshold, ciphertext)
        return
    if len(args) != 1:
        raise typer.BadParameter("usage: hallmark bundle PACKAGE_ID --out FILE")
    import urllib.error
    import urllib.parse
    import urllib.request

    query = f"?{urllib.parse.urlencode({'order': order})}" if order else ""
    req = urllib.request.Request(f"{api.rstrip('/')}/packages/{urllib.parse.quote(args[0])}/bundle{query}",
                                 headers={"authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            body = resp.read()
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = {"message": raw[:200].decode("utf-8", "replace")}
        failure = cli_api.api_error(err.code, answer)
        cli_api.fail(failure.code, failure.message, failure.hint)
    except (urllib.error.URLError, OSError) as err:
        cli_api.fail("api_unreachable", f"cannot reach {api}: {getattr(err, 'reason', err)}",
                     "start the local cloud (hallmark local serve) or pass --api / set HALLMARK_API")
    json.loads(body)  # a JSON document, or fail here rather than at verify time
    out.write_bytes(body)
    console.print(f"wrote {out} ({len(body)} bytes)")


def _verify(path: Path, keys_dir: Path, artifact: Path | None, threshold: int, ciphertext: Path | None) -> None:
    from hallmark.bundle import KEY_PURPOSES, verify_bundle

    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        console.print(f"[bold red]FAILED[/] cannot read {path}: {exc}")
        raise typer.Exit(2) from None
    keys = {p: (keys_dir / f"{p}.pem").read_bytes() for p in KEY_PURPOSES if (keys_dir / f"{p}.pem").is_file()}
    checks = verify_bundle(bundle, keys, artifact.read_bytes() if artifact is not None else None,
                           min_threshold=threshold, ciphertext=ciphertext.read_bytes() if ciphertext else None)
    for c in checks:
        console.print(f"{'[green]PASS[/]' if c.ok else '[bold red]FAIL[/]'} {c.name}: {c.detail}")
    if artifact is None:
        console.print("[yellow]NOTE[/] no --artifact: the subject digest was not compared with a file")
    for missing in bundle.get("notIncluded") or [] if isinstance(bundle, dict) else []:
        console.print(f"[yellow]NOTE[/] not in this bundle, not checked: {missing}")
    failed = [c for c in checks if not c.ok]
    if failed:
        console.print(f"[bold red]FAILED[/] {len(failed)} of {len(checks)} checks")
        raise typer.Exit(2)
    console.print(f"[bold green]OK[/] all {len(checks)} checks passed")
