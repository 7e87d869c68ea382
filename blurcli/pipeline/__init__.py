"""Pipelines: source -> detect -> (track) -> identify -> redact -> sink, one module per kind of media."""
