"""Evidence in the registry (issue 16: being written)."""
