"""Governance: the approver registry, threshold policy and signed multisig decisions on
upgrades (approval, emergency ratification) and settlement plans."""

from hallmark.governance.messages import (
    approval_message,
    message_for,
    new_nonce,
    settlement_approval_message,
    sign_approval,
    subject_message,
)
from hallmark.governance.models import (
    ApprovalForm,
    ApprovalRecord,
    ApprovalSubject,
    Approver,
    Decision,
    Impact,
    Outcome,
    SettlementApproval,
    SubjectKind,
    SubjectStatus,
    ThresholdPolicy,
    Upgrade,
    subject_from_dict,
)
from hallmark.governance.ports import (
    ApprovalRepository,
    ApproverRepository,
    NonceClaim,
)
from hallmark.governance.registry import ApproverRegistry, RegistryChange
from hallmark.governance.service import ApprovalResult, GovernanceService, Opened

__all__ = [
    "ApprovalForm",
    "ApprovalRecord",
    "ApprovalRepository",
    "ApprovalResult",
    "ApprovalSubject",
    "Approver",
    "ApproverRegistry",
    "ApproverRepository",
    "Decision",
    "GovernanceService",
    "Impact",
    "NonceClaim",
    "Opened",
    "Outcome",
    "RegistryChange",
    "SettlementApproval",
    "SubjectKind",
    "SubjectStatus",
    "ThresholdPolicy",
    "Upgrade",
    "approval_message",
    "message_for",
    "new_nonce",
    "settlement_approval_message",
    "sign_approval",
    "subject_from_dict",
    "subject_message",
]
