"""Checkpoints as C2SP signed notes (c2sp.org/tlog-checkpoint over c2sp.org/signed-note).

Each JSON checkpoint is also published as a checkpoint note, signed by the same audit KMS key
when the checkpoint is made::

    <origin>\\n
    <tree size, decimal>\\n
    <base64 of the 32-byte RFC 6962 root>\\n
    \\n
    \u2014 <origin> <base64(key ID (4 bytes) || DER ECDSA signature)>\\n

- origin: ``<prefix>/<chain>``; the prefix is ``AUDIT_NOTE_ORIGIN`` (default
  ``hallmark.local/audit``), which a deployment sets to a name it controls. The key name in
  the signature line is the origin (tlog-checkpoint: it SHOULD match).
- no extension lines: the note carries exactly what the JSON checkpoint's ``seq`` and
  ``merkleRoot`` say (the rest is in the JSON checkpoint, whose own signature covers it).
- signature type 0x02 (signed-note: "ECDSA signatures as implemented by
  github.com/transparency-dev/witness", P-256 recommended): the signature is the ASN.1 DER
  ECDSA P-256 / SHA-256 signature over the note text (the body including its final newline,
  not the blank line), exactly what KMS ``ECDSA_SHA_256`` returns; the key ID is, as that
  section says, the first four bytes of SHA-256 of the DER SubjectPublicKeyInfo (not the
  ``name || 0x0A || type || key`` hash used for Ed25519).
- verifier key (Go ``note`` vkey text): ``<origin>+<hex key ID>+<base64(0x02 || SPKI DER)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from hallmark.ports import Signer
from hallmark.signing import load_public_key, verify_signature

__all__ = [
    "DEFAULT_ORIGIN_PREFIX",
    "SIG_TYPE_ECDSA",
    "CheckpointNote",
    "checkpoint_note_text",
    "note_key_id",
    "note_origin",
    "open_checkpoint_note",
    "sign_checkpoint_note",
    "verifier_key",
]

DEFAULT_ORIGIN_PREFIX: Final = "hallmark.local/audit"
SIG_TYPE_ECDSA: Final = 0x02
EM_DASH: Final = "\u2014"
_NAME = re.compile(r"^[^\s+]+$")
_MAX_NOTE = 16 * 1024


def note_origin(chain: str, prefix: str = DEFAULT_ORIGIN_PREFIX) -> str:
    origin = f"{prefix.rstrip('/')}/{chain}"
    if not _NAME.match(origin):
        raise ValueError(f"origin {origin!r} must be non-empty with no spaces or '+'")
    return origin


def checkpoint_note_text(origin: str, size: int, root: bytes) -> str:
    """The tlog-checkpoint note text (three lines, each ending in a newline)."""
    if len(root) != 32 or size < 0:
        raise ValueError("a checkpoint note needs a size >= 0 and a 32-byte root")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def _spki_der(pem: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return load_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def note_key_id(pem: bytes) -> bytes:
    """The 4-byte key ID of signature type 0x02: SHA-256(DER SubjectPublicKeyInfo)[:4]."""
    return hashlib.sha256(_spki_der(pem)).digest()[:4]


def verifier_key(name: str, pem: bytes) -> str:
    """``<name>+<hex key ID>+<base64(0x02 || SPKI DER)>``."""
    return f"{name}+{note_key_id(pem).hex()}+{base64.b64encode(bytes([SIG_TYPE_ECDSA]) + _spki_der(pem)).decode()}"


def sign_checkpoint_note(checkpoint: Mapping[str, Any], origin: str, signer: Signer) -> str:
    """The signed note of a JSON checkpoint (its ``seq`` and ``merkleRoot``)."""
    text = checkpoint_note_text(origin, int(checkpoint["seq"]), bytes.fromhex(str(checkpoint["merkleRoot"])))
    sig = signer.sign(text.encode("utf-8"))
    blob = note_key_id(signer.public_key_pem()) + sig
    return f"{text}\n{EM_DASH} {origin} {base64.b64encode(blob).decode('ascii')}\n"


@dataclass(frozen=True)
class CheckpointNote:
    origin: str
    size: int
    root: bytes
    text: str


def open_checkpoint_note(note: str, origin: str, pem: bytes) -> CheckpointNote:
    """Parse and verify a checkpoint note from ``origin`` with the audit key; ``ValueError`` if not.

    Signed-note rules: the text ends at the last blank line; lines from unknown keys (another
    name or key ID) are ignored; a line from the known key must verify; at least one must.
    """
    if len(note) > _MAX_NOTE or any(ord(c) < 0x20 and c != "\n" for c in note):
        raise ValueError("not a signed note (too long, or control characters)")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise ValueError("not a signed note (no blank line before the signatures)")
    text, sig_lines = note[: cut + 1], note[cut + 2 :].splitlines()
    key_id, verified = note_key_id(pem), False
    if not sig_lines:
        raise ValueError("a signed note needs at least one signature line")
    for line in sig_lines:
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != EM_DASH or not _NAME.match(parts[1]):
            raise ValueError(f"malformed signature line {line!r}")
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"signature line {line!r} is not base64") from None
        if parts[1] != origin or blob[:4] != key_id:
            continue  # another key (a witness cosignature, a rotated key): ignored
        if not verify_signature(pem, text.encode("utf-8"), blob[4:]):
            raise ValueError("the signature of the known key does not verify")
        verified = True
    if not verified:
        raise ValueError(f"no signature by {origin} with key ID {key_id.hex()}")
    lines = text.split("\n")[:-1]
    if len(lines) < 3 or lines[0] != origin:
        raise ValueError("checkpoint text must be origin, size and root lines")
    if not re.fullmatch(r"0|[1-9][0-9]*", lines[1]):
        raise ValueError(f"bad tree size {lines[1]!r}")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("bad root hash line") from None
    if len(root) != 32:
        raise ValueError("the root hash must be 32 bytes")
    return CheckpointNote(lines[0], int(lines[1]), root, text)
