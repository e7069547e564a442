"""Run the API on uvicorn (``leadflow serve``)."""

from __future__ import annotations

import socket

import uvicorn

from adapters.settings import Settings
from leadflow.api.app import API_ACTOR, create_app
from leadflow.bootstrap import open_application

SHUTDOWN_SECONDS = 5


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; leadflow's logging (structlog) stays in charge.

    The store is opened once and the socket bound before uvicorn starts, so settings the
    store refuses (integrity, a malformed key, an unreachable database) and an address in
    use are the CLI's one-line errors, not a failed start-up."""
    open_application(settings, default_actor=API_ACTOR).close()
    listening = _listen(host, port)
    config = uvicorn.Config(
        create_app(settings),
        log_config=None,
        access_log=False,  # the API logs one line per request, with its request id
        server_header=False,
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,  # open event streams never end
    )
    uvicorn.Server(config).run(sockets=[listening])


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as error:
        listening.close()
        msg = f"cannot listen on {host}:{port}: {error.strerror or error}"
        raise OSError(msg) from None
    listening.set_inheritable(True)
    return listening
