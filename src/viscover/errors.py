"""Errors a user can cause. Each message names the input and says what is wrong; what to run to fix it depends on
where the user is (a shell command, an HTTP request, a Python call), so lower layers name the fix as a `Remedy`
and each shell phrases it in its own terms (viscover.cli.hints, viscover.serve.hints)."""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Remedy:
    """The operation that would fix an error, e.g. Remedy("index", model="hf:...") when no index exists yet.

    Actions (each shell's hints module phrases every one): "index" (embed and index the catalogue),
    "rebuild-index" (rebuild a damaged index from the stored embeddings), "create-home" (no catalogue at a home:
    ingest into it or point at another), "ingest" (ingest an item again, e.g. its image file moved),
    "list-items" / "list-boards" (find valid ids), "ingest-images" (an empty catalogue), "allow-image-root" (let
    manifests read images from a folder), "image-url" (address images as items' image URLs give them),
    "train-ranker" (train the related-items ranker again), "ingest-engagement" (load an engagement log),
    "force-save" (save a ranker that lost to the heuristic), "ingest-boards" (add board memberships: a manifest
    with a boards column), "train-graph" (train the catalogue's graph embeddings `model`), "set-detector"
    (configure an object detector model), "free-space" (free some space on the disk holding `path`, then run the
    command or request again)."""

    action: str
    model: str | None = None
    path: str | None = None  # a file or folder the fix concerns (shown by local shells only, never over HTTP)


Hint = Callable[[Remedy], "str | None"]  # a shell's phrasing of a remedy (None: nothing to add)


def with_remedy(text: str, remedy: Remedy | None, hint: Hint | None) -> str:
    """`text`, followed by a shell's phrasing of `remedy` when there is one: how errors and skipped rows are shown."""
    said = hint(remedy) if hint is not None and remedy is not None else None
    return f"{text}; {said}" if said else text


class ViscoverError(Exception):
    """Base of every error caused by input (a file, a row, an id, a request), not by a bug."""

    def __init__(self, message: str = "", *, remedy: Remedy | None = None):
        super().__init__(message)
        self.remedy = remedy

    def describe(self, hint: Hint | None = None) -> str:
        """The message, followed by a shell's phrasing of the remedy."""
        return with_remedy(str(self), self.remedy, hint)


class ConfigError(ViscoverError):
    """A setting or option has an unusable value."""


class NotFoundError(ViscoverError):
    """An item, board, model or index that was asked for does not exist."""


class BadImageError(ViscoverError):
    """An image cannot be read, decoded or is refused (too large, not an image)."""


class BadManifestError(ViscoverError):
    """A manifest file or one of its rows cannot be used."""


class BadRequestError(ViscoverError):
    """A query parameter is malformed, e.g. a crop box outside the image."""


class ModelError(ViscoverError):
    """An embedding model cannot be found, exported or loaded."""


class UnavailableError(ViscoverError):
    """An optional feature that is not set up here, e.g. object detection without a detector model."""


class IndexCorruptError(ViscoverError):
    """Index files are missing, truncated or fail their checksum; rebuild them from stored embeddings."""


class DiskFullError(ViscoverError):
    """A write failed because the disk is full or the quota used up (ENOSPC, EDQUOT, SQLite's "database or disk is
    full"): what was saved before is kept, and the same command or request completes once space is freed. The
    message names no path (the server shows it); the remedy carries the folder for local shells."""

    def __init__(self, where: str | Path | None = None, *, quota: bool = False):
        what = "disk quota exceeded" if quota else "no space left on the disk"
        super().__init__(what, remedy=Remedy("free-space", path=str(where) if where else None))
        self.quota = quota

    @classmethod
    def from_os_error(cls, error: BaseException, where: str | Path | None = None) -> "DiskFullError | None":
        """The DiskFullError an OSError with ENOSPC or EDQUOT means (`where` defaults to the file it names), or
        None for any other error."""
        if not isinstance(error, OSError) or error.errno not in (errno.ENOSPC, errno.EDQUOT):
            return None
        return cls(where or error.filename, quota=error.errno == errno.EDQUOT)
