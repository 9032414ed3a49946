"""Hallmark domain library (shipped as the Lambda layer).

Domain modules never import boto3: they talk to the small ports in ``hallmark.ports``;
AWS-backed implementations live in ``hallmark.adapters``.
"""

__version__ = "0.1.0"
