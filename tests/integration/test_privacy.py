"""Issue 22 item 3 on the local cloud: a silver package witnessed by three witnesses and bought
by a buyer (the fixture of test_bundle_provenance). No chain names the buyer or a witness in the
clear, every chain replays, and the buyer's bundle still verifies (its pseudonym table pairs the
signed records with the events)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hallmark.audit.replay import verify_export
from hallmark.bundle import verify_bundle
from hallmark.privacy.vault import PSEUDONYM_RE
from hallmark_tools.driver import Driver
from hallmark_tools.localcloud.cloud import LocalCloud
from tests.integration.test_bundle_provenance import SUFFIX, bought, keys  # noqa: F401 (fixtures)

CHAINS = ("release", "governance", "ceremony", "market")
PEOPLE = (f"bundle-buyer-{SUFFIX}", *(f"bw{i}-{SUFFIX}" for i in range(3)))


def test_no_chain_names_the_buyer_or_a_witness(shared_cloud: LocalCloud, driver: Driver,
                                               bought: dict[str, Any],  # noqa: F811
                                               keys: tuple[Path, dict[str, bytes]]) -> None:  # noqa: F811
    from hallmark.adapters.runtime import audit_log

    pem = keys[1]["audit"]
    for chain in CHAINS:
        events, ckpts = audit_log().export(chain)
        text = "\n".join(events + ckpts)
        assert not [p for p in PEOPLE if p in text], chain
        assert verify_export(events, ckpts, pem).ok, chain
    bundle = bought["bundle"]
    names = bundle["pseudonyms"]
    assert set(PEOPLE) <= set(names.values()) and all(PSEUDONYM_RE.fullmatch(p) for p in names)
    assert [c for c in verify_bundle(bundle, keys[1], bought["body"], ciphertext=bought["ciphertext"]) if not c.ok] == []
