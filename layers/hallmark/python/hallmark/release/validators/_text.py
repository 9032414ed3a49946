"""Shared helpers of the text scanners (security, compliance, attribution).

:func:`iter_text_files` walks every regular file of the package and of the archives nested in
it (:class:`~hallmark.release.validators.archive.FileWalk`) and hands the scanners text:

* the encoding is detected per file: a BOM (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE), else UTF-16 or
  UTF-32 without BOM when the first 8 KiB decode as such and look like text, else UTF-8 (invalid
  bytes replaced);
* a file is read whole, in windows of ``scan_max_file_bytes`` bytes; each window carries the end
  of the previous one as context, and a scanner reports a match only from the window that owns
  its end (:meth:`TextFile.owns`), so a match on a window boundary is found exactly once;
* a window is *binary* only when its bytes, NULs aside, are not text (more than 10% control
  bytes or undecodable sequences): one NUL byte, or NUL padding, does not hide what follows.
  Binary windows come as their printable strings (every other byte a NUL), for scanners that
  want them (the secret scan); the others skip them. A UTF-16/UTF-32 file's bytes also come as
  such strings (``alternate``), so a BOM put in front of UTF-8 text hides nothing from any scan.
"""

from __future__ import annotations

import bisect
import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Protocol

from hallmark.release.validators.archive import ArchiveError, FileWalk, PackageView, WalkBudgetExceeded
from hallmark.release.validators.model import ValidatorConfig

__all__ = [
    "LineIndex",
    "ScanStats",
    "TextFile",
    "ascii_lower",
    "detect_encoding",
    "is_binary",
    "iter_text_files",
    "lines_containing",
]

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

_SNIFF = 8192


#: bytes that plain text may hold: TAB LF VT FF CR, ESC, BS, printable ASCII and every byte >= 0x80
_TEXT_BYTES: Final = bytes([8, 9, 10, 11, 12, 13, 27, *range(32, 127), *range(128, 256)])
_PRINTABLE: Final = bytes([9, 10, 13, *range(32, 127)])
#: every byte that is not printable ASCII becomes a NUL, which no pattern matches across
_STRINGS_TABLE: Final = bytes(b if b in _PRINTABLE else 0 for b in range(256))
_MAX_ODD_SHARE: Final = 0.1
#: characters of context each window carries from the previous one, and the margin at its end
#: whose matches are left to the next window (matches are far shorter than either)
_CONTEXT: Final = 16 * 1024
_MARGIN: Final = 2 * 1024


def _odd_share(data: bytes) -> float:
    """Share of control bytes and undecodable UTF-8 among the non-NUL bytes of ``data``."""
    body = data.translate(None, b"\x00")
    if not body:
        return 1.0
    controls = len(body.translate(None, _TEXT_BYTES))
    undecodable = body.decode("utf-8", "replace").count("\ufffd") if not body.isascii() else 0
    return (controls + undecodable) / len(body)


def is_binary(data: bytes) -> bool:
    """``data`` is binary: NULs aside, more than 10% of it is control bytes or not UTF-8.

    One NUL byte (or NUL padding) does not make text binary; UTF-16/UTF-32 text is text (see
    :func:`detect_encoding`), judged after decoding.
    """
    if detect_encoding(data[:_SNIFF]) not in ("utf-8", "utf-8-sig"):
        return False
    return _odd_share(data) > _MAX_ODD_SHARE


def _texty(text: str) -> bool:
    if not text:
        return False
    odd = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\n\r\f\v\b\x1b") or ch == "\ufffd")
    return odd / len(text) <= _MAX_ODD_SHARE


def detect_encoding(head: bytes) -> str:
    """The codec for a file starting with ``head`` (its first 8 KiB): BOMs first, then UTF-32/UTF-16
    without BOM when ``head`` decodes as such and looks like text, else UTF-8."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:_SNIFF]
    if b"\x00" not in sample or len(sample) < 4:
        return "utf-8"
    for codec, unit, high in (
        ("utf-32-le", 4, 3),
        ("utf-32-be", 4, 0),
        ("utf-16-le", 2, 1),
        ("utf-16-be", 2, 0),
    ):
        cut = sample[: len(sample) - len(sample) % unit]
        # text in these encodings has its most significant byte zero in most code units
        if cut[high::unit].count(0) < len(cut) // unit // 2:
            continue
        try:
            text = codecs.getincrementaldecoder(codec)("strict").decode(cut, final=False)
        except UnicodeDecodeError:
            continue
        if text.count("\x00") <= len(text) // 20 and _texty(text):
            return codec
    return "utf-8"


def ascii_lower(text: str) -> str:
    """``text`` with A-Z lowered and every other character kept: offsets stay valid."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) and text.isascii() else text.translate(_ASCII_LOWER)


def lines_containing(
    text: str, needles: tuple[str, ...], *, haystack: str | None = None, nul_breaks: bool = False
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
            if nul_breaks:  # printable strings of a binary window: NULs end a "line" too
                start = max(start, text.rfind("\x00", start, pos) + 1)
                nul = text.find("\x00", pos, end)
                end = end if nul < 0 else nul
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
    windows: int = 0
    nested_archives: int = 0
    bytes_scanned: int = 0
    encodings: dict[str, int] = field(default_factory=dict)
    #: what could not be scanned, and why (a reason each); empty when the scan was complete
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, int | bool | dict[str, int]]:
        return {
            "files_scanned": self.files_scanned,
            "files_skipped_binary": self.files_binary,
            "files_truncated": self.files_truncated,
            "files_unreadable": self.files_unreadable,
            "scan_budget_exhausted": self.budget_exhausted,
            "scan_windows": self.windows,
            "nested_archives": self.nested_archives,
            "bytes_scanned": self.bytes_scanned,
            "encodings": dict(sorted(self.encodings.items())),
            "scan_problems": len(self.problems),
        }

    def incomplete_reasons(self, limit: int = 10) -> list[str]:
        """The scan's problems as reasons (at most ``limit``, then a count of the rest)."""
        if not self.problems:
            return []
        out = [f"the scan is incomplete: {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            out.append(f"{len(self.problems) - limit} more parts of the package could not be scanned")
        return out


@dataclass(frozen=True, slots=True)
class TextFile:
    """One window of one file's text (a file that fits in one window is one ``TextFile``).

    ``text`` starts at character ``start_offset`` of the file, on line ``start_line``, column
    ``start_column``. A scanner reports a match only when :meth:`owns` its span. ``binary``: the
    window's bytes are not text, and ``text`` holds their printable strings (other bytes are NULs).
    """

    path: str  # display-safe, without a leading "./"; nested: "outer.zip!/inner/file.txt"
    text: str
    truncated: bool = False
    binary: bool = False
    encoding: str = "utf-8"
    start_line: int = 1
    start_column: int = 1
    start_offset: int = 0
    own_end_from: int = 0  # a match is owned when own_end_from < end <= own_end_to
    own_end_to: int | None = None  # None: to the end of the text (the file's last window)
    first: bool = True
    last: bool = True
    context: int = 0  # leading characters that repeat the end of the previous window
    #: the printable strings of a UTF-16/32 file's bytes, a second view of the same window (a BOM
    #: in front of UTF-8 text must hide nothing); not part of the file's text (manifests, commit logs)
    alternate: bool = False

    def owns(self, start: int, end: int) -> bool:
        """This window reports a match spanning ``text[start:end]`` (its end lies in this window's part)."""
        end = max(end, start + 1)
        if self.own_end_to is not None and end > self.own_end_to:
            return False
        return end > self.own_end_from

    def index(self) -> LineIndex:
        return LineIndex(self.text, self.start_line, self.start_column)

    @property
    def new_text(self) -> str:
        """The text without the context repeated from the previous window (to rebuild a file)."""
        return self.text[self.context :]


class LineIndex:
    """Maps character offsets of a text to 1-based (line, column); ``start_line``/``start_column``
    are those of the text's first character (for a window in the middle of a file)."""

    def __init__(self, text: str, start_line: int = 1, start_column: int = 1) -> None:
        self._starts = [0]
        self._line0 = start_line
        self._col0 = start_column
        start = text.find("\n")
        while start >= 0:
            self._starts.append(start + 1)
            start = text.find("\n", start + 1)

    def locate(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._starts, offset) - 1
        column = offset - self._starts[line] + 1
        if line == 0:
            column += self._col0 - 1
        return line + self._line0, column


def _chunks(stream: ReadableLike, size: int) -> Iterator[bytes]:
    while True:
        out = bytearray()
        while len(out) < size:
            piece = stream.read(min(size - len(out), 1024 * 1024))
            if not piece:
                break
            out += piece
        if not out:
            return
        yield bytes(out)
        if len(out) < size:
            return


class ReadableLike(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _file_windows(path: str, stream: ReadableLike, window: int, stats: ScanStats) -> Iterator[TextFile]:
    """The windows of one file (see :class:`TextFile`)."""
    chunks = _chunks(stream, window)
    first_chunk = next(chunks, b"")
    encoding = detect_encoding(first_chunk[:_SNIFF])
    fixed = encoding not in ("utf-8", "utf-8-sig")
    if not fixed and len(first_chunk) < window and _odd_share(first_chunk) <= _MAX_ODD_SHARE:
        # the common case, a text file that fits in one window: one plain decode
        stats.bytes_scanned += len(first_chunk)
        stats.windows += 1
        stats.files_scanned += 1
        stats.encodings[encoding] = stats.encodings.get(encoding, 0) + 1
        yield TextFile(path, first_chunk.decode(encoding, "replace"), encoding=encoding)
        return
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    line, column, offset = 1, 1, 0  # of the window's first character
    context = ""
    pending = first_chunk
    index = 0
    all_binary = True
    raw_line = 1
    while True:
        chunk = pending
        nxt = next(chunks, None)
        last = nxt is None
        binary = not fixed and _odd_share(chunk) > _MAX_ODD_SHARE if chunk else False
        if binary:
            piece = chunk.translate(_STRINGS_TABLE).decode("latin-1")
            decoder.reset()
        else:
            all_binary = False
            piece = decoder.decode(chunk, final=last)
        stats.bytes_scanned += len(chunk)
        text = context + piece
        own_to = None if last else len(text) - _MARGIN
        stats.windows += 1
        yield TextFile(
            path,
            text,
            binary=binary,
            encoding=encoding,
            start_line=line,
            start_column=column,
            start_offset=offset,
            own_end_from=len(context) - _MARGIN if index else 0,
            own_end_to=own_to,
            first=index == 0,
            last=last,
            context=len(context),
        )
        if fixed:
            # a UTF-16/32 file is also searched as bytes: a BOM in front of UTF-8 text must not
            # turn a secret into CJK characters nobody looks for
            yield TextFile(
                path,
                chunk.translate(_STRINGS_TABLE).decode("latin-1"),
                encoding="bytes",
                start_line=raw_line,
                first=False,
                last=last,
                alternate=True,
            )
            raw_line += chunk.count(b"\n")
        if last:
            break
        keep = min(_CONTEXT, len(text))
        dropped = text[: len(text) - keep]
        newlines = dropped.count("\n")
        if newlines:
            line += newlines
            column = len(dropped) - dropped.rfind("\n")
        else:
            column += len(dropped)
        offset += len(dropped)
        context = text[len(text) - keep :]
        assert nxt is not None
        pending = nxt
        index += 1
    if first_chunk and all_binary:
        stats.files_binary += 1
    else:
        stats.files_scanned += 1
        stats.encodings[encoding] = stats.encodings.get(encoding, 0) + 1


def iter_text_files(
    pkg: PackageView, config: ValidatorConfig, stats: ScanStats, *, binary: bool = False
) -> Iterator[TextFile]:
    """The text windows of every regular file of the package and of its nested archives.

    Binary windows come only with ``binary`` (as printable strings). Whatever could not be
    scanned (a bound of the walk, an unreadable member or archive) ends up in
    ``stats.problems``, each a reason; ``stats.budget_exhausted`` says the byte budget ran out.
    """
    walk = FileWalk.for_config(pkg, config)
    for item in walk:
        try:
            for tf in _file_windows(item.path, item.stream, config.scan_max_file_bytes, stats):
                if tf.binary and not binary:
                    continue
                yield tf
        except WalkBudgetExceeded:
            walk.stop_over_budget()
            break
        except ArchiveError as exc:
            stats.files_unreadable += 1
            walk.problem(f"{item.path} could not be read: {exc}")
    stats.nested_archives = walk.nested_archives
    stats.budget_exhausted = walk.budget_exhausted
    stats.problems = list(walk.problems)
