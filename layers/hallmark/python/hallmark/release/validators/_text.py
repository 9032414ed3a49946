"""Shared helpers of the text scanners (security, compliance, attribution)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

from hallmark.release.validators.archive import PackageView, display_name
from hallmark.release.validators.model import ValidatorConfig

__all__ = [
    "LineIndex",
    "ScanStats",
    "TextFile",
    "ascii_lower",
    "is_binary",
    "iter_text_files",
    "lines_containing",
]

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

_SNIFF = 8192


def is_binary(data: bytes) -> bool:
    """A NUL byte in the first 8 KiB marks a file as binary (what git and grep do)."""
    return b"\x00" in data[:_SNIFF]


def ascii_lower(text: str) -> str:
    """``text`` with A-Z lowered and every other character kept: offsets stay valid."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) and text.isascii() else text.translate(_ASCII_LOWER)


def lines_containing(
    text: str, needles: tuple[str, ...], *, haystack: str | None = None
) -> list[tuple[int, int]]:
    """Sorted ``(start, end)`` offsets of the lines of ``text`` holding any of ``needles``.

    Searching with ``str.find`` and running a pattern only on those lines is far faster than
    running the pattern over the whole text. ``haystack`` (e.g. :func:`ascii_lower` of the
    text, same length) is searched instead of ``text`` when given.
    """
    hay = text if haystack is None else haystack
    spans: set[tuple[int, int]] = set()
    for needle in needles:
        pos = hay.find(needle)
        while pos >= 0:
            start = text.rfind("\n", 0, pos) + 1
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            spans.add((start, end))
            pos = hay.find(needle, end)
    return sorted(spans)


@dataclass
class ScanStats:
    files_scanned: int = 0
    files_binary: int = 0
    files_truncated: int = 0
    files_unreadable: int = 0
    budget_exhausted: bool = False

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "files_scanned": self.files_scanned,
            "files_skipped_binary": self.files_binary,
            "files_truncated": self.files_truncated,
            "files_unreadable": self.files_unreadable,
            "scan_budget_exhausted": self.budget_exhausted,
        }


@dataclass(frozen=True, slots=True)
class TextFile:
    path: str  # display-safe member name, without a leading "./"
    text: str
    truncated: bool


class LineIndex:
    """Maps character offsets of a text to 1-based (line, column)."""

    def __init__(self, text: str) -> None:
        self._starts = [0]
        start = text.find("\n")
        while start >= 0:
            self._starts.append(start + 1)
            start = text.find("\n", start + 1)

    def locate(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._starts, offset) - 1
        return line + 1, offset - self._starts[line] + 1


def iter_text_files(pkg: PackageView, config: ValidatorConfig, stats: ScanStats) -> Iterator[TextFile]:
    """Each non-binary regular file, decoded as UTF-8 (invalid bytes replaced), first
    ``scan_max_file_bytes`` bytes only, ``max_total_uncompressed`` bytes in all (``budget_exhausted``
    says the scan stopped early)."""
    pkg.entries()
    if pkg.stream_limit_hit:  # a bomb: listing already hit the bound, scanning would too
        stats.budget_exhausted = True
        return
    for member in pkg.iter_files(cap=config.scan_max_file_bytes, budget=config.max_total_uncompressed):
        if member.error is not None:
            stats.files_unreadable += 1
            continue
        if is_binary(member.data):
            stats.files_binary += 1
            continue
        stats.files_scanned += 1
        if member.truncated:
            stats.files_truncated += 1
        name = display_name(member.entry.name)
        while name.startswith("./"):
            name = name[2:]
        yield TextFile(name, member.data.decode("utf-8", "replace"), member.truncated)
    stats.budget_exhausted = pkg.budget_exhausted
