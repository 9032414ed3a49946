"""Read-only, in-memory view of a package archive (.tar.gz or .zip; plain .tar for nested members).

Nothing is ever extracted to disk here. The format is detected from magic bytes, never from a
file name. Every decompression is streamed and bounded:

* listing a tar.gz decompresses the whole gzip stream (tar headers sit between the data), but
  never keeps more than a small buffer and stops with :class:`StreamLimitExceeded` once
  ``max_stream_bytes`` came out, so a bomb costs bounded CPU and no memory;
* a zip's central directory is not parsed when its end record declares more than
  ``max_entries`` entries;
* members are read through :meth:`PackageView.read` / :meth:`PackageView.iter_files` with a
  hard cap: at most ``cap`` bytes are ever held for one member.

Read errors (corrupt data, bad CRC, truncated streams, encrypted or unsupported members) are
reported as :class:`ArchiveError`, never as library-specific exceptions.

:class:`FileWalk` is what the content validators read: every regular file of the package *and*
of the archives nested in it (zip, tar, tar.gz/tgz, tar.xz, tar.bz2, and gzip, xz and bzip2
streams, recursively, and a zip appended to another file; zstd, lz4, 7z and rar data are
refused as uninspectable), with paths
such as ``outer.zip!/inner/file.txt``. Its bounds (nesting depth, size of one nested archive,
bytes expanded in all, files in all) are enforced once, there; whatever goes over a bound, or
cannot be read, is recorded in :attr:`FileWalk.problems` as a reason a submitter can act on,
and a validator that reads a walk with problems fails: nothing is skipped silently.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import stat
import struct
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final, Protocol

from hallmark.release.validators.model import GiB, PackageMeta

if TYPE_CHECKING:
    from hallmark.release.validators.model import ValidatorConfig

__all__ = [
    "ArchiveEntry",
    "ArchiveError",
    "ArchiveFormat",
    "EntryType",
    "FileWalk",
    "MemberData",
    "PackageView",
    "StreamLimitExceeded",
    "WalkedFile",
    "detect_format",
    "display_name",
    "gunzip_bounded",
    "gunzip_measure",
]

_CHUNK: Final = 64 * 1024
_TAR_BUFSIZE: Final = 256 * 1024
_GZIP_MAGIC: Final = b"\x1f\x8b"
_ZIP_MAGICS: Final = (b"PK\x03\x04", b"PK\x05\x06")
_ZIP_EOCD: Final = b"PK\x05\x06"
_ZIP64_LOCATOR: Final = b"PK\x06\x07"
_ZIP64_EOCD: Final = b"PK\x06\x06"
#: A zip symlink's target is its content; longer targets are not links anyone needs.
_MAX_LINK_TARGET: Final = 4096


class ArchiveError(Exception):
    """The archive, or one of its members, cannot be read."""


class StreamLimitExceeded(ArchiveError):
    """More decompressed bytes than allowed came out of a stream (a bomb, or a too-large package)."""


class ArchiveFormat(StrEnum):
    TAR_GZ = "tar.gz"
    ZIP = "zip"
    TAR = "tar"  # uncompressed tar: accepted only inside a package, never as the package
    GZIP = "gzip"  # a gzip stream whose content is not a tar archive
    UNKNOWN = "unknown"


class EntryType(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR_DEVICE = "char-device"
    BLOCK_DEVICE = "block-device"
    FIFO = "fifo"
    SOCKET = "socket"
    OTHER = "other"  # e.g. GNU sparse files, unknown tar types


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """One member as its archive declares it.

    ``size`` is the declared uncompressed size. ``compressed_size`` is exact for zip; for
    tar.gz it is the gzip input consumed while the member went by (approximate: buffering
    makes small members read 0 or one buffer); ``None`` for a plain tar. ``mode`` holds the
    permission bits including setuid/setgid/sticky. ``offset`` is a zip member's local header
    offset (``None`` for tar).
    """

    index: int
    name: str
    type: EntryType
    size: int
    compressed_size: int | None
    mode: int
    link_target: str | None = None
    encrypted: bool = False
    offset: int | None = None

    @property
    def is_file(self) -> bool:
        return self.type is EntryType.FILE


@dataclass(frozen=True, slots=True)
class MemberData:
    """At most ``cap`` bytes of a member; ``truncated`` when it had more; ``error`` when unreadable."""

    entry: ArchiveEntry
    data: bytes
    truncated: bool
    error: str | None = None


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def display_name(name: str) -> str:
    """``name`` safe to put in JSON and messages (undecodable bytes and control characters escaped)."""
    raw = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in raw)


# --------------------------------------------------------------------------- gzip streaming


class _GzipReader:
    """Bounded, streaming gzip decompression over bytes in memory (multi-member aware).

    ``read(n)`` returns up to ``n`` bytes (all that is left for ``n < 0``) and raises
    :class:`StreamLimitExceeded` as soon as more than ``limit`` bytes came out in total.
    Trailing bytes after the last member that are not a gzip member are counted in
    ``trailing_garbage`` (zero padding is ignored).
    """

    def __init__(self, data: bytes, limit: int) -> None:
        self._src = memoryview(data)
        self._pos = 0
        self._pending = b""
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.limit = limit
        self.total_out = 0
        self.eof = False
        self.trailing_garbage = 0
        self.members = 1

    @property
    def compressed_pos(self) -> int:
        """Compressed bytes consumed so far."""
        return self._pos - len(self._pending)

    def _take(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        chunk = bytes(self._src[self._pos : self._pos + _CHUNK])
        self._pos += len(chunk)
        return chunk

    def _next_member(self) -> None:
        rest = self._d.unused_data + self._pending
        self._pending = b""
        while len(rest) < 2 and self._pos < len(self._src):
            rest += self._take()
        if not rest:
            self.eof = True
            return
        if rest[:2] == _GZIP_MAGIC:
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._pending = rest
            self.members += 1
            return
        tail = rest + bytes(self._src[self._pos :])
        self._pos = len(self._src)
        self.trailing_garbage = len(tail) - tail.count(0)
        self.eof = True

    def read(self, n: int = -1, /) -> bytes:
        want = n if n >= 0 else sys.maxsize
        out = bytearray()
        while len(out) < want and not self.eof:
            if self._d.eof:
                self._next_member()
                continue
            data = self._take()
            if not data:
                raise ArchiveError("truncated gzip stream")
            try:
                piece = self._d.decompress(data, min(want - len(out), 1024 * 1024))
            except zlib.error as exc:
                raise ArchiveError(f"corrupt gzip stream: {exc}") from None
            self._pending = self._d.unconsumed_tail
            self.total_out += len(piece)
            if self.total_out > self.limit:
                raise StreamLimitExceeded(f"decompressed data exceeds {self.limit} bytes")
            out += piece
        return bytes(out)


class _CountingReader:
    """A plain reader over bytes that also bounds how much is read (for uncompressed tar)."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._buf = io.BytesIO(data)
        self.limit = limit
        self.total_out = 0
        self.trailing_garbage = 0
        self.compressed_pos = 0

    def read(self, n: int = -1, /) -> bytes:
        data = self._buf.read(n)
        self.total_out += len(data)
        if self.total_out > self.limit:
            raise StreamLimitExceeded(f"data exceeds {self.limit} bytes")
        return data


def gunzip_bounded(data: bytes, cap: int) -> tuple[bytes, bool]:
    """Decompress a gzip stream keeping at most ``cap`` bytes: ``(data, truncated)``."""
    reader = _GzipReader(data, limit=sys.maxsize)
    out = reader.read(cap)
    more = reader.read(1) if not reader.eof else b""
    return out, bool(more)


def gunzip_measure(data: bytes, limit: int, *, head: int = 512) -> tuple[bytes, int]:
    """Stream-decompress a gzip blob counting its size: ``(first head bytes, total)``.

    Raises :class:`StreamLimitExceeded` past ``limit`` bytes and :class:`ArchiveError` when corrupt.
    """
    reader = _GzipReader(data, limit=limit)
    first = reader.read(head)
    total = len(first)
    while piece := reader.read(1024 * 1024):
        total += len(piece)
    return first, total


def _peek_gzip(data: bytes, n: int) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = b""
    try:
        for start in range(0, min(len(data), 1024 * 1024), _CHUNK):
            out += d.decompress(data[start : start + _CHUNK], n - len(out))
            if len(out) >= n or d.eof:
                break
    except zlib.error:
        return b""
    return out[:n]


def _looks_like_tar(block: bytes) -> bool:
    if len(block) < 512:
        return False
    if block[:512] == bytes(512):
        return True  # an empty archive (end-of-archive marker first)
    if block[257:262] == b"ustar":
        return True
    try:
        tarfile.TarInfo.frombuf(block[:512], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def detect_format(data: bytes) -> ArchiveFormat:
    """The archive format of ``data`` from its magic bytes."""
    if data[:4] in _ZIP_MAGICS:
        return ArchiveFormat.ZIP
    if data[:2] == _GZIP_MAGIC:
        return ArchiveFormat.TAR_GZ if _looks_like_tar(_peek_gzip(data, 512)) else ArchiveFormat.GZIP
    if _looks_like_tar(data[:512]):
        return ArchiveFormat.TAR
    return ArchiveFormat.UNKNOWN


def _zip_declared_entries(data: bytes) -> int | None:
    """Entry count from a zip's end of central directory record (zip64 aware), without parsing it."""
    tail_start = max(0, len(data) - (22 + 65535))
    pos = data.rfind(_ZIP_EOCD, tail_start)
    if pos < 0 or pos + 22 > len(data):
        return None
    (total,) = struct.unpack_from("<H", data, pos + 10)
    if total != 0xFFFF:
        return int(total)
    loc = pos - 20
    if loc < 0 or data[loc : loc + 4] != _ZIP64_LOCATOR:
        return int(total)
    (eocd64,) = struct.unpack_from("<Q", data, loc + 8)
    if eocd64 + 56 > len(data) or data[eocd64 : eocd64 + 4] != _ZIP64_EOCD:
        return None
    (total64,) = struct.unpack_from("<Q", data, eocd64 + 32)
    return int(total64)


def _tar_type(member: tarfile.TarInfo) -> EntryType:
    if member.issparse():
        return EntryType.OTHER
    if member.isreg():
        return EntryType.FILE
    if member.isdir():
        return EntryType.DIR
    if member.issym():
        return EntryType.SYMLINK
    if member.islnk():
        return EntryType.HARDLINK
    if member.ischr():
        return EntryType.CHAR_DEVICE
    if member.isblk():
        return EntryType.BLOCK_DEVICE
    if member.isfifo():
        return EntryType.FIFO
    return EntryType.OTHER


def _zip_type(info: zipfile.ZipInfo) -> tuple[EntryType, int]:
    unix_mode = info.external_attr >> 16 if info.create_system == 3 else 0
    perms = stat.S_IMODE(unix_mode) if unix_mode else (0o755 if info.is_dir() else 0o644)
    fmt = stat.S_IFMT(unix_mode)
    if fmt == stat.S_IFLNK:
        return EntryType.SYMLINK, perms
    if fmt == stat.S_IFCHR:
        return EntryType.CHAR_DEVICE, perms
    if fmt == stat.S_IFBLK:
        return EntryType.BLOCK_DEVICE, perms
    if fmt == stat.S_IFIFO:
        return EntryType.FIFO, perms
    if fmt == stat.S_IFSOCK:
        return EntryType.SOCKET, perms
    if info.is_dir() or fmt == stat.S_IFDIR:
        return EntryType.DIR, perms
    return EntryType.FILE, perms


def _read_bounded(stream: _Readable, cap: int) -> tuple[bytes, bool]:
    out = bytearray()
    while len(out) < cap:
        piece = stream.read(min(_CHUNK, cap - len(out)))
        if not piece:
            return bytes(out), False
        out += piece
    return bytes(out), bool(stream.read(1))


class _MemberStream:
    """A member's data stream that turns every library error into :class:`ArchiveError`."""

    def __init__(self, inner: _Readable) -> None:
        self._inner = inner

    def read(self, n: int = -1, /) -> bytes:
        try:
            return self._inner.read(n)
        except ArchiveError:
            raise
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError) as exc:
            raise ArchiveError(f"unreadable member: {exc}") from None
        except (NotImplementedError, RuntimeError, ValueError) as exc:
            raise ArchiveError(f"unsupported member: {exc}") from None


class _FailingStream:
    """The stream of a member that cannot be opened: every read raises :class:`ArchiveError`."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def read(self, n: int = -1, /) -> bytes:
        raise ArchiveError(self._reason)


# --------------------------------------------------------------------------- the view


class PackageView:
    """An archive held in memory: its entries and bounded access to its members.

    ``max_entries`` and ``max_stream_bytes`` bound the work of listing; the validators build
    the view with :meth:`for_config` so the bounds follow their configuration. Listing never
    raises: a listing that failed part way keeps the entries seen so far and says why in
    ``listing_error`` (``stream_limit_hit`` when it was the decompression bound).
    """

    def __init__(
        self,
        data: bytes,
        meta: PackageMeta | None = None,
        *,
        max_entries: int = 10_000,
        max_stream_bytes: int = 1 * GiB + 16 * 1024 * 1024,
    ) -> None:
        self.data = bytes(data)
        self.meta = meta
        self.max_entries = max_entries
        self.max_stream_bytes = max_stream_bytes
        self.format = detect_format(self.data)
        self.listing_error: str | None = None
        self.stream_limit_hit = False
        self.declared_entry_count: int | None = None
        #: tar only: total bytes of the (decompressed) tar stream, and bytes past the tar end.
        self.stream_size: int | None = None
        self.trailing_bytes = 0
        #: set by :meth:`iter_files` when its byte budget ran out before the last member
        self.budget_exhausted = False
        self._entries: list[ArchiveEntry] | None = None
        self._zip: zipfile.ZipFile | None = None

    @classmethod
    def for_config(cls, data: bytes, meta: PackageMeta | None, config: ValidatorConfig) -> PackageView:
        # tar headers and padding take room beyond the members' own bytes
        overhead = 3 * 512 * config.max_entries + 1024 * 1024
        return cls(
            data,
            meta,
            max_entries=config.max_entries,
            max_stream_bytes=config.max_total_uncompressed + overhead,
        )

    # ---- identity
    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def is_archive(self) -> bool:
        return self.format in (ArchiveFormat.TAR_GZ, ArchiveFormat.ZIP, ArchiveFormat.TAR)

    # ---- listing
    def entries(self) -> list[ArchiveEntry]:
        """All entries in archive order (cached). Partial when ``listing_error`` is set."""
        if self._entries is None:
            if self.format is ArchiveFormat.ZIP:
                self._entries = self._list_zip()
            elif self.format in (ArchiveFormat.TAR_GZ, ArchiveFormat.TAR):
                self._entries = self._list_tar()
            else:
                self._entries = []
                self.listing_error = f"not a supported archive (detected: {self.format.value})"
        return self._entries

    def find(self, name: str) -> ArchiveEntry | None:
        """The last entry whose name, without a leading ``./``, is ``name``."""
        found = None
        for entry in self.entries():
            if _strip_dot(entry.name) == name:
                found = entry
        return found

    def _stream(self) -> _GzipReader | _CountingReader:
        if self.format is ArchiveFormat.TAR_GZ:
            return _GzipReader(self.data, self.max_stream_bytes)
        return _CountingReader(self.data, self.max_stream_bytes)

    def _list_tar(self) -> list[ArchiveEntry]:
        entries: list[ArchiveEntry] = []
        marks: list[int] = []
        stream = self._stream()
        compressed = self.format is ArchiveFormat.TAR_GZ
        try:
            with tarfile.open(
                fileobj=stream, mode="r|", errors="surrogateescape", bufsize=_TAR_BUFSIZE
            ) as tf:  # type: ignore[call-overload]
                for index, member in enumerate(tf):
                    if index >= self.max_entries:
                        self.declared_entry_count = index + 1
                        self.listing_error = f"more than {self.max_entries} entries"
                        break
                    marks.append(stream.compressed_pos)
                    entries.append(
                        ArchiveEntry(
                            index=index,
                            name=member.name,
                            type=_tar_type(member),
                            size=member.size if member.isreg() else 0,
                            compressed_size=None,
                            mode=stat.S_IMODE(member.mode),
                            link_target=member.linkname if (member.issym() or member.islnk()) else None,
                        )
                    )
                else:
                    end = tf.offset
                    while stream.read(_CHUNK * 16):
                        pass
                    self.stream_size = stream.total_out
                    self.trailing_bytes = max(0, stream.total_out - end - 1024) + stream.trailing_garbage
        except StreamLimitExceeded as exc:
            self.stream_limit_hit = True
            self.listing_error = str(exc)
        except (ArchiveError, tarfile.TarError, EOFError, OSError, ValueError) as exc:
            self.listing_error = f"corrupt tar archive: {exc}"
        if compressed:
            marks.append(stream.compressed_pos)
            entries = [
                _replace_compressed(entry, max(0, marks[i + 1] - marks[i])) for i, entry in enumerate(entries)
            ]
        return entries

    def _open_zip(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(io.BytesIO(self.data))
        return self._zip

    def _list_zip(self) -> list[ArchiveEntry]:
        declared = _zip_declared_entries(self.data)
        self.declared_entry_count = declared
        if declared is not None and declared > self.max_entries:
            self.listing_error = f"archive declares {declared} entries (more than {self.max_entries})"
            return []
        try:
            zf = self._open_zip()
            infos = zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
            self.listing_error = f"corrupt zip archive: {exc}"
            return []
        if len(infos) > self.max_entries:
            self.declared_entry_count = len(infos)
            self.listing_error = f"more than {self.max_entries} entries"
            infos = infos[: self.max_entries]
        entries = []
        for index, info in enumerate(infos):
            kind, perms = _zip_type(info)
            encrypted = bool(info.flag_bits & 0x1)
            link_target = None
            if kind is EntryType.SYMLINK and not encrypted:
                try:
                    raw, _ = _read_bounded(_MemberStream(zf.open(info)), _MAX_LINK_TARGET)
                except ArchiveError:
                    raw = b""
                link_target = raw.decode("utf-8", "surrogateescape")
            entries.append(
                ArchiveEntry(
                    index=index,
                    name=info.orig_filename,
                    type=kind,
                    size=info.file_size if kind is EntryType.FILE else 0,
                    compressed_size=info.compress_size,
                    mode=perms,
                    link_target=link_target,
                    encrypted=encrypted,
                    offset=info.header_offset,
                )
            )
        return entries

    def zip_name_length(self, entry: ArchiveEntry) -> int:
        """Bytes of a zip entry's name as stored (for overlap checks)."""
        info = self._open_zip().infolist()[entry.index]
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
        try:
            return len(info.orig_filename.encode(encoding))
        except UnicodeEncodeError:
            return len(info.orig_filename.encode("utf-8", "surrogateescape"))

    # ---- member access
    def iter_file_streams(self) -> Iterator[tuple[ArchiveEntry, _Readable]]:
        """Each regular file with a stream of its data, in archive order (one pass).

        A stream is valid only until the iterator advances. Reading raises
        :class:`ArchiveError`; the iteration itself raises it when the archive breaks part way.
        """
        entries = self.entries()
        if self.format is ArchiveFormat.ZIP:
            if not entries:
                return  # nothing listed (an empty or unreadable zip: see listing_error)
            zf = self._open_zip()
            infos = zf.infolist()
            for entry in entries:
                if entry.is_file:
                    try:
                        inner = zf.open(infos[entry.index])
                    except (
                        zipfile.BadZipFile,
                        NotImplementedError,
                        RuntimeError,
                        ValueError,
                        OSError,
                    ) as exc:  # e.g. encrypted: this member is unreadable, the others are not
                        yield entry, _FailingStream(f"unreadable member: {exc}")
                        continue
                    with inner:
                        yield entry, _MemberStream(inner)
            return
        if self.format not in (ArchiveFormat.TAR_GZ, ArchiveFormat.TAR):
            return
        stream = self._stream()
        try:
            with tarfile.open(
                fileobj=stream, mode="r|", errors="surrogateescape", bufsize=_TAR_BUFSIZE
            ) as tf:  # type: ignore[call-overload]
                for index, member in enumerate(tf):
                    if index >= len(entries):
                        break
                    entry = entries[index]
                    if entry.is_file:
                        fileobj = tf.extractfile(member)
                        if fileobj is not None:
                            yield entry, _MemberStream(fileobj)
        except ArchiveError:
            raise
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise ArchiveError(f"corrupt tar archive: {exc}") from None

    def iter_files(self, *, cap: int, budget: int | None = None) -> Iterator[MemberData]:
        """Each regular file's first ``cap`` bytes, in archive order (one pass).

        A member that cannot be read yields ``error``; a broken archive ends the iteration
        with the last item carrying the error. With ``budget``, the iteration stops once that
        many bytes were read in total (``budget_exhausted`` is then set): many members that
        each stay under ``cap`` cannot add up to a bomb.
        """
        self.budget_exhausted = False
        left = sys.maxsize if budget is None else budget
        last: ArchiveEntry | None = None
        try:
            for entry, stream in self.iter_file_streams():
                last = entry
                if left <= 0:
                    self.budget_exhausted = True
                    return
                try:
                    data, truncated = _read_bounded(stream, min(cap, left))
                    left -= len(data) + 1
                    if truncated and len(data) < cap:
                        self.budget_exhausted = True
                        return
                except ArchiveError as exc:
                    yield MemberData(entry, b"", False, str(exc))
                    continue
                yield MemberData(entry, data, truncated)
        except ArchiveError as exc:
            placeholder = last or ArchiveEntry(0, "", EntryType.OTHER, 0, None, 0)
            yield MemberData(placeholder, b"", False, f"archive unreadable: {exc}")

    def read(self, entry: ArchiveEntry | str, *, cap: int) -> MemberData:
        """One regular file's first ``cap`` bytes (a tar is streamed up to that member)."""
        target = self.find(entry) if isinstance(entry, str) else entry
        if target is None or not target.is_file:
            raise KeyError(entry if isinstance(entry, str) else entry.name)
        if self.format is ArchiveFormat.ZIP:
            try:
                inner = self._open_zip().open(self._open_zip().infolist()[target.index])
                with inner:
                    data, truncated = _read_bounded(_MemberStream(inner), cap)
            except ArchiveError as exc:
                return MemberData(target, b"", False, str(exc))
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, OSError) as exc:
                return MemberData(target, b"", False, f"unreadable member: {exc}")
            return MemberData(target, data, truncated)
        try:
            for candidate, stream in self.iter_file_streams():
                if candidate.index == target.index:
                    data, truncated = _read_bounded(stream, cap)
                    return MemberData(target, data, truncated)
        except ArchiveError as exc:
            return MemberData(target, b"", False, str(exc))
        return MemberData(target, b"", False, "member not found in the stream")


def _strip_dot(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name


def _replace_compressed(entry: ArchiveEntry, compressed: int) -> ArchiveEntry:
    return ArchiveEntry(
        index=entry.index,
        name=entry.name,
        type=entry.type,
        size=entry.size,
        compressed_size=compressed,
        mode=entry.mode,
        link_target=entry.link_target,
        encrypted=entry.encrypted,
        offset=entry.offset,
    )


# --------------------------------------------------------------------------- recursive walk


class WalkBudgetExceeded(ArchiveError):
    """The walk's byte budget (bytes expanded in all, nested archives included) ran out."""


class _WalkStream:
    """A member's stream as the walk hands it out: ``head`` first, every byte charged to the walk."""

    def __init__(self, walk: FileWalk, head: bytes, inner: _Readable | None) -> None:
        self._walk = walk
        self._head = head
        self._inner = inner

    def read(self, n: int = -1, /) -> bytes:
        if self._head:
            if n < 0 or n >= len(self._head):
                data, self._head = self._head, b""
            else:
                data, self._head = self._head[:n], self._head[n:]
            return data
        if self._inner is None:
            return b""
        data = self._inner.read(n)
        self._walk._charge(len(data))
        return data


@dataclass(frozen=True, slots=True)
class WalkedFile:
    """One regular file of the walk. ``stream`` is valid only until the walk advances."""

    path: str  # display-safe; nested: "outer.zip!/inner/file.txt"; no leading "./"
    entry: ArchiveEntry
    stream: _Readable
    depth: int  # 0: a member of the package itself


def _clean_name(name: str) -> str:
    shown = display_name(name)
    while shown.startswith("./"):
        shown = shown[2:]
    return shown


def _appended_zip(data: bytes) -> bytes | None:
    """The zip archive that ends ``data`` after other bytes (a self-extractor, an image with a zip
    behind it), when its end record and first local header are where the end record says."""
    pos = data.rfind(_ZIP_EOCD, max(0, len(data) - (22 + 65535)))
    if pos <= 0 or pos + 22 > len(data):
        return None
    entries, cd_size, cd_offset = struct.unpack_from("<HII", data, pos + 10)
    start = pos - cd_size - cd_offset  # bytes in front of the zip (what zip readers skip)
    if entries == 0 or start <= 0 or data[start : start + 4] != b"PK\x03\x04":
        return None
    return data[start:]


def _is_archive_head(head: bytes) -> bool:
    """Zip, gzip, xz, bzip2 or tar data: what the walk opens."""
    return (
        head[:4] in _ZIP_MAGICS
        or head[:2] == _GZIP_MAGIC
        or head.startswith(_XZ_MAGIC)
        or _is_bzip2(head)
        or _looks_like_ustar(head)
    )


def _looks_like_ustar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def _gz_inner_name(path: str) -> str:
    base = path.rsplit("/", 1)[-1].rsplit("!/", 1)[-1]
    for suffix in (".gz", ".gzip", ".z", ".xz", ".bz2"):
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base + ".content"


class FileWalk:
    """Every regular file of a package and of the archives nested in it, within bounds.

    * ``max_depth``: levels of archives inside the package (the package's own members are at
      depth 0; the members of ``a.zip`` in the package at depth 1, ...); a deeper archive is a
      problem;
    * ``max_nested_size``: bytes of one nested archive (it is held in memory to be read);
    * ``budget``: bytes read in all, from every member and every nested archive;
    * ``max_files``: regular files in all, nested archives included.

    Iterate once. Afterwards ``problems`` lists what was not scanned and why (empty: the walk
    covered everything); ``complete`` says the same.
    """

    def __init__(
        self,
        pkg: PackageView,
        *,
        max_depth: int,
        max_nested_size: int,
        budget: int,
        max_files: int,
        max_entries: int | None = None,
    ) -> None:
        self.pkg = pkg
        self.max_depth = max_depth
        self.max_nested_size = max_nested_size
        self.budget = budget
        self.max_files = max_files
        self.max_entries = max_entries if max_entries is not None else pkg.max_entries
        self.problems: list[str] = []
        self.bytes_read = 0
        self.files = 0
        self.nested_archives = 0
        self.budget_exhausted = False
        self._stopped = False

    @classmethod
    def for_config(cls, pkg: PackageView, config: ValidatorConfig) -> FileWalk:
        return cls(
            pkg,
            max_depth=config.max_nested_depth,
            max_nested_size=config.max_nested_inspect_size,
            budget=config.max_total_uncompressed,
            max_files=config.max_scan_files,
            max_entries=config.max_entries,
        )

    @property
    def complete(self) -> bool:
        return not self.problems

    def problem(self, reason: str) -> None:
        if reason not in self.problems:
            self.problems.append(reason)

    def _charge(self, n: int) -> None:
        self.bytes_read += n
        if self.bytes_read > self.budget:
            raise WalkBudgetExceeded(
                f"the package expands to more than {self.budget} bytes in all (nested archives included); "
                "make it smaller"
            )

    def stop_over_budget(self) -> None:
        """Record that the byte budget ran out and end the walk."""
        self.budget_exhausted = True
        self._stopped = True
        self.problem(
            f"the package expands to more than {self.budget} bytes in all (nested archives included), "
            "so it was not scanned completely; make it smaller"
        )

    def __iter__(self) -> Iterator[WalkedFile]:
        self.pkg.entries()
        if self.pkg.stream_limit_hit:
            self.stop_over_budget()
            return
        yield from self._walk_view(self.pkg, "", 0)

    # ---- internals
    def _walk_view(self, view: PackageView, prefix: str, depth: int) -> Iterator[WalkedFile]:
        where = prefix[:-2] if prefix else "the package"
        view.entries()
        if view.listing_error is not None and prefix:
            if view.stream_limit_hit:
                self.stop_over_budget()
                return
            self.problem(f"nested archive {where} could not be read completely: {view.listing_error}")
        current: ArchiveEntry | None = None
        try:
            for entry, stream in view.iter_file_streams():
                current = entry
                if self._stopped:
                    return
                yield from self._member(prefix + _clean_name(entry.name), entry, stream, depth)
        except WalkBudgetExceeded:
            self.stop_over_budget()
        except StreamLimitExceeded:
            self.stop_over_budget()
        except ArchiveError as exc:
            at = f" after {prefix + _clean_name(current.name)}" if current is not None else ""
            self.problem(f"{where} could not be read completely{at}: {exc}")

    def _member(self, path: str, entry: ArchiveEntry, stream: _Readable, depth: int) -> Iterator[WalkedFile]:
        self.files += 1
        if self.files > self.max_files:
            self._stopped = True
            self.problem(
                f"more than {self.max_files} files in all (nested archives included); the scan stopped at {path}"
            )
            return
        try:
            head = stream.read(512)
            self._charge(len(head))
        except WalkBudgetExceeded:
            raise
        except ArchiveError as exc:
            self.problem(f"{path} could not be read: {exc}")
            return
        unsupported = _unsupported_format(head)
        if unsupported is not None:
            self.problem(_unsupported_reason(path, unsupported))
            return
        if not _is_archive_head(head):
            if not 22 <= entry.size <= self.max_nested_size:
                yield WalkedFile(path, entry, _WalkStream(self, head, stream), depth)
                return
            # held whole, to look for a zip appended to it (a polyglot: zip readers start at the end)
            try:
                rest, _ = _read_bounded(_WalkStream(self, b"", stream), self.max_nested_size - len(head))
            except WalkBudgetExceeded:
                raise
            except ArchiveError as exc:
                self.problem(f"{path} could not be read: {exc}")
                return
            data = head + rest
            yield WalkedFile(path, entry, _WalkStream(self, data, None), depth)
            appended = _appended_zip(data)
            if appended is not None:
                self.nested_archives += 1
                if depth + 1 > self.max_depth:
                    self.problem(
                        f"nested archive {path} (a zip appended to the file) exceeds depth {self.max_depth}; "
                        "flatten it or ship its files directly"
                    )
                    return
                yield from self._blob(path, entry, appended, depth + 1)
            return
        self.nested_archives += 1
        if depth + 1 > self.max_depth:
            self.problem(
                f"nested archive {path} exceeds depth {self.max_depth} (archives inside archives); "
                "flatten it or ship its files directly"
            )
            return
        if entry.size > self.max_nested_size:
            self.problem(
                f"nested archive {path} is {entry.size} bytes, more than the {self.max_nested_size}-byte "
                "limit for inspecting a nested archive; ship its files directly"
            )
            return
        try:
            body, more = _read_bounded(_WalkStream(self, b"", stream), self.max_nested_size - len(head))
        except WalkBudgetExceeded:
            raise
        except ArchiveError as exc:
            self.problem(f"nested archive {path} could not be read: {exc}")
            return
        if more:
            self.problem(
                f"nested archive {path} is more than {self.max_nested_size} bytes, the limit for inspecting "
                "a nested archive; ship its files directly"
            )
            return
        yield from self._blob(path, entry, head + body, depth + 1)

    def _blob(self, path: str, entry: ArchiveEntry, blob: bytes, depth: int) -> Iterator[WalkedFile]:
        """The files of ``blob``, an archive found at ``path``; its members are at ``depth``."""
        if blob.startswith(_XZ_MAGIC):
            yield from self._compressed(path, entry, _Decompressor(blob, lzma.LZMADecompressor), len(blob), depth)
            return
        if _is_bzip2(blob):
            yield from self._compressed(path, entry, _Decompressor(blob, bz2.BZ2Decompressor), len(blob), depth)
            return
        fmt = detect_format(blob)
        if fmt is ArchiveFormat.GZIP:
            yield from self._compressed(path, entry, _GzipReader(blob, sys.maxsize), len(blob), depth)
            return
        if fmt not in (ArchiveFormat.ZIP, ArchiveFormat.TAR_GZ, ArchiveFormat.TAR):
            self.problem(f"nested archive {path} could not be read: unrecognised archive data")
            return
        left = max(self.budget - self.bytes_read, 0)
        view = PackageView(blob, max_entries=self.max_entries, max_stream_bytes=left + 3 * 512 * self.max_entries)
        yield from self._walk_view(view, path + "!/", depth)

    def _compressed(
        self, path: str, entry: ArchiveEntry, reader: _Readable, size: int, depth: int
    ) -> Iterator[WalkedFile]:
        """A compressed stream (gzip that is not a tar, xz, bzip2): its content is one file, a tar
        (read as one level with its compression, like a .tar.gz) or another archive (one level more)."""
        inner = _gz_inner_name(path)
        reader = _MemberStream(reader)
        inner_path = f"{path}!/{inner}"
        inner_entry = ArchiveEntry(entry.index, inner, EntryType.FILE, 0, size, entry.mode)
        try:
            head = reader.read(512)
            self._charge(len(head))
        except WalkBudgetExceeded:
            raise
        except ArchiveError as exc:
            self.problem(f"compressed file {path} could not be read: {exc}")
            return
        unsupported = _unsupported_format(head)
        if unsupported is not None:
            self.problem(_unsupported_reason(inner_path, unsupported))
            return
        if not _is_archive_head(head):
            yield WalkedFile(inner_path, inner_entry, _WalkStream(self, head, reader), depth)
            return
        is_tar = _looks_like_ustar(head)
        shown = path if is_tar else inner_path
        if not is_tar:
            self.nested_archives += 1
            if depth + 1 > self.max_depth:
                self.problem(
                    f"nested archive {inner_path} exceeds depth {self.max_depth} (archives inside archives); "
                    "flatten it or ship its files directly"
                )
                return
        try:
            body, more = _read_bounded(_WalkStream(self, b"", reader), self.max_nested_size - len(head))
        except WalkBudgetExceeded:
            raise
        except ArchiveError as exc:
            self.problem(f"compressed file {path} could not be read: {exc}")
            return
        if more:
            self.problem(
                f"nested archive {shown} is more than {self.max_nested_size} bytes uncompressed, the limit for "
                "inspecting a nested archive; ship its files directly"
            )
            return
        if is_tar:
            left = max(self.budget - self.bytes_read, 0)
            view = PackageView(
                head + body, max_entries=self.max_entries, max_stream_bytes=left + 3 * 512 * self.max_entries
            )
            yield from self._walk_view(view, path + "!/", depth)
        else:
            yield from self._blob(inner_path, inner_entry, head + body, depth + 1)


_XZ_MAGIC: Final = b"\xfd7zXZ\x00"
_UNSUPPORTED: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\x04\x22\x4d\x18", "lz4"),
)


def _is_bzip2(head: bytes) -> bool:
    return head[:3] == b"BZh" and head[3:4] in b"123456789" and head[4:10] == b"1AY&SY"


def _unsupported_format(head: bytes) -> str | None:
    for magic, name in _UNSUPPORTED:
        if head.startswith(magic):
            return name
    return None


def _unsupported_reason(path: str, kind: str) -> str:
    return (
        f"{path} is {kind}-compressed data, which Hallmark cannot inspect; ship its files directly, "
        "or packed as .zip, .tar, .tar.gz, .tar.xz or .tar.bz2"
    )


class _Decompressor:
    """Streaming xz/bzip2 decompression over bytes in memory (concatenated streams too)."""

    def __init__(self, data: bytes, factory: Callable[[], Any]) -> None:
        self._src = memoryview(data)
        self._pos = 0
        self._pending = b""
        self._factory = factory
        self._d = factory()
        self._done = False

    def read(self, n: int = -1, /) -> bytes:
        want = n if n >= 0 else sys.maxsize
        out = bytearray()
        while len(out) < want and not self._done:
            if self._d.eof:
                rest = self._d.unused_data + self._pending + bytes(self._src[self._pos :])
                self._pos = len(self._src)
                self._pending = b""
                if not rest.strip(b"\x00"):
                    self._done = True
                    break
                self._d = self._factory()
                self._pending = rest
            chunk = b""
            if self._d.needs_input:
                if self._pending:
                    chunk, self._pending = self._pending, b""
                else:
                    chunk = bytes(self._src[self._pos : self._pos + _CHUNK])
                    self._pos += len(chunk)
                if not chunk:
                    raise ArchiveError("truncated compressed stream")
            try:
                piece = self._d.decompress(chunk, min(want - len(out), 1024 * 1024))
            except (lzma.LZMAError, OSError, EOFError, ValueError) as exc:
                raise ArchiveError(f"corrupt compressed stream: {exc}") from None
            out += piece
        return bytes(out)
