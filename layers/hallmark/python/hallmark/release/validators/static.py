"""Static checks: format, size, checksum and license.

* Format: detected from magic bytes. Only ``.tar.gz`` and ``.zip`` packages are accepted, and a
  declared file name must carry the extension of the detected format (``.tar.gz``/``.tgz`` or
  ``.zip``), so a name never disguises what the bytes are.
* Size: at most ``max_size`` bytes, and not empty.
* Checksum: the SHA-256 of the bytes must equal the declared ``sha256``.
* License: the declared SPDX expression is parsed strictly with ``license_expression``
  (unknown ids, ``LicenseRef-*``, ``NOASSERTION`` and syntax errors fail). Policy:

  - a single license passes when it is on the allow-list;
  - ``A AND B`` passes only when every operand passes (you must comply with all);
  - ``A OR B`` passes when at least one alternative passes (you may choose it);
  - ``L WITH exception`` passes when ``L`` passes (an exception only adds permissions).

  The allow-list is compared after SPDX normalisation, so ``mit`` is ``MIT`` and the
  deprecated ``GPL-3.0`` is ``GPL-3.0-only``.
"""

from __future__ import annotations

import hmac
from functools import lru_cache
from typing import Any

from license_expression import (
    AND,
    OR,
    ExpressionError,
    LicenseSymbol,
    LicenseWithExceptionSymbol,
    Licensing,
    get_spdx_licensing,
)

from hallmark.release.validators.archive import ArchiveFormat, PackageView
from hallmark.release.validators.lambda_package import PACKAGE_TYPE, LambdaPackageError, lambda_spec
from hallmark.release.validators.model import ValidationResult, ValidatorConfig

__all__ = ["LicenseVerdict", "evaluate_license", "validate_static"]

_EXTENSIONS: dict[ArchiveFormat, tuple[str, ...]] = {
    ArchiveFormat.TAR_GZ: (".tar.gz", ".tgz"),
    ArchiveFormat.ZIP: (".zip",),
}


@lru_cache(maxsize=1)
def _licensing() -> Licensing:
    return get_spdx_licensing()


@lru_cache(maxsize=16)
def _normalised_allow_list(allow: frozenset[str]) -> frozenset[str]:
    keys = set()
    for item in allow:
        try:
            parsed = _licensing().parse(item, validate=True, strict=True)
        except ExpressionError:
            keys.add(item)
            continue
        if isinstance(parsed, LicenseSymbol):
            keys.add(parsed.key)
        else:
            keys.add(item)
    return frozenset(keys)


class LicenseVerdict:
    """The outcome of :func:`evaluate_license`."""

    def __init__(self, allowed: bool, normalized: str | None, reason: str, offending: list[str]) -> None:
        self.allowed = allowed
        self.normalized = normalized
        self.reason = reason
        self.offending = offending


def _allowed(node: Any, allow: frozenset[str], offending: set[str]) -> bool:
    if isinstance(node, LicenseWithExceptionSymbol):
        return _allowed(node.license_symbol, allow, offending)
    if isinstance(node, LicenseSymbol):
        if node.key in allow:
            return True
        offending.add(node.key)
        return False
    if isinstance(node, AND):
        results = [_allowed(arg, allow, offending) for arg in node.args]
        return all(results)
    if isinstance(node, OR):
        results = [_allowed(arg, allow, offending) for arg in node.args]
        return any(results)
    offending.add(str(node))
    return False


def evaluate_license(expression: str, allow: frozenset[str]) -> LicenseVerdict:
    """Check an SPDX expression against an allow-list (see the module doc for the policy)."""
    try:
        parsed = _licensing().parse(expression, validate=True, strict=True)
    except ExpressionError as exc:
        return LicenseVerdict(False, None, f"license expression is not valid SPDX: {exc}", [])
    if parsed is None:
        return LicenseVerdict(False, None, "license expression is empty", [])
    normalized = str(parsed.render())
    offending: set[str] = set()
    if _allowed(parsed, _normalised_allow_list(allow), offending):
        return LicenseVerdict(True, normalized, f"license {normalized} is allowed", sorted(offending))
    return LicenseVerdict(
        False,
        normalized,
        f"license {normalized} is not allowed (not on the allow-list: {', '.join(sorted(offending))})",
        sorted(offending),
    )


def validate_static(pkg: PackageView, config: ValidatorConfig) -> ValidationResult:
    """Format, size, SHA-256 checksum and SPDX license of the package."""
    reasons: list[str] = []
    findings: list[dict[str, Any]] = []
    meta = pkg.meta

    # format
    fmt = pkg.format
    format_ok = fmt in _EXTENSIONS
    if not format_ok:
        reasons.append(f"format: not a .tar.gz or .zip package (detected: {fmt.value})")
    elif meta is not None and meta.filename and not meta.filename.lower().endswith(_EXTENSIONS[fmt]):
        format_ok = False
        reasons.append(
            f"format: file name {meta.filename!r} does not match the detected format {fmt.value} "
            f"(expected {' or '.join(_EXTENSIONS[fmt])})"
        )
    findings.append({"check": "format", "ok": format_ok, "detected": fmt.value})

    # size
    size_ok = 0 < pkg.size <= config.max_size
    if pkg.size == 0:
        reasons.append("size: the package is empty")
    elif not size_ok:
        reasons.append(f"size: {pkg.size} bytes exceeds the limit of {config.max_size} bytes")
    findings.append({"check": "size", "ok": size_ok, "bytes": pkg.size, "limit": config.max_size})

    # checksum
    if meta is None:
        checksum_ok = False
        reasons.append("checksum: no declared sha256 to compare with")
    else:
        checksum_ok = hmac.compare_digest(pkg.sha256, meta.sha256)
        if not checksum_ok:
            reasons.append(f"checksum: sha256 {pkg.sha256} does not match the declared {meta.sha256}")
    findings.append({"check": "checksum", "ok": checksum_ok, "sha256": pkg.sha256})

    # license
    if meta is None:
        license_ok = False
        normalized = None
        reasons.append("license: no declared license")
    else:
        verdict = evaluate_license(meta.license, config.license_allow_list)
        license_ok = verdict.allowed
        normalized = verdict.normalized
        if not license_ok:
            reasons.append(f"license: {verdict.reason}")
    findings.append({"check": "license", "ok": license_ok, "expression": normalized})

    # the lambda package type: a zip declaring a handler and an allowed runtime
    lambda_ok = True
    stats_lambda: dict[str, str] | None = None
    if meta is not None and meta.type == PACKAGE_TYPE:
        try:
            stats_lambda = lambda_spec(pkg.data).to_json_dict()
        except LambdaPackageError as exc:
            lambda_ok = False
            reasons.append(f"lambda: {exc}")
        findings.append({"check": "lambda", "ok": lambda_ok, **(stats_lambda or {})})

    passed = format_ok and size_ok and checksum_ok and license_ok and lambda_ok
    if passed:
        reasons.append(
            f"format {fmt.value}, {pkg.size} bytes, checksum matches, license {normalized} allowed"
        )
    return ValidationResult.build(
        "static",
        passed=passed,
        reasons=reasons,
        findings=findings,
        stats={"format": fmt.value, "size": pkg.size, "sha256": pkg.sha256, "license": normalized,
               **({"lambda": stats_lambda} if stats_lambda else {})},
    )
