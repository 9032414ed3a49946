"""Archive safety: what would hurt whoever extracts the package.

Rejected, each as its own ``check`` in the findings:

* names: ``..`` components (``path-traversal``), absolute paths (``absolute-path``), drive
  letters and UNC paths (``drive-letter``), backslashes in zip names (``backslash``), empty,
  non-UTF-8 or control characters (``bad-name``), the same path twice (``duplicate``);
* links: a symlink whose target, resolved relative to the symlink's own directory *and through
  the archive's other symlinks*, leaves the root (``symlink-escape``), symlink loops
  (``link-loop``), members written through a symlink that leaves the root; a tar hardlink
  (whose target is an archive path, relative to the root) that leaves the root or names no
  earlier regular file (``hardlink-escape``);
* types: device files, FIFOs and sockets (``special-file``), anything else that is not a file,
  directory or link (``unsupported-type``), setuid/setgid files (``setuid``), encrypted zip
  members, which cannot be inspected (``encrypted``);
* bombs: more than ``max_entries`` entries (``too-many-entries``); an entry of at least
  ``ratio_min_size`` bytes expanding more than ``max_ratio`` times (``entry-ratio``); the whole
  package doing so (``total-ratio``); more than ``max_total_uncompressed`` bytes in total
  (``total-size``); overlapping zip entries (``overlapping-entries``); data hidden after the
  end of a tar archive (``trailing-data``). Declared sizes are checked first; when they look
  sane every member is then decompressed, streamed and bounded, to verify them
  (``size-mismatch``, ``corrupt``);
* nesting: archives inside archives are inspected with the same rules, down to
  ``max_nested_depth`` levels (``nested-depth`` beyond), when at most
  ``max_nested_inspect_size`` bytes (``nested-too-large`` otherwise). Nested paths read
  ``outer.zip!/inner/path``.
"""

from __future__ import annotations

import itertools
import posixpath
import re
import stat
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Final

from hallmark.release.validators.archive import (
    ArchiveEntry,
    ArchiveError,
    ArchiveFormat,
    EntryType,
    PackageView,
    StreamLimitExceeded,
    detect_format,
    display_name,
    gunzip_measure,
)
from hallmark.release.validators.model import ValidationResult, ValidatorConfig

__all__ = ["validate_archive_safety"]

#: end-of-archive marker plus record padding that tar writers legitimately leave behind
_TAR_TRAILER_ALLOWANCE: Final = 1024 + 64 * 1024
_MAX_FINDINGS: Final = 500
_MAX_LINK_HOPS: Final = 40
_DRIVE = re.compile(r"^(?:[A-Za-z]:|//|\\\\)")
_BOMB_CHECKS: Final = frozenset({"entry-ratio", "total-ratio", "total-size", "overlapping-entries"})

_TEXT: Final[dict[str, str]] = {
    "path-traversal": "path traversal ('..' in the path)",
    "absolute-path": "absolute path",
    "drive-letter": "drive letter or UNC path",
    "backslash": "backslash in a zip entry name",
    "bad-name": "empty, non-UTF-8 or control characters in the name",
    "duplicate": "duplicate entry",
    "symlink-escape": "symlink, or path through a symlink, pointing outside the package root",
    "hardlink-escape": "hardlink pointing outside the package root or to no earlier file",
    "link-loop": "symlink loop",
    "special-file": "device file, FIFO or socket",
    "unsupported-type": "unsupported entry type",
    "setuid": "setuid/setgid bit set",
    "encrypted": "encrypted entry that cannot be inspected",
    "too-many-entries": "too many entries",
    "entry-ratio": "entry expansion ratio too high (archive bomb)",
    "total-ratio": "total expansion ratio too high (archive bomb)",
    "total-size": "uncompressed size over the limit (archive bomb)",
    "overlapping-entries": "overlapping zip entries (archive bomb)",
    "trailing-data": "data hidden after the end of the archive",
    "size-mismatch": "decompressed size differs from the declared size",
    "corrupt": "unreadable data",
    "nested-depth": "archives nested too deep",
    "nested-too-large": "nested archive too large to inspect",
}


@dataclass
class _Report:
    config: ValidatorConfig
    budget: int
    findings: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    max_entry_ratio: float = 0.0
    total_ratio: float = 0.0
    max_depth_seen: int = 0

    def add(self, check: str, path: str, **extra: Any) -> None:
        self.counts[check] += 1
        self.first.setdefault(check, path)
        if len(self.findings) < _MAX_FINDINGS:
            self.findings.append({"check": check, "path": path, **extra})

    def has_bomb(self) -> bool:
        return any(self.counts[c] for c in _BOMB_CHECKS)


def _norm(name: str) -> str:
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    normed = posixpath.normpath(name) if name else ""
    return "" if normed == "." else normed


def _name_checks(entry: ArchiveEntry, is_zip: bool) -> list[str]:
    name = entry.name
    problems = []
    if not name or (_norm(name) == "" and entry.type is not EntryType.DIR):
        return ["bad-name"]
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        problems.append("bad-name")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        problems.append("bad-name")
    if is_zip and "\\" in name:
        problems.append("backslash")
    if _DRIVE.match(name):
        problems.append("drive-letter")
    elif name.startswith(("/", "\\")):
        problems.append("absolute-path")
    if ".." in name.replace("\\", "/").split("/"):
        problems.append("path-traversal")
    return list(dict.fromkeys(problems))


def _resolve(path: str, links: dict[str, str]) -> str:
    """Resolve ``path`` (relative to the root) through the archive's symlinks: ok, escape or loop."""
    parts = deque(path.split("/"))
    stack: list[str] = []
    hops = 0
    while parts:
        part = parts.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return "escape"
            stack.pop()
            continue
        stack.append(part)
        target = links.get("/".join(stack))
        if target is None:
            continue
        hops += 1
        if hops > _MAX_LINK_HOPS:
            return "loop"
        if not target or target.startswith(("/", "\\")) or _DRIVE.match(target):
            return "escape"
        stack.pop()
        parts.extendleft(reversed(target.replace("\\", "/").split("/")))
    return "ok"


def _is_nested_candidate(head: bytes) -> bool:
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06") or head[:2] == b"\x1f\x8b" or head[257:262] == b"ustar"


def _ratio(uncompressed: int, compressed: int) -> float:
    return round(uncompressed / max(compressed, 1), 2)


def _check_entries(view: PackageView, prefix: str, report: _Report) -> None:
    config = report.config
    is_zip = view.format is ArchiveFormat.ZIP
    entries = view.entries()
    seen: dict[str, EntryType] = {}
    files_seen: set[str] = set()
    links: dict[str, str] = {}
    for entry in entries:
        shown = prefix + display_name(entry.name)
        report.stats["entries"] += 1
        report.stats[entry.type.value] += 1
        for problem in _name_checks(entry, is_zip):
            report.add(problem, shown)
        key = _norm(entry.name)
        previous = seen.get(key)
        if previous is not None and not (previous is EntryType.DIR and entry.type is EntryType.DIR):
            report.add("duplicate", shown)
        seen[key] = entry.type
        if entry.type in (EntryType.CHAR_DEVICE, EntryType.BLOCK_DEVICE, EntryType.FIFO, EntryType.SOCKET):
            report.add("special-file", shown, type=entry.type.value)
        elif entry.type is EntryType.OTHER:
            report.add("unsupported-type", shown)
        if entry.is_file and entry.mode & (stat.S_ISUID | stat.S_ISGID):
            report.add("setuid", shown, mode=oct(entry.mode))
        if entry.encrypted:
            report.add("encrypted", shown)
        if entry.type is EntryType.SYMLINK:
            links[key] = entry.link_target or ""
        elif entry.type is EntryType.HARDLINK:
            target = entry.link_target or ""
            if (
                not target
                or target.startswith(("/", "\\"))
                or _DRIVE.match(target)
                or ".." in target.replace("\\", "/").split("/")
                or _norm(target) not in files_seen
            ):
                report.add("hardlink-escape", shown)
        elif entry.is_file:
            files_seen.add(key)
        # declared expansion of this entry
        if entry.is_file and entry.compressed_size is not None:
            ratio = _ratio(entry.size, entry.compressed_size)
            if entry.size >= config.ratio_min_size:
                report.max_entry_ratio = max(report.max_entry_ratio, ratio)
                if ratio > config.max_ratio:
                    report.add("entry-ratio", shown, ratio=ratio, limit=config.max_ratio)
    if links:
        for entry in entries:
            key = _norm(entry.name)
            shown = prefix + display_name(entry.name)
            if entry.type is EntryType.SYMLINK:
                target = links[key].replace("\\", "/")
                if not target or target.startswith("/") or _DRIVE.match(target):
                    outcome = "escape"
                else:
                    outcome = _resolve(posixpath.join(posixpath.dirname(key), target), links)
            else:
                outcome = _resolve(posixpath.dirname(key), links)
            if outcome == "escape":
                report.add("symlink-escape", shown)
            elif outcome == "loop":
                report.add("link-loop", shown)
    if is_zip:
        _check_zip_overlap(view, prefix, report)


def _check_zip_overlap(view: PackageView, prefix: str, report: _Report) -> None:
    located = sorted(
        (e for e in view.entries() if e.offset is not None), key=lambda e: (e.offset or 0, e.index)
    )
    for before, after in itertools.pairwise(located):
        end = (before.offset or 0) + 30 + view.zip_name_length(before) + (before.compressed_size or 0)
        if end > (after.offset or 0):
            report.add("overlapping-entries", prefix + display_name(after.name))


def _check_totals(view: PackageView, prefix: str, report: _Report) -> int:
    config = report.config
    where = prefix.rstrip("!/") or "(package)"
    declared = sum(e.size for e in view.entries() if e.is_file)
    report.stats["declared_bytes"] += declared
    if len(view.entries()) > config.max_entries or (
        view.declared_entry_count is not None and view.declared_entry_count > config.max_entries
    ):
        report.add(
            "too-many-entries",
            where,
            entries=max(len(view.entries()), view.declared_entry_count or 0),
            limit=config.max_entries,
        )
    if declared > config.max_total_uncompressed:
        report.add("total-size", where, bytes=declared, limit=config.max_total_uncompressed)
    ratio = _ratio(declared, view.size)
    if not prefix:
        report.total_ratio = ratio
    stream = view.stream_size or 0  # tar: every decompressed byte, headers and hidden data included
    if declared >= config.ratio_min_size and ratio > config.max_ratio:
        report.add("total-ratio", where, ratio=ratio, limit=config.max_ratio)
    elif stream >= config.ratio_min_size and _ratio(stream, view.size) > config.max_ratio:
        report.add("total-ratio", where, ratio=_ratio(stream, view.size), limit=config.max_ratio)
    if view.stream_limit_hit:
        report.add("total-size", where, bytes=None, limit=config.max_total_uncompressed)
    elif view.listing_error and not view.listing_error.startswith(("more than", "archive declares")):
        report.add("corrupt", where, error=view.listing_error)
    if view.trailing_bytes > _TAR_TRAILER_ALLOWANCE:
        report.add("trailing-data", where, bytes=view.trailing_bytes)
    return declared


def _verify_members(view: PackageView, prefix: str, depth: int, report: _Report) -> None:
    """Stream every member, bounded, to check declared sizes and to find nested archives."""
    config = report.config
    try:
        for entry, stream in view.iter_file_streams():
            shown = prefix + display_name(entry.name)
            try:
                head = stream.read(min(512, entry.size + 1))
                count = len(head)
                nested = _is_nested_candidate(head)
                keep = (
                    nested
                    and depth + 1 <= config.max_nested_depth
                    and entry.size <= config.max_nested_inspect_size
                )
                body = bytearray(head) if keep else bytearray()
                limit = min(entry.size + 1, report.budget + 1)
                while count < limit:
                    piece = stream.read(min(1024 * 1024, limit - count))
                    if not piece:
                        break
                    count += len(piece)
                    if keep:
                        body += piece
            except ArchiveError as exc:
                report.add("corrupt", shown, error=str(exc))
                if view.format is not ArchiveFormat.ZIP:
                    return
                continue
            report.budget -= count
            report.stats["verified_bytes"] += count
            if report.budget < 0:
                report.add("total-size", shown, bytes=None, limit=config.max_total_uncompressed)
                return
            if count != entry.size:
                report.add("size-mismatch", shown, declared=entry.size, actual=count)
                continue
            if nested:
                report.stats["nested_archives"] += 1
                if depth + 1 > config.max_nested_depth:
                    report.add("nested-depth", shown, depth=depth + 1, limit=config.max_nested_depth)
                elif not keep:
                    report.add(
                        "nested-too-large", shown, bytes=entry.size, limit=config.max_nested_inspect_size
                    )
                else:
                    _inspect_blob(bytes(body), shown + "!/", depth + 1, report)
    except StreamLimitExceeded:
        report.add(
            "total-size", prefix.rstrip("!/") or "(package)", bytes=None, limit=config.max_total_uncompressed
        )
    except ArchiveError as exc:
        report.add("corrupt", prefix.rstrip("!/") or "(package)", error=str(exc))


def _inspect_view(view: PackageView, prefix: str, depth: int, report: _Report) -> None:
    report.max_depth_seen = max(report.max_depth_seen, depth)
    _check_entries(view, prefix, report)
    _check_totals(view, prefix, report)
    if view.listing_error or report.has_bomb():
        return  # never spend decompression on something already known to be a bomb
    _verify_members(view, prefix, depth, report)


def _inspect_blob(blob: bytes, prefix: str, depth: int, report: _Report) -> None:
    config = report.config
    fmt = detect_format(blob)
    where = prefix.rstrip("!/")
    if fmt is ArchiveFormat.GZIP:
        try:
            head, total = gunzip_measure(blob, max(report.budget, 0))
        except StreamLimitExceeded:
            report.add("total-size", where, bytes=None, limit=config.max_total_uncompressed)
            return
        except ArchiveError as exc:
            report.add("corrupt", where, error=str(exc))
            return
        report.budget -= total
        ratio = _ratio(total, len(blob))
        if total >= config.ratio_min_size and ratio > config.max_ratio:
            report.add("entry-ratio", where, ratio=ratio, limit=config.max_ratio)
        if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            report.add("nested-depth" if depth + 1 > config.max_nested_depth else "nested-too-large", where)
        return
    if fmt not in (ArchiveFormat.ZIP, ArchiveFormat.TAR_GZ, ArchiveFormat.TAR):
        return
    view = PackageView(
        blob, max_entries=config.max_entries, max_stream_bytes=max(report.budget, 0) + 1024 * 1024
    )
    _inspect_view(view, prefix, depth, report)


def validate_archive_safety(pkg: PackageView, config: ValidatorConfig) -> ValidationResult:
    """Reject traversal, dangerous links and types, bombs and deep nesting (see the module doc)."""
    report = _Report(config=config, budget=config.max_total_uncompressed)
    if pkg.format not in (ArchiveFormat.TAR_GZ, ArchiveFormat.ZIP):
        return ValidationResult.build(
            "archive_safety",
            passed=False,
            reasons=[
                f"not a .tar.gz or .zip archive (detected: {pkg.format.value}); nothing can be inspected"
            ],
            stats={"format": pkg.format.value},
        )
    _inspect_view(pkg, "", 0, report)
    reasons = []
    for check in sorted(report.counts):
        n = report.counts[check]
        detail = ""
        if check in ("too-many-entries", "entry-ratio", "total-ratio", "total-size"):
            limit = {
                "too-many-entries": f"limit {config.max_entries} entries",
                "entry-ratio": f"limit {config.max_ratio:g}:1",
                "total-ratio": f"limit {config.max_ratio:g}:1",
                "total-size": f"limit {config.max_total_uncompressed} bytes",
            }[check]
            detail = f" ({limit})"
        reasons.append(
            f"{_TEXT[check]}{detail}: {n} finding{'s' if n != 1 else ''}, first at {report.first[check]!r}"
        )
    passed = not report.counts
    if passed:
        reasons.append(
            f"{report.stats['entries']} entries inspected: no traversal, unsafe link, special file, bomb "
            f"or excessive nesting"
        )
    stats = {
        "format": pkg.format.value,
        "entries": report.stats["entries"],
        "files": report.stats[EntryType.FILE.value],
        "dirs": report.stats[EntryType.DIR.value],
        "symlinks": report.stats[EntryType.SYMLINK.value],
        "hardlinks": report.stats[EntryType.HARDLINK.value],
        "declared_bytes": report.stats["declared_bytes"],
        "verified_bytes": report.stats["verified_bytes"],
        "total_ratio": report.total_ratio,
        "max_entry_ratio": report.max_entry_ratio,
        "nested_archives": report.stats["nested_archives"],
        "max_nested_depth": report.max_depth_seen,
        "findings_truncated": sum(report.counts.values()) > len(report.findings),
    }
    return ValidationResult.build(
        "archive_safety", passed=passed, reasons=reasons, findings=report.findings, stats=stats
    )
