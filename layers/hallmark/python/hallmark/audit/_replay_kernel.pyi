"""Types of the optional native replay kernel (native/_replay_kernel.c, built by setup.py)."""

from mmap import mmap

def run(
    buf: bytes | bytearray | mmap,
    offset: int,
    last_hash: bytes,
    expected: int,
    sig_member: bytes,
    stop_seq: int,
    nodes: list[bytes],
    size: int,
    /,
) -> tuple[int, int, bytes | None, bytes | None]: ...
