"""Governance (DESIGN.md flow 2): 3-of-5 multisig approvals, emergency apply, ratification,
rollback; the approver registry."""

from __future__ import annotations

from hallmark_tools.topology.model import AUDIT_SEND, BUS_PUT, Access, Function, Part, Route, rw

GOVERNANCE_STATE = (rw("table", "state"), AUDIT_SEND)
CALLBACK = Access("state_machine", "release", ("callback",))


def _task(name: str, description: str, *extra: Access) -> Function:
    return Function(name=name, description=description, state_machine_task=True, access=(*GOVERNANCE_STATE, *extra))


PART = Part(
    functions=(
        _task("governance_request", "Governance: opens the upgrade, keeps the task token, notifies approvers.",
              BUS_PUT),
        _task("governance_emergency", "Governance: applies an emergency upgrade and opens its ratification window.",
              Access("bucket", "manifests", ("read",))),
        _task("governance_check", "Governance: after the window, was the emergency upgrade ratified?"),
        _task("governance_rollback", "Governance: restores the previous published version (not ratified).",
              Access("bucket", "manifests", ("read", "write")), BUS_PUT),
        _task("governance_expire", "Governance: the approval window closed: the upgrade expires."),
        Function(
            name="upgrades_api",
            description="Approvers submit signed approvals and ratifications; resumes the waiting execution.",
            routes=(
                Route("GET", "/upgrades", roles=("approver", "superadmin", "auditor")),
                Route("GET", "/upgrades/{upgradeId}", roles=("approver", "superadmin", "auditor")),
                Route("POST", "/upgrades/{upgradeId}/approvals", roles=("approver",)),
                Route("POST", "/upgrades/{upgradeId}/ratifications", roles=("approver",)),
            ),
            access=(*GOVERNANCE_STATE, CALLBACK),
        ),
        Function(
            name="privacy_api",
            description="Erasure of a person (3-of-5 approved like a settlement): scrubs the state table, destroys the key material.",
            routes=(
                Route("POST", "/privacy/erasure", roles=("superadmin",)),
                Route("GET", "/privacy/erasure/{erasureId}", roles=("superadmin", "approver", "auditor")),
                Route("POST", "/privacy/erasure/{erasureId}/approvals", roles=("approver",)),
                Route("POST", "/privacy/erasure/{erasureId}/execute", roles=("superadmin",)),
            ),
            access=(*GOVERNANCE_STATE, Access("key", "privacy", ("encrypt", "decrypt"))),
        ),
        Function(
            name="approvers_api",
            description="The approver registry (public keys), managed by superadmin.",
            routes=(
                Route("GET", "/approvers", roles=("approver", "superadmin", "auditor")),
                Route("POST", "/approvers", roles=("superadmin",)),
                Route("PUT", "/approvers/{approverId}/key", roles=("superadmin",)),
                Route("DELETE", "/approvers/{approverId}", roles=("superadmin",)),
            ),
            access=GOVERNANCE_STATE,
        ),
    ),
)
