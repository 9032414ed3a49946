"""The model's provenance: registered only from a Published package whose DSSE manifest verifies,
signs the released artifact, and whose evi.onnx hashes to what its hallmark.toml declares."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from gpu_batch.evi_model import build_model
from hallmark.canonical import canonical_bytes
from hallmark.dsse import IN_TOTO_PAYLOAD_TYPE, manifest_signature_id, sign_envelope
from hallmark.errors import Conflict, DomainError, NotFound
from hallmark.scoring.models import ModelProvenanceError, ModelRegistry, extract_model, extract_models
from hallmark_tools import samples
from tests.fakes.docstore import InMemoryDocStore
from tests.fakes.scoring import InMemoryBlobStore
from tests.fakes.signing import LocalSigner

PACKAGES, MANIFESTS = "hallmark-packages", "hallmark-manifests"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    path = tmp_path_factory.mktemp("m") / "evi.onnx"
    digest = build_model(path)
    return path.read_bytes(), digest


def package(model: bytes, declared: str | None, *, name: str = "evi.onnx", zipped: bool = False,
            folder: str = "") -> bytes:
    toml = '[model]\nfile = "evi.onnx"\n' + (f'sha256 = "{declared}"\n' if declared else "")
    files = {f"{folder}{name}": model, f"{folder}hallmark.toml": toml.encode()}
    return samples.zip_bytes(files) if zipped else samples.tar_gz(files)


class Objects:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def read(self, bucket: str, key: str, version_id: str | None = None, max_bytes: int | None = None) -> bytes:
        try:
            return self.objects[(bucket, key)]
        except KeyError:
            raise KeyError(f"s3://{bucket}/{key}") from None


def released(docs: InMemoryDocStore, objects: Objects, signer: LocalSigner, artifact: bytes,
             status: str = "Published", pid: str = "p-1") -> dict[str, Any]:
    """What the release pipeline leaves: the package record, the artifact, the committed envelope."""
    key = f"uploads/{pid}/evi-model-1.0.0.tar.gz"
    objects.objects[(PACKAGES, key)] = artifact
    statement = {"_type": "https://in-toto.io/Statement/v1",
                 "subject": [{"name": "evi-model-1.0.0.tar.gz", "digest": {"sha256": hashlib.sha256(artifact).hexdigest()}}],
                 "predicateType": "https://hallmark.dev/manifest/v1",
                 "predicate": {"artifact_ref": f"s3://{PACKAGES}/{key}", "impact": "LOW"}}
    envelope = sign_envelope(canonical_bytes(statement), IN_TOTO_PAYLOAD_TYPE, signer)
    ref = {"bucket": MANIFESTS, "key": f"manifests/evi-model/1.0.0/{pid}.dsse.json", "versionId": "v1"}
    objects.objects[(MANIFESTS, ref["key"])] = json.dumps(envelope).encode()
    doc = {"packageId": pid, "status": status, "meta": {"name": "evi-model", "version": "1.0.0"},
           "manifest": {"signatureId": manifest_signature_id(envelope), "digest": "d", "repository": ref}}
    docs.create("package", pid, doc)
    return envelope


@pytest.fixture()
def signer() -> LocalSigner:
    return LocalSigner.generate(key_id="manifest-key")


def registry(docs: InMemoryDocStore, objects: Objects, blobs: InMemoryBlobStore, signer: LocalSigner) -> ModelRegistry:
    return ModelRegistry(docs, objects, blobs, signer.public_key_pem)


def test_register_and_verify_the_active_model(model: tuple[bytes, str], signer: LocalSigner) -> None:
    docs, objects, blobs = InMemoryDocStore(), Objects(), InMemoryBlobStore()
    envelope = released(docs, objects, signer, package(model[0], model[1]))
    reg = registry(docs, objects, blobs, signer)
    active = reg.register("p-1", "root")
    assert active.modelDigest == model[1] and active.modelKey == f"models/{model[1]}.onnx"
    assert active.manifestSignatureId == manifest_signature_id(envelope)
    assert blobs.objects[active.modelKey] == model[0]
    assert reg.active() == active == reg.verify_active()


@pytest.mark.parametrize("layout", [{"zipped": True}, {"folder": "evi-model-1.0.0/"}])
def test_zip_and_single_top_folder_layouts(model: tuple[bytes, str], layout: dict[str, Any]) -> None:
    data, digest = extract_model(package(model[0], model[1], **layout))
    assert (data, digest) == model


def test_a_model_that_is_not_the_declared_one_is_refused(model: tuple[bytes, str]) -> None:
    with pytest.raises(ModelProvenanceError, match="declares"):
        extract_model(package(model[0] + b"\0", model[1]))
    with pytest.raises(ModelProvenanceError, match="sha256"):
        extract_model(package(model[0], None))
    with pytest.raises(ModelProvenanceError, match=r"evi\.onnx"):
        extract_model(package(model[0], model[1], name="other.onnx"))
    with pytest.raises(ModelProvenanceError, match=r"\[model\]"):
        extract_model(samples.clean_package("greeter"))


def test_an_artifact_replaced_after_release_is_refused(model: tuple[bytes, str], signer: LocalSigner) -> None:
    docs, objects = InMemoryDocStore(), Objects()
    released(docs, objects, signer, package(model[0], model[1]))
    key = next(k for k in objects.objects if k[0] == PACKAGES)
    other = package(model[0] + b"\0", hashlib.sha256(model[0] + b"\0").hexdigest())
    objects.objects[key] = other  # a consistent package, but not the one the manifest signs
    with pytest.raises(ModelProvenanceError, match="not the one the manifest signs"):
        registry(docs, objects, InMemoryBlobStore(), signer).register("p-1", "root")


def test_a_manifest_signed_by_another_key_is_refused(model: tuple[bytes, str], signer: LocalSigner) -> None:
    docs, objects = InMemoryDocStore(), Objects()
    released(docs, objects, LocalSigner.generate(key_id="intruder"), package(model[0], model[1]))
    with pytest.raises(ModelProvenanceError, match="does not verify"):
        registry(docs, objects, InMemoryBlobStore(), signer).register("p-1", "root")


def test_a_swapped_envelope_is_refused(model: tuple[bytes, str], signer: LocalSigner) -> None:
    docs, objects = InMemoryDocStore(), Objects()
    released(docs, objects, signer, package(model[0], model[1]))
    doc = docs.get("package", "p-1")
    assert doc is not None
    version = doc.pop("version")
    doc["manifest"]["signatureId"] = "manifest-key:" + "0" * 64
    docs.replace("package", "p-1", doc, version)
    with pytest.raises(ModelProvenanceError, match="not the one the release signed"):
        registry(docs, objects, InMemoryBlobStore(), signer).register("p-1", "root")


def test_only_a_published_package_can_be_registered(model: tuple[bytes, str], signer: LocalSigner) -> None:
    docs, objects = InMemoryDocStore(), Objects()
    released(docs, objects, signer, package(model[0], model[1]), status="Rejected")
    reg = registry(docs, objects, InMemoryBlobStore(), signer)
    with pytest.raises(Conflict):
        reg.register("p-1", "root")
    with pytest.raises(NotFound):
        reg.register("p-404", "root")
    with pytest.raises(DomainError) as exc:
        reg.active()
    assert exc.value.code == "no_active_model" and exc.value.http_status == 404


def test_verify_active_fails_when_the_committed_manifest_changes(model: tuple[bytes, str], signer: LocalSigner) -> None:
    docs, objects = InMemoryDocStore(), Objects()
    released(docs, objects, signer, package(model[0], model[1]))
    reg = registry(docs, objects, InMemoryBlobStore(), signer)
    reg.register("p-1", "root")
    key = next(k for k in objects.objects if k[0] == MANIFESTS)
    envelope = json.loads(objects.objects[key])
    envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][:-4] + "AAAA"
    objects.objects[key] = json.dumps(envelope).encode()
    with pytest.raises(ModelProvenanceError):
        reg.verify_active()


def test_build_is_the_package_in_the_demo(tmp_path: Path) -> None:
    from hallmark_tools.scenarios.scoring import model_package

    body, digest = model_package()
    data, got = extract_model(body)
    assert got == digest == hashlib.sha256(data).hexdigest()


def variant_package(model: tuple[bytes, str], variants: dict[str, tuple[str, bytes, str]]) -> bytes:
    """A model package with ``[model.<variant>]`` tables: variant -> (file name, bytes, declared sha256)."""
    toml = f'[model]\nfile = "evi.onnx"\nsha256 = "{model[1]}"\n'
    files = {"evi.onnx": model[0]}
    for variant, (name, data, declared) in variants.items():
        toml += f'\n[model.{variant}]\nfile = "{name}"\nsha256 = "{declared}"\n'
        files[name] = data
    files["hallmark.toml"] = toml.encode()
    return samples.tar_gz(files)


def test_the_gpu_and_candidate_variants_are_registered_with_their_digests(model: tuple[bytes, str],
                                                                            signer: LocalSigner) -> None:
    gpu, cand = b"fp16 model bytes", b"int8 candidate model bytes"
    gpu_d, cand_d = hashlib.sha256(gpu).hexdigest(), hashlib.sha256(cand).hexdigest()
    docs, objects, blobs = InMemoryDocStore(), Objects(), InMemoryBlobStore()
    released(docs, objects, signer, variant_package(model, {"gpu": ("evi_fp16.onnx", gpu, gpu_d),
                                                            "candidates": ("evi_int8.onnx", cand, cand_d)}))
    reg = registry(docs, objects, blobs, signer)
    active = reg.register("p-1", "root")
    assert (active.gpuModelKey, active.gpuModelDigest) == (f"models/{gpu_d}.onnx", gpu_d)
    assert (active.candidateModelKey, active.candidateModelDigest) == (f"models/{cand_d}.onnx", cand_d)
    assert blobs.objects[active.gpuModelKey] == gpu and blobs.objects[active.candidateModelKey] == cand
    assert blobs.objects[active.modelKey] == model[0]
    assert reg.verify_active() == active


def test_a_package_without_variants_registers_none(model: tuple[bytes, str], signer: LocalSigner) -> None:
    docs, objects = InMemoryDocStore(), Objects()
    released(docs, objects, signer, package(model[0], model[1]))
    active = registry(docs, objects, InMemoryBlobStore(), signer).register("p-1", "root")
    assert active.gpuModelKey == active.gpuModelDigest == active.candidateModelKey == active.candidateModelDigest == ""


def test_an_active_model_stored_before_variants_existed_still_loads(model: tuple[bytes, str],
                                                                     signer: LocalSigner) -> None:
    docs, objects = InMemoryDocStore(), Objects()
    released(docs, objects, signer, package(model[0], model[1]))
    reg = registry(docs, objects, InMemoryBlobStore(), signer)
    active = reg.register("p-1", "root")
    doc = docs.get("scoring-model", "active")
    assert doc is not None
    version = doc.pop("version")
    for field in ("gpuModelKey", "gpuModelDigest", "candidateModelKey", "candidateModelDigest"):
        doc.pop(field)
    docs.replace("scoring-model", "active", doc, version)
    assert reg.verify_active() == active


@pytest.mark.parametrize(("variants", "message"), [
    ({"gpu": ("evi_fp16.onnx", b"fp16", hashlib.sha256(b"other").hexdigest())}, r"evi_fp16\.onnx has sha256"),
    ({"gpu": ("evi_fp16.onnx", b"fp16", "not-a-digest")}, r"\[model\.gpu\] sha256"),
    ({"candidates": ("../evil.onnx", b"x", hashlib.sha256(b"x").hexdigest())}, r"\[model\.candidates\] file"),
    ({"candidates": ("notes.txt", b"x", hashlib.sha256(b"x").hexdigest())}, r"\.onnx file"),
    ({"turbo": ("evi_turbo.onnx", b"x", hashlib.sha256(b"x").hexdigest())}, r"unknown model variant"),
])
def test_a_variant_that_does_not_hold_is_refused(model: tuple[bytes, str], variants: dict[str, tuple[str, bytes, str]],
                                                 message: str) -> None:
    with pytest.raises(ModelProvenanceError, match=message):
        extract_models(variant_package(model, variants))


def test_a_declared_variant_missing_from_the_package_is_refused(model: tuple[bytes, str]) -> None:
    toml = (f'[model]\nfile = "evi.onnx"\nsha256 = "{model[1]}"\n\n'
            f'[model.gpu]\nfile = "evi_fp16.onnx"\nsha256 = "{"ab" * 32}"\n')
    body = samples.tar_gz({"evi.onnx": model[0], "hallmark.toml": toml.encode()})
    with pytest.raises(ModelProvenanceError, match="does not hold"):
        extract_models(body)


def test_the_demo_package_carries_both_variants() -> None:
    from hallmark_tools.scenarios.scoring import model_package

    body, digest = model_package()
    main, variants = extract_models(body)
    assert main.sha256 == digest and set(variants) == {"gpu", "candidates"}


def test_the_builder_cli_writes_a_package_the_registry_accepts(tmp_path: Path) -> None:
    """``python -m gpu_batch.evi_model DIR``, archived with tar as the runbook says, is a model
    package the registry takes (the file names are the ones it expects)."""
    import tarfile

    from gpu_batch.evi_model import main

    assert main([str(tmp_path / "pkg")]) == 0
    archive = tmp_path / "evi-model-1.0.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tmp_path / "pkg", arcname=".")
    model, variants = extract_models(archive.read_bytes())
    assert model.sha256 == hashlib.sha256((tmp_path / "pkg" / "evi.onnx").read_bytes()).hexdigest()
    assert set(variants) == {"gpu", "candidates"}
    assert "[smoke]" in (tmp_path / "pkg" / "hallmark.toml").read_text()
