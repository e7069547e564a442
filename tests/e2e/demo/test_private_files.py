"""Everything leadflow writes under its data directory is private to its owner (0600 / 0700)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.private_files import private_dir, private_file
from tests.e2e.demo.helpers import run_leadflow


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(root: Path) -> dict[str, int]:
    found = {str(root): stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path)] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_a_demo_run_leaves_no_file_others_can_read(tmp_path: Path, usual_umask: None) -> None:
    data_dir = tmp_path / "fresh" / "data"
    run = run_leadflow(data_dir, "demo", "--leads", "20")
    assert run.returncode == 0, run.stderr
    assert run_leadflow(data_dir, "verify").returncode == 0
    modes = _modes(data_dir)
    assert len(modes) > 2, modes  # the event store and the read models at least
    assert {p: m for p, m in modes.items() if m & 0o077} == {}
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700  # a created parent too


def test_existing_folders_and_files_keep_their_modes(tmp_path: Path, usual_umask: None) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    shared.chmod(0o750)
    kept = shared / "kept.db"
    kept.write_bytes(b"")
    kept.chmod(0o640)
    private_dir(shared)
    private_file(kept)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o750
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    assert stat.S_IMODE(private_file(shared / "new.db").stat().st_mode) == 0o600
