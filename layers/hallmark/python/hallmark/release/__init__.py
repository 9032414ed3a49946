"""The release flow: package validation, manifests and publishing."""
