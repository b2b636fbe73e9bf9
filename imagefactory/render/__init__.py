"""Renderers: pure functions from spec objects to text, through one Jinja environment."""
