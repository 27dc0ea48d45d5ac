"""Who uses a darkroom home: servers and workers hold a shared lock on `<home>/.in-use`, so
that `darkroom demo`, which empties its home, can tell it is in use and refuse."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

from darkroom.errors import Conflict

__all__ = ["HomeInUse", "hold_shared", "lock_exclusive"]

LOCK_FILE = ".in-use"


class HomeInUse(Conflict):
    code = "home_in_use"


def _open(home: Path) -> IO[str]:
    home.mkdir(parents=True, exist_ok=True)
    return (home / LOCK_FILE).open("a")


def hold_shared(home: Path) -> IO[str]:
    """Marks `home` as used for as long as the returned file stays open."""
    fp = _open(home)
    fcntl.flock(fp, fcntl.LOCK_SH)
    return fp


def lock_exclusive(home: Path) -> IO[str]:
    """The home, to ourselves; HomeInUse when a server or worker runs on it."""
    fp = _open(home)
    try:
        fcntl.flock(fp, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fp.close()
        raise HomeInUse(f"{home} is used by a running darkroom server or worker; stop it first "
                        "or choose another --home") from None  # fmt: skip
    return fp
