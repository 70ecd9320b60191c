"""The HTTP API (outer shell)."""
