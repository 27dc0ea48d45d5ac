"""Server-rendered pages (Jinja2 + htmx, vendored, no build step) on the same domain services."""
