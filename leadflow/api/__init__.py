"""The HTTP API of ``leadflow serve`` (FastAPI): ``create_app(settings)`` builds it."""
