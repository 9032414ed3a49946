"""`hallmark submit FILE` and `hallmark sample package`: a release from one command.

``submit`` hashes the file, reads ``name``/``version`` (and optionally ``type``, ``target``,
``license``, ``impact``) from the ``[package]`` table of the archive's ``hallmark.toml`` (at the
root or in its single top folder; flags win), calls ``POST /packages`` with the exact ``sha256``
and ``size``, PUTs the bytes to the presigned URL with the ``uploadHeaders`` it answered
(docs/release-integrity.md), then follows the release: every status of the package's
``history`` and every validator result as it appears (``GET /packages/{id}``), and the
outcome with its reasons. Exit 0: Published (or AwaitingApproval, unless ``--wait-approval``);
1: Rejected, Failed or RolledBack; 2: refused or unreachable; 3: still running at ``--timeout``.

Registered on the main CLI with one line each (``hallmark_tools/cli.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import typer

from hallmark_tools import cli_api
from hallmark_tools.cli_api import CliError

MANIFEST = "hallmark.toml"
SUCCESS = ("Published",)
FAILURE = ("Rejected", "Failed", "RolledBack")
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_MAX_MANIFEST_BYTES = 64 * 1024


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def _members(data: bytes) -> dict[str, Any]:
    """name -> a reader of the member's bytes, for a tar (any compression) or a zip archive."""
    if data[:2] == b"PK":
        zf = zipfile.ZipFile(io.BytesIO(data))
        return {_clean(i.filename): (lambda i=i: zf.read(i)) for i in zf.infolist() if not i.is_dir()}
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115  (in memory; lives with the readers)
    except tarfile.TarError:
        return {}
    out: dict[str, Any] = {}
    for info in tf.getmembers():
        if info.isfile():
            out[_clean(info.name)] = lambda info=info: tf.extractfile(info).read()  # type: ignore[union-attr]
    return out


def read_declaration(data: bytes) -> dict[str, Any]:
    """The ``[package]`` table of the archive's hallmark.toml ({} when there is none)."""
    members = _members(data)
    names = list(members)
    path = MANIFEST if MANIFEST in members else None
    if path is None:
        tops = {n.split("/", 1)[0] for n in names if n}
        if len(tops) == 1 and f"{next(iter(tops))}/{MANIFEST}" in members:
            path = f"{next(iter(tops))}/{MANIFEST}"
    if path is None:
        return {}
    raw = members[path]()
    if len(raw) > _MAX_MANIFEST_BYTES:
        raise CliError("bad_manifest", f"{path} is larger than {_MAX_MANIFEST_BYTES} bytes")
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CliError("bad_manifest", f"{path} is not valid TOML: {exc}", "fix the file and rebuild the archive") from None
    table = doc.get("package", {})
    if not isinstance(table, dict):
        raise CliError("bad_manifest", f"[package] in {path} must be a table")
    return {k: v for k, v in table.items() if isinstance(v, str | bool)}


def build_request(path: Path, data: bytes, flags: dict[str, Any]) -> dict[str, Any]:
    declared = read_declaration(data)
    merged = {**declared, **{k: v for k, v in flags.items() if v is not None}}
    for field in ("name", "version"):
        if not merged.get(field):
            raise CliError("missing_" + field, f"no package {field}: neither --{field} nor [package] {field} "
                           f"in the archive's {MANIFEST}", f"pass --{field} or add it to {MANIFEST}")
    name, version = str(merged["name"]), str(merged["version"])
    if not merged.get("license"):
        raise CliError("missing_license", "no license: neither --license nor [package] license in "
                       f"{MANIFEST}", "pass --license MIT (an SPDX id) or add it to [package]")
    request: dict[str, Any] = {
        "name": name,
        "version": version,
        "type": str(merged.get("type") or "library"),
        "target": str(merged.get("target") or f"pypi:{name}"),
        "impact": str(merged.get("impact") or "LOW").upper(),
        "rationale": str(merged.get("rationale") or f"release {name} {version}"),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "license": str(merged["license"]),
        "emergency": bool(merged.get("emergency") or False),
    }
    if merged.get("rollback"):
        request["rollback"] = True
    if _FILENAME.match(path.name):
        request["filename"] = path.name
    return request


def upload(url: str, headers: dict[str, str], data: bytes) -> None:
    import requests

    try:
        resp = requests.put(url, data=data, headers=headers, timeout=120)
    except requests.RequestException as err:
        raise CliError("upload_unreachable", f"cannot reach the upload URL: {err}",
                       "is the local cloud's AWS endpoint up (hallmark local serve)?") from None
    if resp.status_code >= 300:
        code = re.search(r"<Code>([^<]+)</Code>", resp.text)
        raise CliError("upload_refused", f"the storage refused the upload: HTTP {resp.status_code} "
                       f"{code.group(1) if code else resp.text[:200]}",
                       "the URL lives five minutes: run hallmark submit again")


class Follower:
    """Prints what is new in a package document: history statuses, then validator results."""

    def __init__(self, out: Any = None) -> None:
        self.out = out or sys.stdout
        self.seen_history = 0
        self.seen_validators: set[str] = set()

    def show(self, doc: dict[str, Any]) -> None:
        history = doc.get("history") or []
        for entry in history[self.seen_history:]:
            if entry.get("status") in (*SUCCESS, *FAILURE, "AwaitingApproval"):
                self._validators(doc)  # the results that led to the outcome come before it
            self._print(f"  {entry.get('at', ''):<24} {entry.get('status')}")
        self.seen_history = len(history)
        self._validators(doc)

    def _validators(self, doc: dict[str, Any]) -> None:
        for name, result in sorted((doc.get("validators") or {}).items()):
            if name in self.seen_validators:
                continue
            self.seen_validators.add(name)
            mark = "pass" if result.get("passed") else "FAIL"
            reasons = "; ".join(result.get("reasons") or [])
            self._print(f"  {'':<24}   validator {name:<14} {mark}" + (f": {reasons}" if reasons else ""))

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def outcome(doc: dict[str, Any]) -> int:
    status = doc["status"]
    pid = doc["packageId"]
    if status in SUCCESS:
        manifest = doc.get("manifest") or {}
        digest = manifest.get("digest") if isinstance(manifest, dict) else None
        print(f"Published {doc['meta']['name']} {doc['meta']['version']} ({pid}); effective impact "
              f"{doc.get('impact')}" + (f"; manifest {digest}" if digest else ""))
        return 0
    if status == "AwaitingApproval":
        print(f"AwaitingApproval ({pid}): effective impact {doc.get('impact')} needs approvals on upgrade "
              f"{doc.get('upgradeId')}; each approver runs: hallmark approve --key KEY.pem --upgrade "
              f"{doc.get('upgradeId')} --token APPROVER_TOKEN")
        return 0
    print(f"{status} ({pid})")
    for reason in doc.get("reasons") or ["(no reason recorded)"]:
        print(f"  reason: {reason}")
    return 1


def submit_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="the package archive (.tar.gz, .tgz, .zip, ...)"),
    name: str = typer.Option(None, "--name", help="package name (default: [package] name in hallmark.toml)"),
    version: str = typer.Option(None, "--version", help="package version (default: [package] version)"),
    type_: str = typer.Option(None, "--type", help="package type (default: library)"),
    target: str = typer.Option(None, "--target", help="release target (default: pypi:NAME; prod* targets are HIGH impact)"),
    impact: str = typer.Option(None, "--impact", help="declared impact LOW|MEDIUM|HIGH|CRITICAL (policy can only raise it)"),
    license_: str = typer.Option(None, "--license", help="SPDX license id (default: [package] license)"),
    rationale: str = typer.Option(None, "--rationale", help="why this release (default: 'release NAME VERSION')"),
    emergency: bool = typer.Option(False, "--emergency", help="apply now, ratify later (HIGH/CRITICAL)"),
    api: str = cli_api.API_OPTION,
    token: str = typer.Option(..., "--token", envvar=cli_api.TOKEN_ENV, help="a bearer token (role submitter)"),
    wait_approval: bool = typer.Option(False, "--wait-approval", help="keep following while approvals are collected"),
    timeout: float = typer.Option(300.0, "--timeout", help="seconds to follow the release before giving up (exit 3)"),
    no_follow: bool = typer.Option(False, "--no-follow", help="print the package id after the upload and exit"),
    print_id: bool = typer.Option(False, "--print-id", help="progress to stderr, the package id alone to stdout: PKG=$(hallmark submit ... --print-id)"),
) -> None:
    """Hash, submit, upload and follow a package to its outcome (exit 1 when Rejected/Failed)."""
    def run() -> int:
        if print_id:
            with contextlib.redirect_stdout(sys.stderr):
                code = follow()
            print(pid_box[0] if pid_box else "")
            return code
        return follow()

    pid_box: list[str] = []

    def follow() -> int:
        data = file.read_bytes()
        flags = {"name": name, "version": version, "type": type_, "target": target, "impact": impact,
                 "license": license_, "rationale": rationale, "emergency": emergency or None}
        request = build_request(file, data, flags)
        base = api.rstrip("/")
        created = cli_api.ok("POST", f"{base}/packages", token, request)
        pid = created["packageId"]
        pid_box.append(pid)
        print(f"submitted {request['name']} {request['version']} as {pid} (sha256 {request['sha256']}, "
              f"{request['size']} bytes)", flush=True)
        upload(created["uploadUrl"], created.get("uploadHeaders") or {}, data)
        print("uploaded; following the release:", flush=True)
        if no_follow:
            print(pid)
            return 0
        follower = Follower()
        deadline = time.monotonic() + timeout
        stops = (*SUCCESS, *FAILURE) + (() if wait_approval else ("AwaitingApproval",))
        while True:
            doc = cli_api.ok("GET", f"{base}/packages/{pid}", token)
            follower.show(doc)
            if doc["status"] in stops:
                return outcome(doc)
            if time.monotonic() > deadline:
                print(f"still {doc['status']} after {timeout:g}s; follow it with: curl -H 'authorization: Bearer ...' "
                      f"{base}/packages/{pid}")
                return 3
            time.sleep(0.3)

    code = cli_api.run_cli(run)
    if code:
        raise typer.Exit(code)


# ----------------------------------------------------------------------------- sample packages

sample_app = typer.Typer(help="Sample inputs to try Hallmark with.", no_args_is_help=True)

SAMPLE_VARIANTS = ("clean", "secret", "pii", "vulnerable", "smoke_fails", "zip_slip")


@sample_app.command("package")
def sample_package(
    out: Path = typer.Option(..., "--out", help="where to write the archive, e.g. demo-1.0.0.tar.gz"),
    name: str = typer.Option("demo", "--name", help="[package] name"),
    version: str = typer.Option("1.0.0", "--version", help="[package] version"),
    variant: str = typer.Option("clean", "--variant", help=f"one of {', '.join(SAMPLE_VARIANTS)} (all but clean are rejected)"),
) -> None:
    """Write a small package with a hallmark.toml ([package] and [smoke]) to try `hallmark submit` on."""
    from hallmark_tools import samples

    def run() -> None:
        if variant not in SAMPLE_VARIANTS:
            raise CliError("unknown_variant", f"{variant!r} is not one of {', '.join(SAMPLE_VARIANTS)}")
        data = samples.variant(variant, name)
        package = f'[package]\nname = "{name}"\nversion = "{version}"\nlicense = "MIT"\n\n'
        data = _with_package_table(data, package)
        out.write_bytes(data)
        print(f"wrote {out} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})")

    cli_api.run_cli(run)


@sample_app.command("model")
def sample_model(
    out: Path = typer.Option(..., "--out", help="where to write the model package, e.g. evi-model-1.0.0.tar.gz"),
    variants: bool = typer.Option(True, "--variants/--no-variants", help="add the fp16 GPU and int8 candidate models"),
) -> None:
    """Write the EVI scoring model as a releasable package (evi.onnx, its variants and a
    hallmark.toml declaring their sha256: gpu_batch/evi_model.py's write_package)."""
    def run() -> None:
        from hallmark_tools.scenarios.scoring import model_package

        data, digest = model_package(variants=variants)
        out.write_bytes(data)
        print(f"wrote {out} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}; evi.onnx sha256 {digest})")

    cli_api.run_cli(run)


def _with_package_table(data: bytes, table: str) -> bytes:
    """The same archive with ``table`` put before the rest of its hallmark.toml."""
    from hallmark_tools import samples

    members = {n: r() for n, r in _members(data).items()}
    members[MANIFEST] = table.encode() + members.get(MANIFEST, b"")
    return samples.zip_bytes(members) if data[:2] == b"PK" else samples.tar_gz(members)
