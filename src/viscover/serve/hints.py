"""What to do, phrased for HTTP clients: the server's wording of each Remedy a lower layer attaches to an error.
Never a server path: `Remedy.path` is for local shells only."""

from __future__ import annotations

from viscover import Remedy, ViscoverError


def http_hint(remedy: Remedy) -> str | None:
    """The request (or server-side command) that fixes an error, or None when a client can do nothing about it."""
    return {
        "index": "the server's catalogue must be indexed first (`viscover index` on the server)",
        "rebuild-index": "rebuild it with `viscover index` on the server",
        "ingest": "ingest the item again (POST /api/items)",
        "list-items": "list items with GET /api/items",
        "allow-image-root": "the server's image_roots setting can allow the folder",
        "list-boards": "list boards with GET /api/boards",
        "image-url": "use an item's image_url",
        "train-ranker": "retrain the ranker with `viscover rank train` on the server",
        "free-space": "the server's operator must free some space on it, then retry",
    }.get(remedy.action)


def detail(error: ViscoverError) -> str:
    """The error's message followed by the server's hint for its remedy."""
    return error.describe(http_hint)
