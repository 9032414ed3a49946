"""Builders shared by the validator tests: packages are made in memory, at test time.

Archives are deterministic (fixed mtimes, owners and gzip header), so the same call gives the
same bytes. Nothing secret or personal is stored here: such strings are assembled at run time.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hallmark.release.validators import PackageMeta, ValidatorConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
ADVISORIES = REPO_ROOT / "events" / "advisories" / "osv-sample.json"

SMOKE_OK = b"""[smoke]
command = ["python", "-c", "print('smoke ok')"]
timeout_s = 20
memory_mb = 512
"""

CLEAN_FILES: dict[str, bytes] = {
    "README.md": b"# demo\n\nA tiny package used by the validator tests.\n",
    "demo/__init__.py": b'"""Demo package."""\n\n__version__ = "1.0.0"\n\n\ndef add(a: int, b: int) -> int:\n'
    b"    return a + b\n",
    "requirements.txt": b"requests==2.32.3\nurllib3>=2.2.2\n",
    "LICENSE": b"MIT License\n\nPermission is hereby granted, free of charge, to any person...\n",
    "hallmark.toml": SMOKE_OK,
}


@dataclass(frozen=True)
class Member:
    """A tar member beyond a plain file: links, devices, FIFOs, custom modes."""

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""
    mode: int = 0o644


def make_tar_gz(
    files: dict[str, bytes] | None = None,
    members: list[Member] | None = None,
    *,
    trailing: bytes = b"",
) -> bytes:
    """A deterministic .tar.gz of ``files`` then ``members``; ``trailing`` is added after the tar end."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in (files or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tf.addfile(info, io.BytesIO(data))
        for member in members or []:
            info = tarfile.TarInfo(member.name)
            info.type = member.type
            info.mode = member.mode
            info.mtime = 0
            info.linkname = member.linkname
            if member.type == tarfile.REGTYPE:
                info.size = len(member.data)
                tf.addfile(info, io.BytesIO(member.data))
            else:
                tf.addfile(info)
    return gzip.compress(raw.getvalue() + trailing, compresslevel=6, mtime=0)


def make_zip(
    files: dict[str, bytes] | None = None,
    *,
    symlinks: dict[str, str] | None = None,
    modes: dict[str, int] | None = None,
) -> bytes:
    """A deterministic .zip (deflated) of ``files``; ``symlinks`` as Unix symlink entries."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in (files or {}).items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | (modes or {}).get(name, 0o644)) << 16
            zf.writestr(info, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return raw.getvalue()


def meta_for(data: bytes, *, filename: str = "demo-1.0.0.tar.gz", **overrides: Any) -> PackageMeta:
    fields: dict[str, Any] = {
        "name": "demo",
        "version": "1.0.0",
        "type": "library",
        "target": "prod",
        "impact": "LOW",
        "rationale": "validator tests",
        "sha256": hashlib.sha256(data).hexdigest(),
        "license": "MIT",
        "filename": filename,
    }
    fields.update(overrides)
    return PackageMeta(**fields)


def config(**overrides: Any) -> ValidatorConfig:
    """The default configuration with the sample advisory set."""
    return ValidatorConfig(**{"advisory_path": str(ADVISORIES), **overrides})


def clean_tar_gz(extra: dict[str, bytes] | None = None) -> bytes:
    return make_tar_gz({**CLEAN_FILES, **(extra or {})})


def clean_zip(extra: dict[str, bytes] | None = None) -> bytes:
    return make_zip({**CLEAN_FILES, **(extra or {})})
