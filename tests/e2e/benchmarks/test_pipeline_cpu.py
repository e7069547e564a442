"""The CPU the end_to_end benchmark reports per process: read from ``/proc``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchmarks.pipeline_processes import process_cpu_seconds

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")


def test_a_busy_process_has_used_cpu_and_a_gone_one_reads_as_none() -> None:
    busy = subprocess.Popen(
        [sys.executable, "-c", "import sys; sum(range(3 * 10**7)); sys.stdin.read()"],
        stdin=subprocess.PIPE,
    )
    try:
        while process_cpu_seconds(busy.pid) == 0.0:  # until its first tick is counted
            assert busy.poll() is None
        assert process_cpu_seconds(busy.pid) > 0
    finally:
        busy.communicate(b"")
    assert process_cpu_seconds(busy.pid) == 0.0
