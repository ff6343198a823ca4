"""The folders under the home's uploads/ that hold a job's uploaded files until the job has read them: one per job,
named after the server process that made it, so that a restarted server can remove those its killed predecessor
left (their jobs died with it) without touching the live uploads of another server on the same home."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Iterator

PROCESS_STARTED = time.time()  # (about) when this process started: older folders with its pid are a predecessor's


@contextlib.contextmanager
def upload_folder(uploads: Path, hint: str) -> Iterator[Path]:
    """A new folder under `uploads` for one job's files, removed again when saving them fails (an upload over its
    limit, a full disk). The job removes it when done."""
    folder = uploads / f"{hint}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def remove_stale_uploads(uploads: Path, before: float) -> int:
    """Remove what jobs that never finished left under `uploads`: entries older than `before` whose server process
    is gone (or unknown). Returns how many were removed."""
    removed = 0
    for entry in sorted(uploads.iterdir()) if uploads.is_dir() else []:
        try:
            if entry.lstat().st_mtime >= before or _owner_alive(entry):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return removed


def _owner_alive(entry: Path) -> bool:
    """Whether the server process that made this upload folder may still be running its job."""
    parts = entry.name.split("-")
    if len(parts) < 3 or not parts[1].isdigit():
        return False  # not named by a server that records its pid (e.g. an older viscover)
    pid = int(parts[1])
    if pid == os.getpid():  # ours only if made since this process started (else a predecessor had our pid)
        return entry.lstat().st_mtime >= PROCESS_STARTED
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
