"""The relay's producer for one activation: connected in the background while the first
page is read (connecting and learning the topics' partitions takes a few hundred
milliseconds that reading would otherwise wait behind), made anew after a failure."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress

from kafka import KafkaProducer
from kafka.errors import KafkaError


class ProducerSlot:
    def __init__(self, connect: Callable[[], KafkaProducer], worker: ThreadPoolExecutor) -> None:
        """``connect`` starts at once on ``worker``; its errors are raised by ``get``."""
        self._connect = connect
        self._connecting: Future[KafkaProducer] | None = worker.submit(connect)
        self._producer: KafkaProducer | None = None

    def get(self) -> KafkaProducer:
        """The producer, connected now unless it already is (or is being connected)."""
        if self._producer is None:
            connecting, self._connecting = self._connecting, None
            self._producer = self._connect() if connecting is None else connecting.result()
        return self._producer

    def drop(self) -> KafkaProducer | None:
        """Forget the producer (after a failure); the next ``get`` connects anew."""
        producer, self._producer, self._connecting = self._producer, None, None
        return producer

    def close(self, timeout: float) -> bool:
        """Close the producer; one still connecting, never used, is closed once connected,
        without waiting for it. True when nothing is left running on the worker."""
        if self._producer is not None:
            with suppress(KafkaError):
                self._producer.close(timeout=timeout)
        if self._connecting is None:
            return True
        self._connecting.add_done_callback(_close_unused)
        return False


def _close_unused(connecting: Future[KafkaProducer]) -> None:
    if connecting.exception() is None:
        with suppress(KafkaError):
            connecting.result().close(timeout=0)
