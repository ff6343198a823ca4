"""Image files and thumbnails, addressed by content hash: only images of catalogue items are ever served, so a
request can never name a path on the server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response

from viscover.errors import BadImageError, BadRequestError, NotFoundError
from viscover.imaging import is_url
from viscover.serve.deps import EngineDep
from viscover.serve.schemas import ERRORS
from viscover.serve.thumbs import SIZES, thumbnail

router = APIRouter(tags=["images"])
SHA = re.compile(r"[0-9a-f]{64}")
MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif",
               "BMP": "image/bmp", "TIFF": "image/tiff", "MPO": "image/jpeg", "AVIF": "image/avif",
               "HEIF": "image/heif"}
CACHE = "public, max-age=31536000, immutable"  # content-addressed: the bytes behind a URL never change


def _catalogue_image(engine, sha256: str) -> tuple[str, str]:
    if not SHA.fullmatch(sha256):
        raise BadRequestError(f"{sha256!r} is not an image hash (64 lowercase hex digits); use an item's image_url")
    found = engine.store.image_of_item_sha(sha256)
    if found is None:
        raise NotFoundError(f"no catalogue item has the image {sha256}")
    return found


@router.get("/images/{sha256}", responses={**ERRORS, 200: {"content": {"image/*": {}}}},
            response_class=Response)
def image(sha256: str, engine: EngineDep):
    """The original image file of a catalogue item."""
    uri, fmt = _catalogue_image(engine, sha256)
    if is_url(uri) or not Path(uri).is_file():
        raise NotFoundError(f"the file of image {sha256} is no longer at its stored location; re-ingest the item")
    return FileResponse(uri, media_type=MEDIA_TYPES.get(fmt.upper(), "application/octet-stream"),
                        headers={"Cache-Control": CACHE})


@router.get("/thumbs/{sha256}", responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}},
            response_class=Response)
def thumb(sha256: str, engine: EngineDep,
          size: Annotated[int, Query(description=f"Longest side in pixels: one of {SIZES}.")] = 320):
    """A JPEG thumbnail of a catalogue item's image, made on first request and cached."""
    if size not in SIZES:
        raise BadRequestError(f"thumbnail size {size}: choose one of {', '.join(map(str, SIZES))}")
    uri, _ = _catalogue_image(engine, sha256)
    s = engine.settings
    try:
        path = thumbnail(uri, sha256, size, engine.home.root / "cache" / "thumbs", max_pixels=s.max_image_pixels,
                         max_bytes=s.max_image_bytes)
    except BadImageError as e:
        raise NotFoundError(f"image {sha256} cannot be shown: {e}") from None
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": CACHE})
