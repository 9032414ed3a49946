"""Sample packages built in memory at run time (for the demo, tests and benchmarks).

Nothing here is a fixture file: "leaked secrets" and PII are assembled from parts at run time
so no scanner ever finds a real-looking secret in the repository.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
import zipfile
from typing import Any

FIXED_MTIME = 1_767_225_600  # 2026-01-01: archives are byte-for-byte reproducible

CLEAN_FILES: dict[str, str] = {
    "README.md": "# {name}\n\nA small, well-behaved package released through Hallmark.\n",
    "requirements.txt": "requests==2.32.3\nrich>=13.7\n",
    "src/{module}/__init__.py": '"""{name}: greeting helpers."""\n\n\ndef greet(who: str) -> str:\n    return f"hello, {{who}}"\n',
    "hallmark.toml": '[smoke]\ncommand = ["python3", "-c", "import sys; sys.path.insert(0, \'src\'); '
                     'import {module}; print({module}.greet(\'hallmark\'))"]\ntimeout_s = 20\nmemory_mb = 256\n',
}


def _render(files: dict[str, str], name: str) -> dict[str, bytes]:
    module = name.replace("-", "_")
    return {k.format(name=name, module=module): v.format(name=name, module=module).encode() for k, v in files.items()}


def tar_gz(files: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), FIXED_MTIME, 0o644
            tf.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tf.addfile(info)
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in sorted(files.items()):
            info = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def clean_files(name: str) -> dict[str, bytes]:
    return _render(CLEAN_FILES, name)


def clean_package(name: str = "greeter") -> bytes:
    return tar_gz(clean_files(name))


def fake_aws_key_id() -> str:
    return "AKIA" + "Z7Q3" + "HALLMARK" + "DEMO"  # assembled at run time; not a real key


def variant(kind: str, name: str = "greeter") -> bytes:
    """A package that one validator must reject."""
    files = clean_files(name)
    if kind == "zip_slip":
        return zip_bytes({**files, "../../etc/cron.d/evil": b"* * * * * root sh -c id\n"})
    if kind == "bomb":
        return zip_bytes({**files, "data/zeros.bin": b"\0" * (64 * 1024 * 1024)})
    if kind == "secret":
        files["src/config.py"] = f'AWS_ACCESS_KEY_ID = "{fake_aws_key_id()}"\n'.encode()
    elif kind == "pii":
        card = "4111" + " 1111" + " 1111" + " 1111"
        files["data/customers.csv"] = f"name,email,card\nAda,ada{'@'}example.com,{card}\n".encode()
    elif kind == "vulnerable":
        files["requirements.txt"] = b"requests==2.19.0\n"
    elif kind == "smoke_fails":
        files["hallmark.toml"] = b'[smoke]\ncommand = ["python3", "-c", "import sys; sys.exit(3)"]\ntimeout_s = 10\n'
    elif kind != "clean":
        raise ValueError(f"unknown variant {kind}")
    return tar_gz(files)


def lambda_package(name: str = "greeter-fn", greeting: str = "hello", *, runtime: str = "python3.12",
                   handler: str = "app.handler") -> bytes:
    """A ``lambda`` package: ``app.py`` and the ``hallmark.toml`` ``[lambda]`` declaration."""
    return zip_bytes({
        "app.py": (f'"""{name}: answers with a greeting."""\n\n\n'
                   f'def handler(event, context):\n    return {{"greeting": "{greeting}"}}\n').encode(),
        "hallmark.toml": f'[lambda]\nhandler = "{handler}"\nruntime = "{runtime}"\n'.encode(),
        "README.md": f"# {name}\n\nA function deployed through Hallmark.\n".encode(),
    })


def submission(name: str, version: str, body: bytes, *, impact: str = "LOW", license: str = "MIT",
               emergency: bool = False, sha256: str | None = None, filename: str | None = None,
               type: str = "library") -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "type": type,
        "target": f"pypi:{name}",
        "impact": impact,
        "rationale": f"release {name} {version}",
        "sha256": sha256 or hashlib.sha256(body).hexdigest(),
        "size": len(body),
        "license": license,
        "emergency": emergency,
        "filename": filename or (f"{name}-{version}.zip" if body[:2] == b"PK" else f"{name}-{version}.tar.gz"),
    }


def unique_version(prefix: str = "1.0") -> str:
    return f"{prefix}.{int(time.time() * 1000) % 100000}"
