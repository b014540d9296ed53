"""One writer per results folder, and whether a run that says "running" still is.

The writer holds an flock on `<out>/.lock` and removes the file when it finishes. The kernel drops the lock when
the process dies (even by `kill -9`), so `is_held()` tells a live run from one that was killed or crashed and
left `meta.json` saying "running": readers report the latter as interrupted.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from ramba.errors import BadInputError

LOCK_FILE = ".lock"


@contextmanager
def hold(out: Path):
    path = Path(out) / LOCK_FILE
    f = open(path, "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise BadInputError(f"another ramba-eval run is writing to {out}; wait for it or pick another --out") from None
    try:
        yield
    finally:
        # Unlink while still holding the lock: a run that opens the name later creates a fresh file, and nothing
        # is written here after this point.
        try:
            os.unlink(path)
        except OSError:
            pass
        f.close()


def is_held(out: Path) -> bool:
    """True while some process holds the folder's lock. Read-only: opens the file for reading, takes nothing."""
    path = Path(out) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # fails while a writer holds LOCK_EX
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def effective_status(out: Path, meta: dict | None) -> str:
    """meta's status, except that "running" without a live lock holder is "interrupted" (killed or crashed)."""
    status = (meta or {}).get("status", "unknown")
    if status == "running" and not is_held(out):
        return "interrupted"
    return status
