"""AWS-backed implementations of the ports in ``hallmark.ports`` (the only place boto3 is used)."""
