"""Marketplace, delivery and finance (DESIGN.md flow 4): listings, checkout on a double-entry
ledger with signed ledger proofs, the ArtifactPublisher (encrypted delivery, signed delivery
proof), wallets, and settlement plans paid out after multisig approval."""

from __future__ import annotations

from hallmark_tools.topology.model import (
    AUDIT_SEND,
    Access,
    Bucket,
    Function,
    Key,
    Part,
    Queue,
    QueueTrigger,
    Route,
    Table,
    rw,
)

PROOF_SIGN = Access("key", "proof", ("sign",))
LEDGER = rw("table", "ledger")
STATE = rw("table", "state")

PART = Part(
    functions=(
        Function(
            name="listings_api",
            description="Marketplace: the listings the release pipeline published (price, seller, tier, manifest).",
            routes=(
                Route("GET", "/listings"),
                Route("GET", "/listings/{listingId}"),
            ),
            access=(Access("table", "state", ("read",)),),
        ),
        Function(
            name="orders_api",
            description="Checkout (idempotent, balanced ledger posting, signed ledger proof) and the buyer's order.",
            routes=(
                Route("POST", "/listings/{listingId}/checkout"),
                Route("GET", "/orders"),
                Route("GET", "/orders/{orderId}"),
                Route("GET", "/orders/{orderId}/content"),
            ),
            access=(
                STATE, LEDGER, rw("table", "idempotency"), PROOF_SIGN,
                Access("queue", "deliveries", ("send",)),
                Access("bucket", "deliveries", ("read",)),
                Access("key", "delivery", ("read", "decrypt")),
                Access("bucket", "manifests", ("read",)),
                AUDIT_SEND,
            ),
            env=(("MARKET_FEE_BPS", "500"), ("DELIVERY_URL_TTL_SECONDS", "300")),
        ),
        Function(
            name="market_publisher",
            description="ArtifactPublisher: encrypts the artifact for the order (KMS, key commitment), stores it, "
                        "releases escrow and signs the delivery proof.",
            timeout=60,
            memory=1024,
            queue=QueueTrigger("deliveries", batch_size=5),
            access=(
                STATE, LEDGER, PROOF_SIGN,
                Access("key", "delivery", ("encrypt",)),
                Access("bucket", "packages", ("read",)),
                Access("bucket", "deliveries", ("write",)),
                AUDIT_SEND,
            ),
            env=(("MARKET_FEE_BPS", "500"), ("DELIVERY_TTL_SECONDS", "900")),
        ),
        Function(
            name="market_wallets",
            description="Wallets: balances, and top-ups from the funding account (superadmin).",
            routes=(
                Route("POST", "/wallets/deposit", roles=("superadmin",)),
                Route("GET", "/wallets/me"),
            ),
            access=(STATE, LEDGER, PROOF_SIGN, AUDIT_SEND),
        ),
        Function(
            name="market_settlements",
            description="Settlement plans (multi-party splits in basis points), their multisig approvals, payouts.",
            routes=(
                Route("POST", "/settlements", roles=("submitter", "superadmin")),
                Route("GET", "/settlements", roles=("superadmin", "auditor", "approver")),
                Route("GET", "/settlements/{settlementId}", roles=("submitter", "superadmin", "auditor", "approver")),
                Route("POST", "/settlements/{settlementId}/approvals", roles=("approver",)),
                Route("POST", "/settlements/{settlementId}/payouts", roles=("superadmin",)),
            ),
            access=(STATE, LEDGER, PROOF_SIGN, AUDIT_SEND),
        ),
    ),
    queues=(Queue("deliveries", visibility_timeout=360, max_receive_count=5),),
    tables=(Table("ledger", partition_key="pk", sort_key=None),),
    buckets=(Bucket("deliveries"),),
    keys=(Key("delivery", usage="ENCRYPT_DECRYPT"),),
)
