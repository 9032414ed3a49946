"""In-memory fakes of the domain's ports, for unit tests. Not shipped in the Lambda layer."""
