"""The HTTP server: a JSON API and the web UI over one Engine (`viscover serve`)."""

from viscover.serve.app import ServeOptions, create_app

__all__ = ["ServeOptions", "create_app"]
