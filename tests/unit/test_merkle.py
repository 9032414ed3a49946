"""RFC 6962 / RFC 9162 Merkle trees against an independent naive reference (written here
straight from the RFC's recursive definitions), published vectors, and hypothesis."""

from __future__ import annotations

import hashlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hallmark.audit.merkle import (
    EMPTY_ROOT,
    MerkleFrontier,
    consistency_proof,
    inclusion_proof,
    merkle_root,
    verify_consistency,
    verify_inclusion,
)


# ---- the reference: RFC 9162 section 2.1, literally (recursion over slices) -------------------
def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return _h(b"")
    if len(d) == 1:
        return _h(b"\x00" + d[0])
    k = _k(len(d))
    return _h(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


def leaves(n: int, salt: int = 0) -> list[bytes]:
    return [_h(f"{salt}:{i}".encode()) for i in range(n)]


# ---- tests --------------------------------------------------------------------------------------
def test_published_vectors() -> None:
    # The RFC 6962 test tree used by certificate-transparency (leaves of arbitrary length).
    data = [
        bytes.fromhex(x)
        for x in (
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        )
    ]
    roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    for n in range(1, 9):
        assert merkle_root(data[:n]).hex() == roots[n - 1]
        assert ref_mth(data[:n]).hex() == roots[n - 1]
    assert merkle_root([]) == EMPTY_ROOT == _h(b"")


def test_roots_match_reference_small_sizes() -> None:
    d = leaves(130)
    frontier = MerkleFrontier()
    assert frontier.root() == EMPTY_ROOT
    for n in range(0, 131):
        assert merkle_root(d[:n]) == ref_mth(d[:n]), n
        if n:
            frontier.append(d[n - 1])
        assert frontier.root() == ref_mth(d[:n]), n
        assert len(frontier.nodes) == n.bit_count()


def test_inclusion_proofs_exhaustive_small() -> None:
    d = leaves(40)
    for n in range(1, 41):
        root = ref_mth(d[:n])
        for m in range(n):
            proof = inclusion_proof(d, m, n)
            assert proof == ref_path(m, d[:n]), (m, n)
            assert verify_inclusion(d[m], m, n, proof, root)
            assert not verify_inclusion(d[m], m, n, proof, _h(b"other root"))
            if n > 1:
                assert not verify_inclusion(d[(m + 1) % n], m, n, proof, root)  # another leaf
                assert not verify_inclusion(d[m], m, n, proof[:-1], root)  # shortened path
                assert not verify_inclusion(d[m], m, n, [*proof, root], root)  # lengthened path
                bad = [bytes(32), *proof[1:]] if proof else proof
                assert not verify_inclusion(d[m], m, n, bad, root)
    with pytest.raises(ValueError):
        inclusion_proof(d, 5, 5)
    assert not verify_inclusion(d[0], 3, 3, [], ref_mth(d[:3]))


def test_consistency_proofs_exhaustive_small() -> None:
    d = leaves(40)
    for n in range(1, 41):
        new_root = ref_mth(d[:n])
        for m in range(0, n + 1):
            proof = consistency_proof(d, m, n)
            old_root = ref_mth(d[:m])
            if 0 < m < n:
                assert proof == ref_proof(m, d[:n]), (m, n)
            else:
                assert proof == []
            # from the empty tree a proof proves nothing: refused (RFC 9162 2.1.4 needs 0 < m)
            assert verify_consistency(m, n, old_root, new_root, proof) is (m > 0), (m, n)
            if 0 < m < n:
                assert not verify_consistency(m, n, _h(b"x"), new_root, proof)
                assert not verify_consistency(m, n, old_root, _h(b"x"), proof)
                assert not verify_consistency(m, n, old_root, new_root, proof[:-1])
                assert not verify_consistency(m, n, old_root, new_root, [])
                assert not verify_consistency(m, n, old_root, new_root, [bytes(32), *proof[1:]])
                # a tree that rewrote an old leaf is not consistent with the old root
                forged = list(d[:n])
                forged[m - 1] = _h(b"rewritten")
                assert not verify_consistency(
                    m, n, old_root, ref_mth(forged), consistency_proof(forged, m, n)
                )
    assert not verify_consistency(5, 4, ref_mth(d[:5]), ref_mth(d[:4]), [])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=1, max_value=3000), data=st.data())
def test_properties_random_sizes(n: int, data: st.DataObject) -> None:
    d = leaves(n, salt=n)
    root = merkle_root(d)
    frontier = MerkleFrontier()
    frontier.extend(d)
    assert frontier.root() == root
    restored = MerkleFrontier.from_hex(frontier.size, frontier.to_hex())
    assert restored.root() == root
    m = data.draw(st.integers(min_value=0, max_value=n - 1))
    assert verify_inclusion(d[m], m, n, inclusion_proof(d, m), root)
    old = data.draw(st.integers(min_value=1, max_value=n))  # 0 < old (RFC 9162 2.1.4)
    assert verify_consistency(old, n, merkle_root(d[:old]), root, consistency_proof(d, old, n))
    if n <= 600:
        assert root == ref_mth(d)


def test_frontier_continues_from_a_checkpoint() -> None:
    d = leaves(1000)
    f = MerkleFrontier()
    f.extend(d[:613])
    saved = (f.size, f.to_hex())
    g = MerkleFrontier.from_hex(*saved)
    g.extend(d[613:])
    assert g.root() == merkle_root(d)
    with pytest.raises(ValueError):
        MerkleFrontier(5, [bytes(32)])  # size 5 needs 2 nodes


@pytest.mark.slow
def test_one_million_leaves_is_fast() -> None:
    d = leaves(1_000_000)
    t = time.perf_counter()
    root = merkle_root(d)
    elapsed = time.perf_counter() - t
    f = MerkleFrontier()
    f.extend(d)
    assert f.root() == root
    idx = 765_432
    assert verify_inclusion(d[idx], idx, len(d), inclusion_proof(d, idx), root)
    assert elapsed < 60, f"merkle_root over 1M leaves took {elapsed:.1f}s"
