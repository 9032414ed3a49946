"""Security: dependency vetting against an OSV advisory set, and a secret scan.

Every file is read, in the package and in the archives nested in it (paths such as
``vendor/bundle.zip!/requirements.txt``; see :class:`~hallmark.release.validators.archive.FileWalk`),
in any encoding :mod:`._text` detects, large files whole (in overlapping windows).

Dependency manifests (``node_modules/`` is ignored: npm reads nothing there):

* PyPI: ``requirements*.txt`` / ``constraints*.txt`` / ``requirements*.in`` (and ``*.txt`` under
  a ``requirements/`` folder); ``pyproject.toml`` (``[project].dependencies``,
  ``[project.optional-dependencies]``, ``[dependency-groups]``, poetry's
  ``[tool.poetry.dependencies]``, ``dev-dependencies`` and groups, poetry constraints such as
  ``^1.2`` turned into PEP 440); ``Pipfile``; lock files ``poetry.lock``, ``uv.lock``,
  ``Pipfile.lock``;
* npm: ``package.json`` (``dependencies``, ``devDependencies``, ``optionalDependencies``,
  ``peerDependencies``; ranges in npm's syntax, evaluated with ``nodesemver``: ``^ ~ >= <``,
  x-ranges, hyphen ranges, ``||``, aliases ``npm:name@range``); lock files
  ``package-lock.json`` / ``npm-shrinkwrap.json`` (v2/v3 ``packages``, v1 ``dependencies``) and
  ``yarn.lock`` (classic and berry).

When a lock file sits beside a manifest, the manifest's ranges for the packages it locks are
left to it: the locked versions are what gets installed, and they are vetted as exact versions.
git, path and URL dependencies are counted (``non_registry``), not vetted.

Policy:

* an exact version (``==`` pin, an exact npm version, or any lock-file entry) that an advisory
  affects fails the validator (``vulnerable-dependency``);
* a range (or no version at all) that *admits* an affected version is reported as
  ``vulnerable-range``; it fails only with ``fail_on_vulnerable_range``. "Admits" is decided
  on the candidate versions we can name: the range's own lower bounds (for npm, each
  comparator set's least admitted version) and the advisory's ``introduced``/``last_affected``
  events and explicit ``versions``: where a range and an affected interval meet, the larger
  of their lower bounds is one of those;
* environment markers are not evaluated: every listed dependency counts;
* the advisory set comes from ``config.advisory_source`` (deployed: the synced set in the
  packages bucket, see ``hallmark.release.advisories``) or, offline, ``config.advisory_path``
  (a JSON file). With neither, or a source that refuses (no set, a stale one, one failing
  its integrity check), or a file that cannot be read, the validator **fails closed** with
  the reason: dependency vetting that cannot run never passes. The set's version and sha256
  are in the result's stats, so its digest says which set a package was vetted against.

OSV evaluation follows the OSV schema: ``affected[].versions`` lists affected versions, and
the ``events`` of ``ECOSYSTEM``/``SEMVER`` ranges are applied in version order
(``introduced`` starts, ``fixed`` ends, ``last_affected`` ends after; ``GIT`` ranges are
ignored). PyPI versions compare with ``packaging.version``, npm versions with semver 2.0.

Secrets: AWS access key ids, AWS secret access keys next to an ``aws..secret`` name, PEM
private keys, GitHub and Slack tokens, and high-entropy values assigned to names such as
``password``/``secret``/``token``/``api_key``. Binary data is searched too, in its printable
strings, with the precise rules only (no entropy heuristics). Findings carry file, line, column
and rule, never the value. Any secret fails the validator, and so does a scan that could not
cover the whole package (a bound of the walk, an unreadable member).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from hallmark.release.validators._text import (
    ScanStats,
    iter_text_files,
)
from hallmark.release.validators.advisory_set import (
    NPM,
    PYPI,
    AdvisorySet,
    AdvisorySetUnavailable,
    AdvisorySource,
    SemVer,
    current_advisories,
    load_advisories,
    parse_version,
)
from hallmark.release.validators.archive import PackageView
from hallmark.release.validators.manifests import (
    PARSERS,
    Dependency,
    manifest_kind,
    npm_admits,
    npm_candidates,
    npm_range,
    parse_package_lock,
    parse_pyproject,
    parse_requirements,
    resolve_locked,
)
from hallmark.release.validators.model import ValidationResult, ValidatorConfig
from hallmark.release.validators.secret_scan import find_secrets

__all__ = [
    "AdvisorySet",
    "AdvisorySetUnavailable",
    "AdvisorySource",
    "Dependency",
    "SemVer",
    "find_secrets",
    "load_advisories",
    "parse_package_lock",
    "parse_pyproject",
    "parse_requirements",
    "validate_security",
]

_MAX_REASONS: Final = 20


# ----------------------------------------------------------------------------- vetting


def _vet(dep: Dependency, advisories: AdvisorySet) -> list[dict[str, Any]]:
    findings: list[dict[str, Any]] = []
    if dep.source == "non-registry":
        return findings
    for affected in advisories.for_package(dep.ecosystem, dep.name):
        base = {
            "file": dep.file,
            "line": dep.line,
            "ecosystem": dep.ecosystem,
            "package": dep.name,
            "advisory": affected.advisory_id,
            "fixed": affected.fixed_versions(),
        }
        if dep.version is not None:
            version = parse_version(dep.ecosystem, dep.version)
            if version is not None and affected.affects(version):
                findings.append({**base, "rule": "vulnerable-dependency", "version": dep.version})
            continue
        candidates = list(affected.candidate_versions())
        if dep.ecosystem == NPM:
            rng = npm_range(dep.specifier)
            if rng is None:
                continue
            candidates += npm_candidates(rng)
            candidates += [SemVer(f"{c.core[0]}.{c.core[1]}.{c.core[2]}") for c in list(candidates) if c.pre]
            admitted = any(npm_admits(rng, c) and affected.affects(c) for c in candidates)
        else:
            try:
                spec = SpecifierSet(dep.specifier)
            except InvalidSpecifier:
                continue
            for item in spec:
                if item.operator in (">=", "~=", "==", "===", ">") and not item.version.endswith(".*"):
                    parsed = parse_version(PYPI, item.version)
                    if parsed is not None:
                        candidates.append(parsed)
                        if item.operator == ">":
                            candidates.append(Version(f"{parsed.base_version}.post0"))
                            rel = list(parsed.release) + [0] * (3 - len(parsed.release))
                            candidates.append(Version(".".join(map(str, [*rel[:-1], rel[-1] + 1]))))
                elif item.operator == "==" and item.version.endswith(".*"):
                    parsed = parse_version(PYPI, item.version[:-2])
                    if parsed is not None:
                        candidates.append(parsed)
            if not any(item.operator in (">=", "~=", "==", "===", ">") for item in spec):
                candidates.append(Version("0"))
            admitted = any(spec.contains(str(c), prereleases=True) and affected.affects(c) for c in candidates)
        if admitted:
            findings.append({**base, "rule": "vulnerable-range", "specifier": dep.specifier or "*"})
    return findings

# ----------------------------------------------------------------------------- the validator


def validate_security(pkg: PackageView, config: ValidatorConfig) -> ValidationResult:
    """Dependency vetting (OSV) and secret scan (see the module doc for the policy)."""
    if not pkg.is_archive:
        return ValidationResult.build(
            "security",
            passed=False,
            reasons=[f"not an archive (detected: {pkg.format.value}); nothing scanned"],
        )
    reasons: list[str] = []
    advisories, unavailable = current_advisories(config)
    advisories_ok = unavailable is None
    if unavailable is not None:
        reasons.append(unavailable)

    scan = ScanStats()
    deps: list[Dependency] = []
    unparsed = 0
    manifests = 0
    secrets: list[dict[str, Any]] = []
    manifest_parts: dict[str, list[str]] = {}
    manifest_size: dict[str, int] = {}
    too_large: list[str] = []
    for tf in iter_text_files(pkg, config, scan, binary=True):
        if not (tf.binary or tf.alternate) and manifest_kind(tf.path) is not None and tf.path not in too_large:
            part = tf.new_text
            manifest_size[tf.path] = manifest_size.get(tf.path, 0) + len(part)
            if manifest_size[tf.path] > config.max_manifest_bytes:
                too_large.append(tf.path)
                manifest_parts.pop(tf.path, None)
            else:
                manifest_parts.setdefault(tf.path, []).append(part)
        secrets += find_secrets(tf.text, tf.path, config.secret_entropy_threshold, window=tf)
    parsed = {path: "".join(parts) for path, parts in manifest_parts.items()}
    for path in sorted(parsed):
        kind = manifest_kind(path)
        assert kind is not None
        manifests += 1
        found, bad = PARSERS[kind](parsed[path], path)
        deps += found
        unparsed += bad
    deps = resolve_locked(deps)
    for path in too_large:
        reasons.append(
            f"dependency manifest {path} is larger than {config.max_manifest_bytes} bytes and was not vetted; "
            "split it or trim it"
        )
    complete = pkg.listing_error is None and scan.complete and not too_large
    if pkg.listing_error is not None:
        reasons.append(
            f"archive could not be read completely, the scan is incomplete: {pkg.listing_error}"
        )
    reasons += scan.incomplete_reasons()

    vuln_findings = [f for dep in deps for f in _vet(dep, advisories)]
    exact = [f for f in vuln_findings if f["rule"] == "vulnerable-dependency"]
    ranged = [f for f in vuln_findings if f["rule"] == "vulnerable-range"]

    for f in sorted(exact, key=lambda f: (f["file"], f["line"], f["advisory"]))[:_MAX_REASONS]:
        reasons.append(
            f"vulnerable dependency: {f['package']} {f['version']} ({f['ecosystem']}) in {f['file']}:{f['line']} "
            f"is affected by {f['advisory']}"
            + (f"; fixed in {', '.join(f['fixed'])}: upgrade" if f["fixed"] else "; no fixed version is known")
        )
    if ranged:
        verb = "fails" if config.fail_on_vulnerable_range else "warning"
        for f in sorted(ranged, key=lambda f: (f["file"], f["line"], f["advisory"]))[:_MAX_REASONS]:
            reasons.append(
                f"{verb}: {f['package']} {f['specifier']} ({f['ecosystem']}) in {f['file']}:{f['line']} admits "
                f"versions affected by {f['advisory']}; "
                + (f"require a fixed version ({', '.join(f['fixed'])} or later) or pin one with a lock file"
                   if f["fixed"] else "no fixed version is known: drop or replace the dependency")
            )
    if len(exact) + len(ranged) > 2 * _MAX_REASONS:
        reasons.append(f"{len(exact)} vulnerable dependencies and {len(ranged)} vulnerable ranges in all")
    if secrets:
        by_rule = Counter(f["rule"] for f in secrets)
        first = min(secrets, key=lambda f: (f["file"], f["line"], f["column"]))
        reasons.append(
            f"leaked secrets: {len(secrets)} ("
            + ", ".join(f"{rule} x{n}" for rule, n in sorted(by_rule.items()))
            + f"), first in {first['file']}:{first['line']}"
            + (" (in binary data)" if first.get("binary") else "")
            + "; remove them from the package and revoke them"
        )
    passed = (
        complete
        and advisories_ok
        and not exact
        and not secrets
        and not (ranged and config.fail_on_vulnerable_range)
    )
    if passed:
        reasons.append(
            f"{len(deps)} dependencies in {manifests} manifests vetted against {advisories.count} advisories; "
            f"no exact vulnerable version; no secret in {scan.files_scanned} files"
        )
    stats: dict[str, Any] = {
        **scan.as_dict(),
        "manifests": manifests,
        "dependencies": len(deps),
        "pinned": sum(1 for d in deps if d.version is not None),
        "ranges": sum(1 for d in deps if d.version is None and d.specifier),
        "unpinned": sum(1 for d in deps if d.version is None and not d.specifier),
        "unparsed": unparsed,
        "non_registry": sum(1 for d in deps if d.source == "non-registry"),
        "vulnerable": len(exact),
        "vulnerable_ranges": len(ranged),
        "secrets": len(secrets),
        "advisories": advisories.count,
        "advisory_set_sha256": advisories.sha256,
        "advisory_set_version": advisories.version,
    }
    return ValidationResult.build(
        "security", passed=passed, reasons=reasons, findings=vuln_findings + secrets, stats=stats,
        observations={"advisory_set_fetched_at": advisories.fetched_at},
    )
