"""Signal scoring (design flow 5): event schemas, host-side features, the EVI model runner.

- ``schema``: pydantic models of ``EnrichedEvent``, ``EVIEnvelope`` and ``BriefPayload`` (the JSON
  Schemas under ``events/schemas`` are the producers' contract and say the same thing).
- ``features``: per-event scalar scores (freshness, impact, confidence, gap), ``ScoringConfig``,
  banding, brief impact level and expiry.
- ``runner``: ``EviRunner`` runs the EVI ONNX model (built by ``gpu_batch.evi_model``) over a
  reference corpus in chunks, after checking the model file's digest.
- ``reference``: the plain numpy implementation, the correctness oracle for the model.
- ``ports``: the ``BlobStore`` port the Batch job reads and writes through.
"""
