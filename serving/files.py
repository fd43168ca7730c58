"""Files the SDK edge keeps (snapshots, exposure journals and spools): private to the service's
user, never in a directory other users can read."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["open_private", "private_directory"]


def private_directory(path: Path) -> Path:
    """`path`, created if needed, with permissions for the service's user only (0700)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    return path


def open_private(path: Path, flags: int) -> int:
    """A file descriptor of `path`, created with mode 0600 when it does not exist."""
    return os.open(path, flags | os.O_CREAT, 0o600)
