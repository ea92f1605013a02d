"""Web UI assets: templates, static files, translations, and the pure helpers that render for them."""
