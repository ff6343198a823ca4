"""Recognising a full disk in what file writes and SQLite raise, so that every shell can say "no space left"
instead of showing a traceback (OSError ENOSPC) or SQLite's "disk I/O error"."""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Iterator

from viscover.errors import DiskFullError

# SQLite says "disk I/O error" when it cannot even create its shared-memory file on a full disk: with less than
# this free where it writes, that error is taken for a full disk (a failing disk with space left keeps its message)
LOW_SPACE = 64 * 1024 * 1024
SQLITE_IOERR, SQLITE_FULL = 10, 13  # primary result codes (the low byte of extended ones)
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def disk_full(error: BaseException, where: Path) -> DiskFullError | None:
    """The DiskFullError that `error` means when a full disk (or used-up quota) under `where` caused it, else None.
    Knows OSError (ENOSPC, EDQUOT) and SQLite's errors, also as SQLAlchemy wraps them (`error.orig`)."""
    if isinstance(error, DiskFullError):
        return error
    if (full := DiskFullError.from_os_error(error, where)) is not None:
        return full
    if isinstance(error, OSError) and error.errno is None and _SHORT_WRITE.search(str(error)) and low_space(where):
        return DiskFullError(where)  # numpy's tofile (np.save) reports a short write without an errno
    orig = getattr(error, "orig", error)
    if not isinstance(orig, sqlite3.Error):
        return None
    code = getattr(orig, "sqlite_errorcode", None)
    text = str(orig)
    if (code is not None and code & 0xFF == SQLITE_FULL) or "database or disk is full" in text:
        return DiskFullError(where)
    if ((code is not None and code & 0xFF == SQLITE_IOERR) or "disk I/O error" in text) and low_space(where):
        return DiskFullError(where)
    return None


def low_space(where: Path) -> bool:
    """Whether the file system holding `where` (or its nearest existing parent) has less than LOW_SPACE free."""
    folder = Path(where)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free < LOW_SPACE
    except OSError:
        return False


@contextlib.contextmanager
def disk_full_as_error(where: Path) -> Iterator[None]:
    """Inside the block, a full disk raises DiskFullError naming `where`; every other error passes unchanged."""
    try:
        yield
    except Exception as e:
        full = disk_full(e, where)
        if full is None or full is e:
            raise
        raise full from e
