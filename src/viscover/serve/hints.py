"""What to do, phrased for HTTP clients: the server's wording of each Remedy a lower layer attaches to an error.
Never a server path: `Remedy.path` is for local shells only, and any path left in a message is cut to its last
part before it is sent (`redact_paths`)."""

from __future__ import annotations

import os
import re
from typing import Any

from viscover import Remedy, ViscoverError

# an absolute path in running text: after a space, quote or bracket (not inside a URL), up to a space or quote
_PATH = re.compile(r"(?<![\w.:/~-])/[^\s'\"<>|,;():]+")


def http_hint(remedy: Remedy) -> str | None:
    """The request (or server-side command) that fixes an error, or None when a client can do nothing about it."""
    return {
        "index": "the server's catalogue must be indexed first (`viscover index` on the server)",
        "rebuild-index": "rebuild it with `viscover index` on the server",
        "ingest": "ingest the item again (POST /api/items)",
        "list-items": "find ids with GET /api/items?q=TEXT",
        "ingest-images": "add items with POST /api/items",
        "set-detector": "the server must be started with a detector (`viscover serve --detector MODEL.onnx`)",
        "allow-image-root": "the server's image_roots setting can allow the folder",
        "list-boards": "list boards with GET /api/boards",
        "image-url": "use an item's image_url",
        "train-ranker": "retrain the ranker with `viscover rank train` on the server",
        "ingest-boards": "add items with boards (POST /api/items with a manifest that has a boards column)",
        "train-graph": "graph embeddings must be trained first (`viscover train-graph` on the server)",
        "free-space": "the server's operator must free some space on it, then retry",
    }.get(remedy.action)


def redact_paths(text: str) -> str:
    """`text` with each path on this machine (one whose top folder exists here, e.g. /srv/photos/a.jpg) cut to
    its last part (.../a.jpg): messages written for local shells name files, HTTP clients must not learn the
    server's layout. Request paths such as /api/items have no such top folder and stay."""
    def cut(match: re.Match) -> str:
        path = match.group(0)
        core = path.rstrip(".")  # a full stop ending the sentence
        parts = core.split("/")
        if len(parts) < 3 or not os.path.isdir("/" + parts[1]):
            return path
        return ".../" + (parts[-1] or parts[-2]) + path[len(core):]

    return _PATH.sub(cut, text)


def redact_all(value: Any) -> Any:
    """`redact_paths` on every string of a JSON-like value (a job's result)."""
    if isinstance(value, str):
        return redact_paths(value)
    if isinstance(value, dict):
        return {k: redact_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_all(v) for v in value]
    return value


def detail(error: ViscoverError) -> str:
    """The error's message followed by the server's hint for its remedy, with no server path in it."""
    return redact_paths(error.describe(http_hint))
