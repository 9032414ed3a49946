"""Hallmark domain library (shipped as the Lambda layer).

Domain modules never import boto3: they talk to the small ports in ``hallmark.ports``;
AWS-backed implementations live in ``hallmark.adapters``.
"""

__version__ = "0.1.0"

import os as _os

# Hallmark uses no pydantic plugins; without this, the first model or TypeAdapter scans every
# installed distribution's entry points for them (about 10 ms of each cold start).
_os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
