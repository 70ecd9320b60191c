"""Services behind the API routes: what a route needs beyond one call into a context."""
