"""Hallmark's RFC 9162 proofs against the published test vectors and an independent verifier.

The vectors (``tests/data/rfc9162_vectors``, from transparency-dev/merkle; see its README) are
checked by both ``hallmark.audit.merkle`` and the verifier below, written here from the
recursive definitions of RFC 9162 section 2.1 (``PATH`` in 2.1.3.1, ``SUBPROOF`` in 2.1.4.1)
rather than from the iterative algorithms Hallmark implements, so one cannot inherit the
other's mistakes. Proofs Hallmark generates must also match the vectors byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from hallmark.audit.merkle import (
    consistency_proof,
    inclusion_proof,
    merkle_root,
    verify_consistency,
    verify_inclusion,
    verify_inclusion_hash,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "rfc9162_vectors"
INCLUSION: list[dict[str, Any]] = json.loads((DATA / "inclusion.json").read_text())
CONSISTENCY: list[dict[str, Any]] = json.loads((DATA / "consistency.json").read_text())
REFERENCE = json.loads((DATA / "reference_tree.json").read_text())
LEAVES = [bytes.fromhex(x) for x in REFERENCE["leafInputsHex"]]


# -- an independent verifier, from the RFC's recursive definitions ---------------------------

class Reject(Exception):
    pass


def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _node(a: bytes, b: bytes) -> bytes:
    return _h(b"\x01" + a + b)


def _split(n: int) -> int:
    """k: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 2.1.1, recursively."""
    if not leaves:
        return _h(b"")
    if len(leaves) == 1:
        return _h(b"\x00" + leaves[0])
    k = _split(len(leaves))
    return _node(_mth(leaves[:k]), _mth(leaves[k:]))


def _root_from_path(m: int, n: int, leaf_hash: bytes, path: list[bytes]) -> bytes:
    """Invert PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])  (m < k)
                           = PATH(m - k, D[k:n]) : MTH(D[0:k])  (m >= k); the last node is the top."""
    if n == 1:
        if path:
            raise Reject("proof longer than the tree is deep")
        return leaf_hash
    if not path:
        raise Reject("proof too short")
    k = _split(n)
    *rest, top = path
    if m < k:
        return _node(_root_from_path(m, k, leaf_hash, rest), top)
    return _node(top, _root_from_path(m - k, n - k, leaf_hash, rest))


def _digests(*values: bytes) -> bool:
    return all(len(v) == hashlib.sha256().digest_size for v in values)


def independent_inclusion(index: int, size: int, leaf_hash: bytes, path: list[bytes], root: bytes) -> bool:
    if not 0 <= index < size or not _digests(leaf_hash, root, *path):
        return False
    try:
        return _root_from_path(index, size, leaf_hash, path) == root
    except Reject:
        return False


def _subproof(m: int, n: int, b: bool, path: list[bytes], old_root: bytes) -> tuple[bytes, bytes]:
    """Invert SUBPROOF(m, D[n], b): returns (hash of the old part, hash of this subtree)."""
    if m == n:
        if b:  # this subtree is the old tree itself, whose root the verifier already has
            if path:
                raise Reject("extra nodes")
            return old_root, old_root
        if len(path) != 1:
            raise Reject("expected exactly the subtree's head")
        return path[0], path[0]
    if not path:
        raise Reject("proof too short")
    k = _split(n)
    *rest, top = path
    if m <= k:
        old, new = _subproof(m, k, b, rest, old_root)
        return old, _node(new, top)
    old, new = _subproof(m - k, n - k, False, rest, old_root)
    return _node(top, old), _node(top, new)


def independent_consistency(m: int, n: int, old_root: bytes, new_root: bytes, path: list[bytes]) -> bool:
    if m <= 0 or n < m or not _digests(*path):  # 2.1.4.1 defines PROOF(m, D[n]) for 0 < m <= n
        return False
    if m == n:
        return not path and old_root == new_root
    try:
        old, new = _subproof(m, n, True, path, old_root)
    except Reject:
        return False
    return old == old_root and new == new_root


def _b64(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(v) for v in values or []]


# -- the vectors ---------------------------------------------------------------------------

def test_reference_tree_heads() -> None:
    for size, want in enumerate(REFERENCE["rootHashesHex"]):
        assert merkle_root(LEAVES[:size]).hex() == want, size
        assert _mth(LEAVES[:size]).hex() == want, size


@pytest.mark.parametrize("vec", INCLUSION, ids=[v["file"].removeprefix("testdata/inclusion/") for v in INCLUSION])
def test_inclusion_vector(vec: dict[str, Any]) -> None:
    args = (vec["leafIdx"], vec["treeSize"], base64.b64decode(vec["leafHash"] or ""), _b64(vec["proof"]),
            base64.b64decode(vec["root"] or ""))
    want = not vec["wantErr"]
    assert independent_inclusion(*args) is want
    index, size, leaf_digest, path, root = args
    assert verify_inclusion_hash(leaf_digest, index, size, path, root) is want


@pytest.mark.parametrize("vec", CONSISTENCY,
                         ids=[v["file"].removeprefix("testdata/consistency/") for v in CONSISTENCY])
def test_consistency_vector(vec: dict[str, Any]) -> None:
    args = (vec["size1"], vec["size2"], base64.b64decode(vec["root1"] or ""), base64.b64decode(vec["root2"] or ""),
            _b64(vec["proof"]))
    want = not vec["wantErr"]
    assert independent_consistency(*args) is want
    assert verify_consistency(*args) is want


def test_generated_proofs_match_the_happy_path_vectors() -> None:
    happy_incl = [v for v in INCLUSION if not v["wantErr"] and v["treeSize"] <= len(LEAVES)]
    happy_cons = [v for v in CONSISTENCY if not v["wantErr"] and v["size2"] <= len(LEAVES)]
    assert happy_incl and happy_cons
    for v in happy_incl:
        assert inclusion_proof(LEAVES, v["leafIdx"], v["treeSize"]) == _b64(v["proof"]), v["file"]
    for v in happy_cons:
        assert consistency_proof(LEAVES, v["size1"], v["size2"]) == _b64(v["proof"]), v["file"]


def test_every_proof_up_to_40_leaves_agrees_with_the_independent_verifier() -> None:
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(40)]
    roots = [merkle_root(leaves[:n]) for n in range(41)]
    for n in range(1, 41):
        assert roots[n] == _mth(leaves[:n])
        for i in range(n):
            path = inclusion_proof(leaves, i, n)
            assert independent_inclusion(i, n, _h(b"\x00" + leaves[i]), path, roots[n])
            assert verify_inclusion(leaves[i], i, n, path, roots[n])
        for m in range(1, n + 1):
            path = consistency_proof(leaves, m, n)
            assert independent_consistency(m, n, roots[m], roots[n], path), (m, n)
            assert verify_consistency(m, n, roots[m], roots[n], path)
            if path:  # any single flipped node is refused by both
                bad = [*path[:-1], bytes([path[-1][0] ^ 1]) + path[-1][1:]]
                assert not independent_consistency(m, n, roots[m], roots[n], bad)
                assert not verify_consistency(m, n, roots[m], roots[n], bad)
