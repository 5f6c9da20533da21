"""Usage accounting, off the request path."""
