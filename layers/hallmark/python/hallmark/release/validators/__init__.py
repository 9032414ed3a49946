"""Release validators: pure domain checks of a package, run in parallel by the release pipeline.

Each validator is ``validate_<name>(pkg: PackageView, config: ValidatorConfig) -> ValidationResult``
and never raises for anything a package can contain. :data:`VALIDATORS` lists them in the
order the pipeline reports them; :func:`run_all` runs them all on package bytes;
:func:`run_validator` runs one (a Step Functions Parallel branch each).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hallmark.release.validators.archive import PackageView
from hallmark.release.validators.archive_safety import validate_archive_safety
from hallmark.release.validators.attribution import validate_attribution
from hallmark.release.validators.compliance import validate_compliance
from hallmark.release.validators.model import (
    Impact,
    PackageMeta,
    SmokeLimits,
    ValidationResult,
    ValidatorConfig,
)
from hallmark.release.validators.security import validate_security
from hallmark.release.validators.smoke import validate_smoke
from hallmark.release.validators.static import validate_static

__all__ = [
    "VALIDATORS",
    "Impact",
    "PackageMeta",
    "PackageView",
    "SmokeLimits",
    "ValidationResult",
    "Validator",
    "ValidatorConfig",
    "run_all",
    "run_one",
    "run_validator",
]

Validator = Callable[[PackageView, ValidatorConfig], ValidationResult]

VALIDATORS: dict[str, Validator] = {
    "static": validate_static,
    "archive_safety": validate_archive_safety,
    "security": validate_security,
    "compliance": validate_compliance,
    "attribution": validate_attribution,
    "smoke": validate_smoke,
}


def _run(name: str, pkg: PackageView, config: ValidatorConfig) -> ValidationResult:
    try:
        return VALIDATORS[name](pkg, config)
    except Exception as exc:  # a validator bug must fail closed, not crash the pipeline
        return ValidationResult.build(
            name,
            passed=False,
            reasons=[f"validator error: {type(exc).__name__}"],
            stats={"error": type(exc).__name__},
        )


def run_validator(
    name: str, pkg_bytes: bytes, meta: PackageMeta, config: ValidatorConfig | None = None
) -> ValidationResult:
    """Run one validator by name (``KeyError`` for an unknown name)."""
    if name not in VALIDATORS:
        raise KeyError(name)
    cfg = config or ValidatorConfig()
    return _run(name, PackageView.for_config(pkg_bytes, meta, cfg), cfg)


def _meta(meta: PackageMeta | Mapping[str, Any]) -> PackageMeta:
    if isinstance(meta, PackageMeta):
        return meta
    known = PackageMeta.model_fields
    return PackageMeta.model_validate({k: v for k, v in meta.items() if k in known})


def run_one(
    name: str,
    pkg_bytes: bytes,
    meta: PackageMeta | Mapping[str, Any],
    config: ValidatorConfig | None = None,
) -> dict[str, Any]:
    """:func:`run_validator` for a Lambda handler: ``meta`` may be the submitted record's dict
    (unknown keys are ignored), and the result comes back as JSON data."""
    return run_validator(name, pkg_bytes, _meta(meta), config).model_dump(mode="json")


def run_all(
    pkg_bytes: bytes,
    meta: PackageMeta,
    config: ValidatorConfig | None = None,
    *,
    only: Iterable[str] | None = None,
) -> list[ValidationResult]:
    """Run every validator (or those named in ``only``, in registry order) on one package."""
    cfg = config or ValidatorConfig()
    wanted = set(VALIDATORS) if only is None else set(only)
    unknown = wanted - set(VALIDATORS)
    if unknown:
        raise KeyError(", ".join(sorted(unknown)))
    pkg = PackageView.for_config(pkg_bytes, meta, cfg)
    return [_run(name, pkg, cfg) for name in VALIDATORS if name in wanted]
