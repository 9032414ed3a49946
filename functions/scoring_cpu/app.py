"""Scoring, the latency path: the batch scored at once in this Lambda with the EVI model on the
CPU (the model file is refused unless its sha256 is the signed digest in the plan; the int8 corpus
mode only for batches of at least ``int8MinBatch`` events, when the release has a candidate model)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from hallmark.adapters import runtime
from hallmark.errors import transient_errors
from hallmark.observability import logger, metrics
from hallmark.scoring.features import ScoringConfig
from hallmark.scoring.job import DEFAULT_CORPUS_MAX, run_job


@transient_errors
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from hallmark.scoring.runner import CPU  # onnxruntime + numpy load on the first batch, not at import

    config = ScoringConfig.model_validate_json(os.environ["SCORING_CONFIG"]) if os.environ.get("SCORING_CONFIG") else None
    candidate = (event["candidateModelKey"], event["candidateModelDigest"]) if event.get("candidateModelKey") else None
    result = run_job(store=runtime.blobs("scoring"), batch_key=event["batchKey"], model_key=event["modelKey"],
                     model_digest=event["modelDigest"], candidate_model=candidate,
                     int8_min_batch=int(event.get("int8MinBatch") or 0),
                     output_key=event["outputKey"], corpus_key=event["corpusKey"],
                     corpus_max=int(os.environ.get("CORPUS_MAX", DEFAULT_CORPUS_MAX)), config=config,
                     providers=[CPU], runner_name="cpu-lambda")
    metrics.add_metric(name="scoring.cpu_batch_seconds", unit=MetricUnit.Seconds, value=result.seconds)
    return result.summary()
