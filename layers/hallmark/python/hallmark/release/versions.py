"""``name@version`` is immutable, and versions only go up (except through a governed rollback).

The name record's ``releases`` map each submitted version to its package id; the package's
own status (read through ``status_of``) decides what the version slot means:

- ``Published`` or ``RolledBack``: the version was released once and is never submitted again
  (``version_exists``, 409);
- ``Submitted``/``Validating``/``AwaitingApproval``: a release of it is in flight
  (``version_in_flight``, 409);
- ``Rejected``/``Failed`` (or a package that never got stored): the slot may be used again.

Versions compare as PEP 440 versions (``packaging.version``), which also reads SemVer
(``1.2.0-rc.1``, ``1.0.0+b1``); ``1.0`` and ``1.0.0`` are the same version. A version lower
than the current published one is refused (``version_lower``) unless the submission is an
explicit ``rollback`` (whose effective impact the impact policy forces to at least HIGH).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from hallmark.errors import Conflict, DomainError

RELEASED = frozenset({"Published", "RolledBack"})
IN_FLIGHT = frozenset({"Submitted", "Validating", "AwaitingApproval"})


def parse_version(version: str) -> Version:
    try:
        return Version(version)
    except InvalidVersion:
        raise DomainError("invalid_version",
                          f"version {version!r} is neither a PEP 440 nor a SemVer version, so it cannot be "
                          "ordered against earlier releases", 400, {"version": version}) from None


@dataclass(frozen=True)
class VersionCheck:
    """What the version history says about a new submission."""

    version: str
    current: str | None  # the highest Published version
    current_package_id: str | None
    first_release: bool  # no version of the name was ever released
    major_bump: bool
    rollback: bool
    reuses: str | None  # the version key of a Rejected/Failed slot taken over

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "current": self.current, "currentPackageId": self.current_package_id,
                "firstRelease": self.first_release, "majorBump": self.major_bump, "rollback": self.rollback}


def check_version(version: str, releases: dict[str, dict[str, Any]], status_of: Callable[[str], str | None],
                  *, rollback: bool = False) -> VersionCheck:
    """Refuse a submission of ``version`` the history forbids; describe it otherwise."""
    new = parse_version(version)
    current: tuple[Version, str, str] | None = None
    released_any = False
    reuses: str | None = None
    for key, entry in releases.items():
        status = status_of(entry["packageId"])
        try:
            v = Version(key)
        except InvalidVersion:
            continue
        if status in RELEASED:
            released_any = True
        if v == new:
            if status in RELEASED:
                raise Conflict(f"{version} was already released as {key} ({status}); a released version is "
                               "immutable: submit a new version", {"version": version, "existing": key,
                                                                   "packageId": entry["packageId"],
                                                                   "status": status}, code="version_exists")
            if status in IN_FLIGHT:
                raise Conflict(f"a release of {key} is in flight ({status})",
                               {"version": version, "existing": key, "packageId": entry["packageId"],
                                "status": status}, code="version_in_flight")
            reuses = key
        if status == "Published" and (current is None or v > current[0]):
            current = (v, key, entry["packageId"])
    if current is not None and new < current[0] and not rollback:
        raise Conflict(f"{version} is lower than the current version {current[1]}; a lower version is only "
                       "released as a governed rollback (\"rollback\": true, 3-of-5 approvals)",
                       {"version": version, "current": current[1]}, code="version_lower")
    if rollback and (current is None or not new < current[0]):
        raise DomainError("not_a_rollback", "a rollback must be lower than the current published version",
                          400, {"version": version, "current": current[1] if current else None})
    major_bump = current is not None and new.major > current[0].major
    return VersionCheck(version=version, current=current[1] if current else None,
                        current_package_id=current[2] if current else None, first_release=not released_any,
                        major_bump=major_bump, rollback=rollback, reuses=reuses)
