"""``GET /upgrades`` and ``GET /settlements``: the approval subjects of one kind, optionally of
one status (``?status=Pending`` is an approver's inbox), oldest first, a page at a time
(:mod:`hallmark.pagination`). Subjects live on the ``state`` table as documents
(``<kind>#<id>``), which is how :class:`hallmark.docstore.DocStore` reads them."""

from __future__ import annotations

from hallmark.docstore import DocStore
from hallmark.governance.models import ApprovalSubject, SubjectKind, SubjectStatus, subject_from_dict
from hallmark.pagination import paginate, scan_kind


def list_subjects(docs: DocStore, kind: SubjectKind, *, status: SubjectStatus | None = None, limit: int = 50,
                  next_token: str | None = None) -> tuple[list[ApprovalSubject], str | None]:
    subjects = [s for s in (subject_from_dict(d) for d in scan_kind(docs, kind))
                if status is None or s.status == status]
    return paginate(subjects, key=lambda s: (s.created_at.isoformat(), s.subject_id), limit=limit,
                    next_token=next_token, route=f"GET /{kind}s", filters={"status": status})
