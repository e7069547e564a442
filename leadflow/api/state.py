"""What the API's requests share: the settings, the application on the event store, and
one lock under which this process writes (commands, read-model catch-ups)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from fastapi import Request

from adapters.settings import Settings
from service.application import LeadflowApp


@dataclass
class ApiState:
    settings: Settings
    app: LeadflowApp
    writing: threading.Lock = field(default_factory=threading.Lock)


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state
