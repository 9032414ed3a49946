"""The hash-chained, checkpoint-signed audit log (wire format: ``docs/wire-format.md``).

- ``events``: the ``AuditEvent`` wire model, ``event_hash`` and the event-type vocabulary.
- ``merkle``: RFC 6962/9162 tree heads, inclusion and consistency proofs.
- ``checkpoints``: signed checkpoints and the policy deciding when one is due.
- ``store``: the ``AuditStore`` port and an in-memory implementation.
- ``log``: ``AuditLog`` (append, checkpoint, export, proofs).
- ``replay``: ``verify_export``, the independent verifier of an export.
- ``proofs``: offline checks of inclusion / consistency proof documents, fork detection.
- ``notes``: checkpoints as C2SP tlog-checkpoint signed notes.
"""
