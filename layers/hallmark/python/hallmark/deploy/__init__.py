"""Deployments that deploy: only the exact signed bytes of a published ``lambda`` package go live,
sized by the tier a verified ceremony awarded, shifted by canary, watched for drift, revoked with
the release. Domain only (steps over ports, no boto3); the adapters are in ``hallmark.adapters``."""
