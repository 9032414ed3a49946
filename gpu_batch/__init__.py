"""The AWS Batch scoring job: EVI model builder (``evi_model``) and job entrypoint (``entrypoint``)."""
