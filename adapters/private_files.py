"""Files and folders leadflow creates are readable by their owner only (0600 / 0700).

The store and read-model databases hold personal data, so they must not be
world-readable under the usual umask of 022. SQLite gives its journal, WAL and shared
memory files the mode of the database file, so creating that file 0600 covers them. A
folder or file that already exists keeps the mode its operator gave it.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700 folders; an existing folder is kept."""
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    for folder in missing:
        folder.chmod(PRIVATE_DIR)  # mkdir's mode is masked by the umask
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty and 0600 if it does not exist yet, its folder 0700."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return path
    os.close(fd)
    return path
