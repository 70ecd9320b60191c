"""Web pages and reports (outer shell)."""
