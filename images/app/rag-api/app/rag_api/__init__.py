"""Retrieval API over a bundled document set."""
