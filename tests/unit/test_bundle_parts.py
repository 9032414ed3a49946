"""The bundle's ceremony and purchase checks (hallmark.bundle_parts) on their own: the witness
statement a verifier rebuilds is byte for byte what witnesses signed; the ledger balance check
refuses each way a payment or release can be off; the wire format documents the records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hallmark.bundle_parts import _balance_result, registered_before, witness_statement
from hallmark.canonical import to_rfc3339
from hallmark.ceremony.models import Ceremony, WitnessSignature
from hallmark.ceremony.provenance import ceremony_payload, provenance_record
from hallmark.market.proofs import SignedProof

DOC = (Path(__file__).resolve().parents[2] / "docs" / "wire-format.md").read_text(encoding="utf-8")
NOW = datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=UTC)


def _ceremony() -> Ceremony:
    return Ceremony(ceremony_id="cer-1", initiator="wit-a", tier="silver", type="release",
                    artifacts=("b", "a", "c"), blessing="Ünïcode & \"quotes\"", created_at=NOW,
                    deadline=NOW + timedelta(days=7, microseconds=7),
                    witnesses=(WitnessSignature(witness_id="wit-a", key_fingerprint="f" * 64, signature="c2ln",
                                                signed_at=NOW),))


def test_the_rebuilt_witness_statement_is_what_witnesses_sign() -> None:
    c = _ceremony()
    record = provenance_record(c, to_rfc3339(NOW, "auto"))
    assert witness_statement(record, to_rfc3339(c.deadline, "auto")) == ceremony_payload(c)
    assert witness_statement(record, to_rfc3339(c.deadline + timedelta(seconds=1), "auto")) != ceremony_payload(c)


def test_the_documented_records_are_the_records() -> None:
    section = DOC.split("### 8.1", 1)[1].split("### 8.3", 1)[0]
    for member in provenance_record(_ceremony(), "2026-12-03T10:00:00Z"):
        assert f'"{member}"' in section, member
    for member in ("orderId", "manifestSignatureId", "ledgerProofId", "ciphertextDigest", "expiresAt", "txId",
                   "postings", "balancesAfterDigest", "proofId"):
        assert f'"{member}"' in section, member


ORDER = {"priceMinor": 1900, "feeBps": 500, "currency": "EUR"}


def _posted(postings: list[tuple[str, int]], tx: str = "ord-1:release") -> dict[str, Any]:
    return {"chain": "market", "seq": 3, "type": "LedgerPosted", "subject": tx,
            "data": {"postings": [{"account": a, "amountMinor": n, "currency": "EUR"} for a, n in postings]}}


def _capture(postings: list[tuple[str, int]]) -> SignedProof:
    return SignedProof(kind="ledger", proof={"postings": [{"account": a, "amountMinor": n, "currency": "EUR"}
                                                          for a, n in postings]},
                       key_id="k", signature="", proof_id="ledger-x")


GOOD_CAPTURE = [("wallet:b:EUR", -1900), ("escrow:EUR", 1900)]
GOOD_RELEASE = [("escrow:EUR", -1900), ("wallet:s:EUR", 1805), ("platform:EUR", 95)]


@pytest.mark.parametrize(("capture", "release", "reason"), [
    (GOOD_CAPTURE, GOOD_RELEASE, None),
    ([("wallet:b:EUR", -1900), ("escrow:EUR", 1899)], GOOD_RELEASE, "payment postings sum to -1"),
    ([("wallet:b:EUR", -1000), ("escrow:EUR", 1000)], GOOD_RELEASE, "does not move exactly 1900"),
    (GOOD_CAPTURE, [("escrow:EUR", -1900), ("wallet:s:EUR", 1900)], "does not pay 1805 to the seller and 95 fee"),
    (GOOD_CAPTURE, [("other:EUR", -1900), ("wallet:s:EUR", 1805), ("platform:EUR", 95)], "out of escrow"),
    (GOOD_CAPTURE, [("escrow:EUR", -1900), ("wallet:s:EUR", 1805)], "release postings sum to -95"),
])
def test_the_balance_check(capture: list[tuple[str, int]], release: list[tuple[str, int]], reason: str | None) -> None:
    ok, detail = _balance_result(ORDER, _capture(capture), "ord-1", [_posted(release)])
    assert ok is (reason is None), detail
    if reason:
        assert reason in detail
    assert not _balance_result(ORDER, _capture(capture), "ord-1", [])[0]  # no proved release: refused


def test_registered_before() -> None:
    def ev(seq: int, kind: str, fp: str = "k1") -> dict[str, Any]:
        return {"chain": "ceremony", "seq": seq, "type": kind, "subject": "w", "data": {"keyFingerprint": fp}}

    added, removed = frozenset({"WitnessRegistered"}), frozenset({"WitnessRemoved"})
    assert registered_before([ev(1, "WitnessRegistered")], "ceremony", "w", "k1", 5, added, removed) is None
    assert "removed" in str(registered_before([ev(1, "WitnessRegistered"), ev(2, "WitnessRemoved")], "ceremony", "w",
                                              "k1", 5, added, removed))
    assert "no proved audit event" in str(registered_before([ev(6, "WitnessRegistered")], "ceremony", "w", "k1", 5,
                                                            added, removed))
    assert "no proved audit event" in str(registered_before([ev(1, "WitnessRegistered", "k2")], "ceremony", "w",
                                                            "k1", 5, added, removed))
