"""Run the API on uvicorn (``leadflow serve``)."""

from __future__ import annotations

import uvicorn

from adapters.settings import Settings
from leadflow.api.app import create_app

SHUTDOWN_SECONDS = 5


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; leadflow's logging (structlog) stays in charge."""
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,  # the API logs one line per request, with its request id
        server_header=False,
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,  # open event streams never end
    )
