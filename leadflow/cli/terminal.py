"""What leadflow prints cannot steer the terminal: control characters (C0 but newline and
tab, DEL, C1) and the bidirectional embeddings, overrides, isolates and marks are written
as ``\\uXXXX``. Outside JSON strings they never occur in leadflow's JSON, and inside one
the escape means the same character, so JSON output stays valid and equal."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO, cast

from domain.input_limits import BIDI_CONTROLS

_STEERING = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + "".join(sorted(BIDI_CONTROLS)) + "]")


def terminal_safe(text: str) -> str:
    return _STEERING.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class _SafeStream:
    """A text stream that writes through ``terminal_safe``; everything else delegates."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(terminal_safe(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def safe_output() -> Iterator[None]:
    """``sys.stdout`` and ``sys.stderr`` written through ``terminal_safe`` meanwhile."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, _SafeStream(stdout))
    sys.stderr = cast(TextIO, _SafeStream(stderr))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr
