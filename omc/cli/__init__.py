"""The `omc` command line (outer shell)."""
