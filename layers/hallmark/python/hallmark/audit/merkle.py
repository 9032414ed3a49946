"""RFC 6962 / RFC 9162 Merkle tree heads, inclusion proofs and consistency proofs.

Leaves are the 32-byte event hashes. ``leaf hash = SHA-256(0x00 || leaf)``,
``node = SHA-256(0x01 || left || right)``; a tree of ``n > 1`` leaves splits at ``k``, the
largest power of two smaller than ``n``; the head of the empty tree is ``SHA-256("")``.

Everything here is iterative: subtree heads are computed level by level over index ranges
(no list slicing, no recursion), and :class:`MerkleFrontier` keeps the compact "right
frontier" (one perfect-subtree head per set bit of the size) so that the head after each
append is available in O(log n) and a stream of ``n`` leaves costs ``2n`` hashes in all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "MerkleFrontier",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_frontier",
    "verify_consistency",
    "verify_inclusion",
    "verify_inclusion_hash",
]

_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """``SHA-256(0x00 || leaf)``."""
    return _sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) level by level: pair neighbours, carry an odd last node up unchanged.

    Pairing from the left and promoting a lone last node yields exactly the RFC 6962 tree
    (whose left subtree is always the largest perfect one).
    """
    n = hi - lo
    if n <= 0:
        return EMPTY_ROOT
    sha = _sha256
    level = [sha(b"\x00" + leaves[i]).digest() for i in range(lo, hi)]
    while n > 1:
        nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, n - 1, 2)]
        if n & 1:
            nxt.append(level[-1])
        level = nxt
        n = len(level)
    return level[0]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The RFC 6962 Merkle tree head of ``leaves`` (each a 32-byte event hash)."""
    return _subtree_root(leaves, 0, len(leaves))


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """RFC 9162 2.1.3.1 ``PATH(index, D[0:size])``, ordered from the leaf's sibling upwards."""
    n = len(leaves) if size is None else size
    if not 0 <= index < n or n > len(leaves):
        raise ValueError(f"leaf index {index} outside a tree of size {n}")
    top_down: list[bytes] = []
    lo, hi, m = 0, n, index
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if m < k:
            top_down.append(_subtree_root(leaves, lo + k, hi))
            hi = lo + k
        else:
            top_down.append(_subtree_root(leaves, lo, lo + k))
            lo, m = lo + k, m - k
    top_down.reverse()
    return top_down


def consistency_proof(leaves: Sequence[bytes], old_size: int, new_size: int | None = None) -> list[bytes]:
    """RFC 9162 2.1.4.1 ``PROOF(old_size, D[0:new_size])`` (empty when the sizes are equal or 0)."""
    n = len(leaves) if new_size is None else new_size
    if not 0 <= old_size <= n or n > len(leaves):
        raise ValueError(f"cannot prove size {old_size} against size {n}")
    if old_size in (0, n):
        return []
    out: list[bytes] = []
    lo, hi, m, complete = 0, n, old_size, True
    while True:
        if m == hi - lo:
            if not complete:
                out.append(_subtree_root(leaves, lo, hi))
            break
        k = _largest_power_of_two_below(hi - lo)
        if m <= k:
            out.append(_subtree_root(leaves, lo + k, hi))
            hi = lo + k
        else:
            out.append(_subtree_root(leaves, lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    out.reverse()
    return out


def _all_digests(*values: bytes) -> bool:
    """Every value is a 32-byte SHA-256 digest (a shorter or longer "hash" never verifies)."""
    return all(len(v) == 32 for v in values)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2: does ``proof`` show ``leaf`` (an event hash) at ``index`` in the tree ``root``?"""
    return verify_inclusion_hash(leaf_hash(leaf), index, size, proof, root)


def verify_inclusion_hash(
    leaf_digest: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Like :func:`verify_inclusion`, given the RFC 6962 leaf hash ``SHA-256(0x00 || leaf)``."""
    if not 0 <= index < size or not _all_digests(leaf_digest, root, *proof):
        return False
    fn, sn = index, size - 1
    r = leaf_digest
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: is the tree ``old_root`` of ``old_size`` a prefix of ``new_root``?

    RFC 9162 defines consistency proofs for ``0 < old_size``; a proof from the empty tree proves
    nothing and is refused (as transparency-dev/merkle does).
    """
    if old_size <= 0 or new_size < old_size or not _all_digests(*proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node of the path
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """The tree head from the perfect-subtree heads of a frontier (largest, leftmost first)."""
    if not frontier:
        return EMPTY_ROOT
    r = frontier[-1]
    for h in reversed(frontier[:-1]):
        r = _sha256(b"\x01" + h + r).digest()
    return r


def frontier_append(nodes: list[bytes], size: int, leaf: bytes) -> int:
    """Append ``leaf`` to the frontier ``nodes`` of a tree of ``size`` leaves, in place (one
    leaf hash, amortized one node hash); the new size. The one implementation of the frontier:
    :class:`MerkleFrontier` and the replay's streaming verifier both use it."""
    sha = _sha256
    nodes.append(sha(b"\x00" + leaf).digest())
    size += 1
    m = size
    while not m & 1:
        right = nodes.pop()
        nodes[-1] = sha(b"\x01" + nodes[-1] + right).digest()
        m >>= 1
    return size


class MerkleFrontier:
    """The compact right frontier of a growing RFC 6962 tree.

    ``nodes`` holds one perfect-subtree head per set bit of ``size``, largest first. Appending
    a leaf costs one leaf hash plus, amortized, one node hash; :meth:`root` costs
    ``popcount(size) - 1`` hashes. :meth:`to_hex` / :meth:`from_hex` persist it next to a
    checkpoint so the next checkpoint only reads the events appended since.
    """

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()):
        if size < 0 or len(nodes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} has {size.bit_count()} nodes, got {len(nodes)}")
        self.size = size
        self.nodes: list[bytes] = list(nodes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf (an event hash)."""
        self.size = frontier_append(self.nodes, self.size, leaf)

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        return root_from_frontier(self.nodes)

    def copy(self) -> MerkleFrontier:
        return MerkleFrontier(self.size, self.nodes)

    def to_hex(self) -> list[str]:
        return [n.hex() for n in self.nodes]

    @classmethod
    def from_hex(cls, size: int, nodes: Sequence[str]) -> MerkleFrontier:
        return cls(size, [bytes.fromhex(n) for n in nodes])
