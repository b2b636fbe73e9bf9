"""verify commands (issue 16: being written)."""
