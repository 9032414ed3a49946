"""The ``lambda`` package type: a zip whose root ``hallmark.toml`` declares the function::

    [lambda]
    handler = "app.handler"     # <module path>.<function>; the module's file must be in the zip
    runtime = "python3.12"      # one of RUNTIMES

The release pipeline checks the declaration (``validate_static`` for ``type = "lambda"``) on the
pinned bytes; the deployment flow reads it again from the same, signed bytes.
"""

from __future__ import annotations

import io
import re
import tomllib
import zipfile
from dataclasses import dataclass
from typing import Final

PACKAGE_TYPE: Final = "lambda"
#: Runtimes a Hallmark deployment may use (AWS-supported, not deprecated).
RUNTIMES: Final[dict[str, tuple[str, ...]]] = {
    "python3.11": (".py",), "python3.12": (".py",), "python3.13": (".py",),
    "nodejs20.x": (".js", ".mjs", ".cjs"), "nodejs22.x": (".js", ".mjs", ".cjs"),
}
_HANDLER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_DECLARATION: Final = "hallmark.toml"
_CAP: Final = 64 * 1024


class LambdaPackageError(ValueError):
    """The package is not a deployable ``lambda`` package (the message says why)."""


@dataclass(frozen=True)
class LambdaSpec:
    handler: str
    runtime: str

    def to_json_dict(self) -> dict[str, str]:
        return {"handler": self.handler, "runtime": self.runtime}


def lambda_spec(data: bytes) -> LambdaSpec:
    """The declared handler and runtime of a ``lambda`` package, checked (``LambdaPackageError``)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise LambdaPackageError("a lambda package must be a .zip archive") from None
    with zf:
        names = set(zf.namelist())
        if _DECLARATION not in names:
            raise LambdaPackageError(f"no {_DECLARATION} at the archive root declaring [lambda]")
        info = zf.getinfo(_DECLARATION)
        if info.file_size > _CAP:
            raise LambdaPackageError(f"{_DECLARATION} is larger than {_CAP} bytes")
        try:
            doc = tomllib.loads(zf.read(info).decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise LambdaPackageError(f"{_DECLARATION} is not valid TOML: {exc}") from None
    section = doc.get("lambda")
    if not isinstance(section, dict):
        raise LambdaPackageError(f"{_DECLARATION} has no [lambda] table")
    handler, runtime = section.get("handler"), section.get("runtime")
    if not isinstance(runtime, str) or runtime not in RUNTIMES:
        raise LambdaPackageError(f"runtime {runtime!r} is not allowed (allowed: {', '.join(RUNTIMES)})")
    if not isinstance(handler, str) or not _HANDLER.match(handler):
        raise LambdaPackageError(f"handler {handler!r} is not <module>.<function>")
    module = handler.rsplit(".", 1)[0].replace(".", "/")
    if not any(module + ext in names for ext in RUNTIMES[runtime]):
        raise LambdaPackageError(f"handler module {module} ({'/'.join(RUNTIMES[runtime])}) is not in the zip")
    return LambdaSpec(handler=handler, runtime=runtime)
