"""The read models the API's queries run on, as the CLI's reports have them: as of a past
business moment, or the live one (caught up with the event store first in embedded mode)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from leadflow.api.problems import ApiProblem
from leadflow.api.state import ApiState
from leadflow.bootstrap import open_read_model
from projections.catch_up import catch_up
from projections.reports.as_of import past_read_model
from projections.store import ReadModelStore
from service.lead_history import parse_as_of


def as_of_moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_as_of(text)
    except ValueError as error:
        raise ApiProblem(422, "invalid-input", "Invalid input", f"as_of: {error}") from None


@contextmanager
def report_store(state: ApiState, as_of: datetime | None = None) -> Iterator[ReadModelStore]:
    with open_read_model(state.settings) as store:
        if not state.settings.kafka_mode:
            with state.writing:
                catch_up(state.app, store)
        if as_of is None:
            yield store
            return
        with past_read_model(state.app, as_of, store) as scratch:
            yield scratch
