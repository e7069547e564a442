"""Every file leadflow wrote during the privacy workload (Kafka mode, signed log, HTTP
API) is its owner's only: the data directory and what is in it, the exports, the
witness and the audit key; 0600 files and 0700 folders, under a umask of 022."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.e2e.pipeline.privacy_workload import Workload

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# leadflow serve's stdout and stderr, which the test harness redirects into the data dir
HARNESS_FILES = {"serve.log"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_every_file_leadflow_wrote_is_private(privacy_workload: Workload) -> None:
    data_dir, outside = privacy_workload.data_dir, privacy_workload.outside
    written = [data_dir, *(p for p in data_dir.rglob("*") if p.name not in HARNESS_FILES)]
    written += [outside / name for name in ("history.jsonl", "proof.json", "witness.jsonl")]
    written.append(outside / "audit.pem")  # the private key (its .pub part is public)
    modes = {str(path): mode(path) for path in written}
    names = {Path(path).name for path in modes}
    if privacy_workload.pipeline.store_kind == "sqlite":
        assert {"events.sqlite3", "read_models.sqlite3", "events.relay.lock"} <= names
    exposed = {path: oct(m) for path, m in modes.items() if m & 0o077}
    assert exposed == {}
    assert all(m == 0o700 for p, m in modes.items() if Path(p).is_dir())
