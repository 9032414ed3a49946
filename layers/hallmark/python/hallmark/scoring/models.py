"""The EVI model's provenance: a model is scored with only if it was released through the release
pipeline and its digest follows from the signed manifest.

The model is released as a package (``.tar.gz``/``.zip``) holding ``evi.onnx`` and a
``hallmark.toml`` with a ``[model]`` table (``file``, ``sha256``). The package may also carry
variants of the same model, each declared in its own sub-table with its file and sha256:

    [model.gpu]          the float16 model the Batch job runs on the CUDA provider (fp16 corpus on
                         the GPU); without it the GPU job runs evi.onnx
    [model.candidates]   the int8 candidate model for the optional int8 corpus mode on the CPU

Every file's digest then follows from the signed manifest (the manifest signs the package, the
package declares the digests). ``ModelRegistry.register`` (``POST /scoring/model {packageId}``):

1. the package is ``Published`` and its manifest is in the manifest repository;
2. the DSSE envelope verifies with the manifest key's public half, and is the one the release
   recorded (``manifestSignatureId``);
3. the released artifact's sha256 is the statement's ``subject`` digest;
4. ``evi.onnx`` inside it hashes to what its ``hallmark.toml`` declares;
5. the model (and each variant) is copied to ``models/<sha256>.onnx`` in the scoring bucket and
   becomes the active model ``{modelKey, modelDigest, gpuModelKey, gpuModelDigest,
   candidateModelKey, candidateModelDigest, manifestSignatureId, ...}`` (a variant the package
   does not carry is ``""``).

Every batch re-verifies the envelope and the recorded artifact digest (``verify_active``) before it
is planned, and both runners refuse a model file whose sha256 is not ``modelDigest``
(``hallmark.scoring.runner.EviRunner``).
"""

from __future__ import annotations

import functools
import io
import json
import re
import tarfile
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field

from hallmark.canonical import sha256_hex, to_rfc3339
from hallmark.docstore import DocStore
from hallmark.dsse import IN_TOTO_PAYLOAD_TYPE, DsseError, manifest_signature_id, verify_envelope
from hallmark.errors import Conflict, DomainError, NotFound
from hallmark.scoring.model_io import MODEL_FILE
from hallmark.scoring.ports import BlobStore

MODEL = "scoring-model"
ACTIVE = "active"
VARIANTS = ("gpu", "candidates")
"""The optional ``[model.<variant>]`` tables: the float16 GPU model, the int8 candidate model."""
DECLARATION = "hallmark.toml"
MAX_MODEL_BYTES = 512 * 1024 * 1024
MAX_ARTIFACT_BYTES = 1024 * 1024 * 1024
MAX_MEMBERS = 10_000
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class RegisterModel(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    packageId: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")


class ModelProvenanceError(DomainError):
    """The model's chain from the signed manifest to the file does not hold (nothing is registered)."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__("model_provenance", message, 422, details)


class ObjectReader(Protocol):
    def read(self, bucket: str, key: str, version_id: str | None = None, max_bytes: int | None = None) -> bytes:
        """The object's bytes; ``KeyError`` when it does not exist."""
        ...


@dataclass(frozen=True)
class ModelFile:
    """One declared model file of a package: its bytes and their (checked) sha256."""

    data: bytes
    sha256: str

    @property
    def key(self) -> str:
        return f"models/{self.sha256}.onnx"


@dataclass(frozen=True)
class ActiveModel:
    modelKey: str
    modelDigest: str
    manifestSignatureId: str
    manifestDigest: str
    manifestRef: dict[str, Any]
    artifactSha256: str
    packageId: str
    packageName: str
    packageVersion: str
    registeredAt: str
    registeredBy: str
    gpuModelKey: str = ""  # "" when the package carries no [model.gpu] variant
    gpuModelDigest: str = ""
    candidateModelKey: str = ""  # "" when the package carries no [model.candidates] variant
    candidateModelDigest: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _reader(tf: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        f = tf.extractfile(member)
        return f.read() if f is not None else b""

    return read


def _members(artifact: bytes) -> dict[str, bytes]:
    """The ``.onnx`` files and ``hallmark.toml`` from the archive root (or its single top folder)."""
    wanted: dict[str, bytes] = {}
    names: list[str] = []

    def keep(name: str, size: int, read: Callable[[], bytes]) -> None:
        clean = name
        while clean.startswith("./"):
            clean = clean[2:]
        names.append(clean)
        base = clean.rsplit("/", 1)[-1]
        depth = clean.count("/")
        if (base == DECLARATION or base.endswith(".onnx")) and depth <= 1:
            limit = 64 * 1024 if base == DECLARATION else MAX_MODEL_BYTES
            if size > limit:
                raise ModelProvenanceError(f"{clean} is larger than {limit} bytes")
            wanted[clean] = read()

    if artifact[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(artifact)) as zf:
            for n, info in enumerate(zf.infolist()):
                if n >= MAX_MEMBERS:
                    raise ModelProvenanceError("the package has too many members")
                if not info.is_dir():
                    keep(info.filename, info.file_size, functools.partial(zf.read, info))
    else:
        try:
            tf = tarfile.open(fileobj=io.BytesIO(artifact), mode="r:*")  # noqa: SIM115 - closed below
        except tarfile.TarError as exc:
            raise ModelProvenanceError(f"the released artifact is not a readable archive: {exc}") from None
        with tf:
            for n, member in enumerate(tf):
                if n >= MAX_MEMBERS:
                    raise ModelProvenanceError("the package has too many members")
                if member.isfile():
                    keep(member.name, member.size, _reader(tf, member))
    tops = {n.split("/", 1)[0] for n in names}
    prefix = "" if DECLARATION in wanted or len(tops) != 1 else f"{next(iter(tops))}/"
    out = {name.removeprefix(prefix): data for name, data in wanted.items() if name.startswith(prefix)}
    return {k: v for k, v in out.items() if "/" not in k}


def _declared_file(files: dict[str, bytes], table: dict[str, Any], where: str, default: str | None) -> ModelFile:
    """The file a ``[model]``-style table declares, if its bytes hash to the declared sha256."""
    name = table.get("file", default)
    if not isinstance(name, str) or not name.endswith(".onnx") or "/" in name:
        raise ModelProvenanceError(f"[{where}] file must name an .onnx file at the package root (got {name!r})")
    if name not in files:
        raise ModelProvenanceError(f"[{where}] declares {name}, which the package does not hold")
    want = str(table.get("sha256", "")).lower().removeprefix("sha256:")
    if not _HEX64.match(want):
        raise ModelProvenanceError(f"[{where}] sha256 must be the file's sha256 (64 hex characters)")
    got = sha256_hex(files[name])
    if got != want:
        raise ModelProvenanceError(f"{name} has sha256 {got}, {DECLARATION} declares {want}",
                                   {"file": name, "actual": got, "declared": want})
    return ModelFile(files[name], got)


def extract_models(artifact: bytes) -> tuple[ModelFile, dict[str, ModelFile]]:
    """The EVI model and its declared variants (``gpu``, ``candidates``) from a released model
    package, each checked against the sha256 its ``hallmark.toml`` declares."""
    files = _members(artifact)
    if DECLARATION not in files:
        raise ModelProvenanceError(f"the package has no {DECLARATION}")
    try:
        declared = tomllib.loads(files[DECLARATION].decode("utf-8")).get("model")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ModelProvenanceError(f"{DECLARATION} is not valid TOML: {exc}") from None
    if not isinstance(declared, dict):
        raise ModelProvenanceError(f"{DECLARATION} has no [model] table: not a model package")
    if declared.get("file", MODEL_FILE) != MODEL_FILE:
        raise ModelProvenanceError(f"the package must hold the EVI model as {MODEL_FILE} "
                                   f"(declared: {declared.get('file')!r})")
    main = _declared_file(files, declared, "model", MODEL_FILE)
    unknown = sorted(k for k, v in declared.items() if isinstance(v, dict) and k not in VARIANTS)
    if unknown:
        raise ModelProvenanceError(f"unknown model variant(s) {unknown}: the variants are {list(VARIANTS)}")
    variants = {name: _declared_file(files, declared[name], f"model.{name}", None)
                for name in VARIANTS if isinstance(declared.get(name), dict)}
    return main, variants


def extract_model(artifact: bytes) -> tuple[bytes, str]:
    """(model bytes, their sha256) of the EVI model in a released model package."""
    main, _ = extract_models(artifact)
    return main.data, main.sha256


def _s3_ref(uri: str) -> tuple[str, str, str | None]:
    """``s3://bucket/key`` or ``s3://bucket/key?versionId=V`` (a pinned artifact) -> its parts."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ModelProvenanceError(f"artifact_ref {uri!r} is not an s3:// reference")
    path, _, query = uri[5:].partition("?")
    bucket, key = path.split("/", 1)
    version = parse_qs(query).get("versionId", [None])[0] if query else None
    return bucket, key, version


def verify_manifest(envelope: dict[str, Any], public_key_pem: bytes, expected_signature_id: str | None
                    ) -> dict[str, Any]:
    """The in-toto statement of a manifest envelope that verifies (and is the recorded one)."""
    try:
        payload = verify_envelope(envelope, public_key_pem, expected_payload_type=IN_TOTO_PAYLOAD_TYPE)
    except DsseError as exc:
        raise ModelProvenanceError(f"the model's manifest does not verify: {exc}") from None
    signature_id = manifest_signature_id(envelope)
    if expected_signature_id is not None and signature_id != expected_signature_id:
        raise ModelProvenanceError("the manifest in the repository is not the one the release signed",
                                   {"expected": expected_signature_id, "actual": signature_id})
    statement: dict[str, Any] = json.loads(payload)
    subjects = statement.get("subject") or []
    if len(subjects) != 1 or not _HEX64.match(str(subjects[0].get("digest", {}).get("sha256", ""))):
        raise ModelProvenanceError("the manifest must name exactly one artifact with a sha256 digest")
    return statement


class ModelRegistry:
    def __init__(self, docs: DocStore, objects: ObjectReader, models: BlobStore,
                 public_key_pem: Callable[[], bytes], clock: Callable[[], datetime] | None = None) -> None:
        self.docs = docs
        self.objects = objects
        self.models = models
        self.public_key_pem = public_key_pem
        self.clock = clock or (lambda: datetime.now(UTC))

    def _envelope(self, ref: dict[str, Any]) -> dict[str, Any]:
        try:
            raw = self.objects.read(ref["bucket"], ref["key"], ref.get("versionId"), max_bytes=1024 * 1024)
        except KeyError:
            raise ModelProvenanceError("the model's manifest is not in the manifest repository", ref) from None
        envelope: dict[str, Any] = json.loads(raw)
        return envelope

    def register(self, package_id: str, actor: str) -> ActiveModel:
        package = self.docs.get("package", package_id)
        if package is None:
            raise NotFound("package", package_id)
        if package.get("status") != "Published":
            raise Conflict(f"package {package_id} is {package.get('status')}: only a Published model can be used",
                           {"status": package.get("status")})
        manifest = package.get("manifest") or {}
        ref = manifest.get("repository")
        if not ref:
            raise ModelProvenanceError("the package's manifest was never committed to the repository")
        envelope = self._envelope(ref)
        statement = verify_manifest(envelope, self.public_key_pem(), manifest.get("signatureId"))
        subject_digest = statement["subject"][0]["digest"]["sha256"]
        bucket, key, version = _s3_ref(str(statement.get("predicate", {}).get("artifact_ref", "")))
        try:
            artifact = self.objects.read(bucket, key, version, max_bytes=MAX_ARTIFACT_BYTES)
        except KeyError:
            raise ModelProvenanceError("the released artifact is gone", {"artifact": f"s3://{bucket}/{key}"}) from None
        if sha256_hex(artifact) != subject_digest:
            raise ModelProvenanceError("the artifact is not the one the manifest signs",
                                       {"actual": sha256_hex(artifact), "signed": subject_digest})
        main, variants = extract_models(artifact)
        for file in (main, *variants.values()):
            self.models.put(file.key, file.data)
        gpu, cand = variants.get("gpu"), variants.get("candidates")
        meta = package.get("meta") or {}
        active = ActiveModel(
            modelKey=main.key, modelDigest=main.sha256,
            gpuModelKey=gpu.key if gpu else "", gpuModelDigest=gpu.sha256 if gpu else "",
            candidateModelKey=cand.key if cand else "", candidateModelDigest=cand.sha256 if cand else "",
            manifestSignatureId=manifest_signature_id(envelope),
            manifestDigest=str(manifest.get("digest", "")), manifestRef=dict(ref), artifactSha256=subject_digest,
            packageId=package_id, packageName=str(meta.get("name", "")), packageVersion=str(meta.get("version", "")),
            registeredAt=to_rfc3339(self.clock()), registeredBy=actor,
        )
        for _ in range(5):
            current = self.docs.get(MODEL, ACTIVE)
            try:
                if current is None:
                    self.docs.create(MODEL, ACTIVE, active.as_dict())
                else:
                    self.docs.replace(MODEL, ACTIVE, active.as_dict(), current["version"])
                return active
            except Conflict:
                continue
        raise Conflict("the active model is being changed concurrently; retry")

    def active(self) -> ActiveModel:
        doc = self.docs.get(MODEL, ACTIVE)
        if doc is None:
            raise DomainError("no_active_model", "no EVI model is registered: release one and POST /scoring/model",
                              404)
        fields = set(ActiveModel.__dataclass_fields__)
        return ActiveModel(**{k: v for k, v in doc.items() if k in fields})

    def verify_active(self) -> ActiveModel:
        """The active model, if its signed manifest still verifies and still signs the recorded artifact."""
        model = self.active()
        statement = verify_manifest(self._envelope(model.manifestRef), self.public_key_pem(),
                                    model.manifestSignatureId)
        if statement["subject"][0]["digest"]["sha256"] != model.artifactSha256:
            raise ModelProvenanceError("the active model's manifest signs another artifact")
        return model
