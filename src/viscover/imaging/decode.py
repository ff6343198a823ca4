"""Decode image bytes into an upright RGB picture, whatever the file's mode, orientation or frame count.

Handled: EXIF orientation (invalid values ignored); palette, alpha (composited on white), CMYK (through its ICC
profile when present), 16-bit, 32-bit and float greyscale; animated GIF/WebP/PNG (first frame); AVIF, and HEIC
when pillow-heif is installed. Refused with a clear reason (BadImageError, never another exception): empty files,
non-images, HEIC/AVIF without a decoder, truncated or corrupt data, images over the pixel limit.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from viscover.errors import BadImageError
from viscover.imaging.geometry import CropBox

try:  # optional HEIC/AVIF support; absent by default
    import pillow_heif  # type: ignore

    pillow_heif.register_heif_opener()
except Exception:  # pragma: no cover - depends on the environment
    pass

_ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_ALPHA_MODES = {"RGBA", "LA", "La", "RGBa", "PA"}


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: upright size, file format, pixel mode and frame count."""

    width: int
    height: int
    format: str
    mode: str
    frames: int = 1


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    if not data:
        raise BadImageError(f"{name}: empty file (0 bytes)")
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels  # our own limit (checked below) is the one that speaks
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        container = _unsupported_container(data)
        if container:
            raise BadImageError(f"{name}: unsupported format: {container}") from None
        raise BadImageError(f"{name}: not an image Pillow can read (unknown or unsupported format)") from None
    except Image.DecompressionBombError as e:  # Pillow's own guard, at twice its (global) limit
        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(found.group(1)):,} pixels" if found else "the image"
        raise BadImageError(f"{name}: {size} is over the limit of {max_pixels:,} (possible decompression bomb; "
                            "raise max_image_pixels to accept it)") from None
    except Exception as e:  # Pillow raises many kinds on corrupt headers
        raise BadImageError(f"{name}: unreadable image header ({type(e).__name__}: {e})") from None
    w, h = img.size
    if w <= 0 or h <= 0:
        raise BadImageError(f"{name}: image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise BadImageError(f"{name}: {w}x{h} = {w * h:,} pixels is over the limit of {max_pixels:,} "
                            "(possible decompression bomb; raise max_image_pixels to accept it)")
    return img


_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


def _unsupported_container(data: bytes) -> str:
    """Name a known image container Pillow could not open (HEIC/AVIF without their plugin), with the fix."""
    if data[4:8] != b"ftyp":
        return ""
    size = int.from_bytes(data[:4], "big")
    box = data[8:min(max(size, 16), 256)]
    brands = {box[i:i + 4] for i in range(0, len(box) - 3, 4)}
    if brands & _AVIF_BRANDS:
        return "AVIF image, and this Pillow has no AVIF decoder (install Pillow >= 11.3 or pillow-avif-plugin)"
    if brands & _HEIF_BRANDS:
        return "HEIC/HEIF image, and no HEIF decoder is installed (pip install pillow-heif)"
    return ""


def _orientation(img: Image.Image) -> int:
    """EXIF orientation 1-8; anything else (missing, out of range, wrong type, unreadable EXIF) means upright."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = img.getexif().get(0x0112, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def probe_image(data: bytes, *, max_pixels: int, name: str = "image") -> ImageInfo:
    """Read only the header: cheap validation and upright dimensions for the catalogue."""
    img = _open(data, name, max_pixels)
    w, h = img.size
    if _orientation(img) in _ROTATED:
        w, h = h, w
    return ImageInfo(w, h, img.format or "unknown", img.mode, _frames(img))


def _frames(img: Image.Image) -> int:
    """Frame count; a damaged later frame does not spoil the first one (the only one used), so it counts as 1."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return max(1, int(getattr(img, "n_frames", 1) or 1))
    except Exception:
        return 1


def decode_image(data: bytes, *, max_pixels: int, name: str = "image", crop: CropBox | None = None,
                 min_size: int | None = None) -> Image.Image:
    """Decode to an upright RGB image, optionally cropped to `crop` (in upright pixel coordinates).

    `min_size` lets JPEG decode at a reduced scale (DCT scaling) when the result keeps at least that many pixels
    on each side: a large speed-up for big photos that are only going to be shrunk for the model anyway.
    """
    img = _open(data, name, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if min_size and crop is None and img.format == "JPEG":
                img.draft("RGB", (min_size, min_size))
            img.seek(0)  # animated images: the first frame
            img.load()
            if _orientation(img) != 1:  # exif_transpose copies even upright images: only call it when needed
                img = _transposed(img)
            rgb = _to_rgb(img)
    except BadImageError:
        raise
    except Exception as e:
        raise BadImageError(f"{name}: corrupt or truncated image data ({type(e).__name__}: {e})") from None
    if crop is not None:
        crop.check_within(rgb.width, rgb.height, what=f"image ({name})")
        rgb = rgb.crop(crop.as_pil())
    return rgb


def _transposed(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:  # EXIF too damaged to apply: the pixels themselves are still good
        return img


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "CMYK" and img.info.get("icc_profile"):
        converted = _icc_to_srgb(img)
        if converted is not None:
            return converted
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_rgb(img)
    return img.convert("RGB")


def _icc_to_srgb(img: Image.Image) -> Image.Image | None:
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
        return ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except Exception:
        return None


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float greyscale: map the value range to 8 bits instead of clipping it.

    8-bit-range values are kept, 16-bit ones scaled by 1/257; anything else (floats, negative or wider integers)
    is stretched from its finite minimum to its finite maximum. NaN and infinities become black.
    """
    arr = np.asarray(img, dtype=np.float32)
    finite = np.isfinite(arr)
    lo, hi = (float(arr[finite].min()), float(arr[finite].max())) if finite.any() else (0.0, 0.0)
    if img.mode != "F" and lo >= 0 and hi <= 255:
        pass
    elif img.mode != "F" and lo >= 0 and hi <= 65535:
        arr = arr / 257.0
    else:
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    grey = np.clip(np.rint(np.where(finite, arr, 0.0)), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")
