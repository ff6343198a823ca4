"""Thumbnails, made once per image content and size and kept under <home>/cache/thumbs."""

from __future__ import annotations

import io
from pathlib import Path

from typing import Callable

from viscover.fsutil import atomic_write_bytes
from viscover.imaging.decode import decode_image

SIZES = (160, 320, 640)  # the only sizes served: a fixed set keeps the cache bounded


def thumbnail(sha256: str, size: int, cache: Path, load: Callable[[], bytes], *, max_pixels: int) -> Path:
    """Path of the JPEG thumbnail (longest side `size`) of the image with this content hash, made from the bytes
    `load` returns when it is not cached yet."""
    path = cache / sha256[:2] / f"{sha256}-{size}.jpg"
    if path.is_file():
        return path
    img = decode_image(load(), max_pixels=max_pixels, name=f"image {sha256}", min_size=size)
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=82, optimize=True, progressive=True)
    atomic_write_bytes(path, buf.getvalue())
    return path
