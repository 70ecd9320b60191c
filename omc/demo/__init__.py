"""Bundled demo data and the demo job."""
