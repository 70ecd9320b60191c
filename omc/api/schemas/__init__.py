"""Pydantic models in and out of the API, one module per area."""
