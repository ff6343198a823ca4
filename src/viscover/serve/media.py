"""Image files and thumbnails, addressed by content hash: only images of catalogue items are ever served, so a
request can never name a path on the server."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response

from viscover import THUMBNAIL_SIZES
from viscover.serve.deps import EngineDep
from viscover.serve.schemas import ERRORS

router = APIRouter(tags=["images"])
MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif",
               "BMP": "image/bmp", "TIFF": "image/tiff", "MPO": "image/jpeg", "AVIF": "image/avif",
               "HEIF": "image/heif"}
CACHE = "public, max-age=31536000, immutable"  # content-addressed: the bytes behind a URL never change


@router.get("/images/{sha256}", responses={**ERRORS, 200: {"content": {"image/*": {}}}},
            response_class=Response)
def image(sha256: str, engine: EngineDep):
    """The original image file of a catalogue item."""
    data, fmt = engine.image_bytes(sha256)  # verified against the hash: a file replaced since ingest is refused
    return Response(data, media_type=MEDIA_TYPES.get(fmt.upper(), "application/octet-stream"),
                    headers={"Cache-Control": CACHE})


@router.get("/thumbs/{sha256}", responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}},
            response_class=Response)
def thumb(sha256: str, engine: EngineDep,
          size: Annotated[int, Query(description=f"Longest side in pixels: one of {THUMBNAIL_SIZES}.")] = 320):
    """A JPEG thumbnail of a catalogue item's image, made on first request and cached."""
    return FileResponse(engine.thumbnail(sha256, size), media_type="image/jpeg", headers={"Cache-Control": CACHE})
