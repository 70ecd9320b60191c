"""The API's routers, one module per area; each is thin over a service."""
