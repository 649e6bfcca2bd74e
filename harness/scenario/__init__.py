"""Scenario files: pydantic models, safe YAML with file:line errors, cross-field checks, loading."""
