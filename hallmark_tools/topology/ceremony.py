"""Ceremonies (DESIGN.md flow 3): witnesses sign, a superadmin blesses gold, the provenance
record is KMS-signed (DSSE), tiers are awarded (deployments: ``topology.deployment``)."""

from __future__ import annotations

from hallmark_tools.topology.model import AUDIT_SEND, BUS_PUT, Access, Function, Part, Route, StateMachine, rw

STATE = rw("table", "state")
STATE_READ = Access("table", "state", ("read",))
PROOF_PUBLIC_KEY = Access("key", "proof", ("read",))
CALLBACK = Access("state_machine", "ceremony", ("callback",))


def _task(name: str, description: str, *access: Access) -> Function:
    return Function(name=name, description=description, state_machine_task=True, access=(STATE, AUDIT_SEND, *access))


PART = Part(
    functions=(
        Function(
            name="ceremony_api",
            description="Ceremonies: open (starts the execution), witness signatures, gold blessing; witness registry.",
            routes=(
                Route("POST", "/ceremonies"),
                Route("GET", "/ceremonies/{ceremonyId}"),
                Route("POST", "/ceremonies/{ceremonyId}/witnesses"),
                Route("POST", "/ceremonies/{ceremonyId}/blessing", roles=("superadmin",)),
                Route("POST", "/witnesses", roles=("superadmin",)),
                Route("GET", "/witnesses/{witnessId}"),
            ),
            # BUS_PUT: registering a witness announces it on the bus (a missing grant the local
            # cloud's per-function environment found: issue 19, item 8)
            access=(STATE, AUDIT_SEND, BUS_PUT, Access("state_machine", "ceremony", ("start", "callback"))),
        ),
        _task("ceremony_await", "Ceremony: keeps the execution's task token while witnesses sign.", CALLBACK),
        _task("ceremony_lapse", "Ceremony: the deadline passed; an incomplete ceremony ends Lapsed."),
        _task("ceremony_sign", "Ceremony: signs the provenance record (DSSE, proof KMS key) and stores it.",
              Access("key", "proof", ("sign",))),
        _task("ceremony_award", "Ceremony: awards the tier to every artifact in one conditional transaction.",
              BUS_PUT),
        Function(
            name="provenance_api",
            description="Provenance records with their DSSE envelopes, and artifacts' current tiers.",
            routes=(
                Route("GET", "/provenance/{signatureId}"),
                Route("GET", "/artifacts/{artifactId}"),
            ),
            access=(STATE_READ, PROOF_PUBLIC_KEY),
        ),
    ),
    state_machines=(
        StateMachine(
            name="ceremony",
            asl="ceremony.asl.json",
            substitutions={
                "CeremonyAwaitFunctionArn": ("function", "ceremony_await"),
                "CeremonyLapseFunctionArn": ("function", "ceremony_lapse"),
                "CeremonySignFunctionArn": ("function", "ceremony_sign"),
                "CeremonyAwardFunctionArn": ("function", "ceremony_award"),
            },
        ),
    ),
)
