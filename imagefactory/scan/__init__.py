"""The vulnerability gate (issue 16: being written)."""
