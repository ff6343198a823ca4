"""Thumbnails, made once per image content and size and kept under <home>/cache/thumbs."""

from __future__ import annotations

import io
from pathlib import Path

from viscover.fsutil import atomic_write_bytes
from viscover.imaging import decode_image, read_image_bytes

SIZES = (160, 320, 640)  # the only sizes served: a fixed set keeps the cache bounded


def thumbnail(uri: str, sha256: str, size: int, cache: Path, *, max_pixels: int, max_bytes: int) -> Path:
    """Path of the JPEG thumbnail (longest side `size`) of the image at `uri`, creating it if needed."""
    path = cache / sha256[:2] / f"{sha256}-{size}.jpg"
    if path.is_file():
        return path
    data = read_image_bytes(uri, max_bytes=max_bytes)
    img = decode_image(data, max_pixels=max_pixels, name=uri, min_size=size)
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=82, optimize=True, progressive=True)
    atomic_write_bytes(path, buf.getvalue())
    return path
