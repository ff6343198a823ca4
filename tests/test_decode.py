"""Decoding real photos in every awkward form a catalogue contains, and refusing what cannot be decoded."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import GROCERY, needs_data
from viscover.embed.base import InputSpec, to_pixels
from viscover.errors import BadImageError, BadRequestError
from viscover.imaging import CropBox, decode_image, parse_crop, probe_image

pytestmark = needs_data
LIMIT = 80_000_000
PHOTO = GROCERY / "train/Fruit/Banana/Banana_001.jpg"


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(PHOTO).convert("RGB")


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def mean_rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img, np.float64).reshape(-1, 3).mean(0)


def test_plain_jpeg(photo):
    data = PHOTO.read_bytes()
    info = probe_image(data, max_pixels=LIMIT)
    img = decode_image(data, max_pixels=LIMIT)
    assert (info.width, info.height, info.format) == (img.width, img.height, "JPEG")
    assert img.mode == "RGB"


def test_exif_orientation_is_applied(photo):
    wide = photo.crop((0, 0, photo.width, photo.height // 2))  # landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    data = encode(wide, "JPEG", exif=exif.tobytes(), quality=95)
    info = probe_image(data, max_pixels=LIMIT)
    img = decode_image(data, max_pixels=LIMIT)
    assert (info.width, info.height) == (wide.height, wide.width)  # upright: portrait
    assert img.size == (wide.height, wide.width)


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA", "L", "CMYK", "1"])
def test_modes_become_rgb(photo, mode):
    if mode == "P":
        src = photo.convert("P", palette=Image.Palette.ADAPTIVE)
    else:
        src = photo.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    img = decode_image(encode(src, fmt), max_pixels=LIMIT)
    assert img.mode == "RGB" and img.size == photo.size
    if mode in ("P", "RGBA", "CMYK"):
        assert np.abs(mean_rgb(img) - mean_rgb(photo)).max() < 12


def test_transparent_pixels_are_composited_on_white(photo):
    rgba = photo.convert("RGBA")
    alpha = Image.new("L", photo.size, 0)  # fully transparent
    rgba.putalpha(alpha)
    img = decode_image(encode(rgba, "PNG"), max_pixels=LIMIT)
    assert mean_rgb(img).min() > 254


def test_palette_with_transparency(photo):
    pal = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    data = encode(pal, "PNG", transparency=0)
    img = decode_image(data, max_pixels=LIMIT)
    assert img.mode == "RGB"


def test_16_bit_greyscale_keeps_its_range(photo):
    grey = np.asarray(photo.convert("L"), np.uint16) * 257  # full 16-bit range
    img16 = Image.fromarray(grey.astype(np.uint16))  # mode I;16
    img = decode_image(encode(img16, "PNG"), max_pixels=LIMIT)
    expected = np.asarray(photo.convert("L"), np.float64)
    assert np.abs(np.asarray(img.convert("L"), np.float64) - expected).mean() < 2  # not clipped to white


def test_animated_gif_uses_first_frame(photo):
    frames = [photo.convert("P"), Image.new("RGB", photo.size, (255, 0, 0)).convert("P")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    info = probe_image(buf.getvalue(), max_pixels=LIMIT)
    img = decode_image(buf.getvalue(), max_pixels=LIMIT)
    assert info.frames == 2
    assert np.abs(mean_rgb(img) - mean_rgb(photo)).max() < 20  # not the red frame


@pytest.mark.parametrize("size", [(1, 1), (3000, 3), (3, 3000)])
def test_tiny_and_extreme_aspect_images_reach_model_size(photo, size):
    img = decode_image(encode(photo.resize(size), "PNG"), max_pixels=LIMIT)
    pixels = to_pixels(img, InputSpec(size=224, resize=224))
    assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8


def test_to_pixels_crops_the_centre(photo):
    wide = Image.new("RGB", (300, 100), (0, 0, 0))
    wide.paste(Image.new("RGB", (100, 100), (255, 255, 255)), (100, 0))
    pixels = to_pixels(wide, InputSpec(size=50, resize=50))
    assert pixels.shape == (50, 50, 3) and pixels.min() == 255  # only the white centre square


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (b"this is a text file, not a picture", "not an image"),
])
def test_not_images_are_refused(data, reason):
    with pytest.raises(BadImageError, match=reason):
        probe_image(data, max_pixels=LIMIT, name="x.jpg")


def test_truncated_jpeg_is_refused_at_decode():
    data = PHOTO.read_bytes()[:3000]
    probe_image(data, max_pixels=LIMIT)  # the header is intact
    with pytest.raises(BadImageError, match="x.jpg: corrupt or truncated"):
        decode_image(data, max_pixels=LIMIT, name="x.jpg")


def test_pixel_limit_refuses_decompression_bombs(photo):
    data = encode(photo.resize((2000, 2000)), "PNG")
    with pytest.raises(BadImageError, match="over the limit"):
        probe_image(data, max_pixels=1_000_000, name="bomb.png")


def test_crop_boxes(photo):
    data = PHOTO.read_bytes()
    img = decode_image(data, max_pixels=LIMIT, crop=CropBox(10, 20, 100, 50))
    assert img.size == (100, 50)
    assert np.array_equal(np.asarray(img), np.asarray(photo.crop((10, 20, 110, 70))))
    with pytest.raises(BadRequestError, match="does not fit"):
        decode_image(data, max_pixels=LIMIT, crop=CropBox(300, 300, 100, 100))
    assert parse_crop("1,2,3,4") == CropBox(1, 2, 3, 4)
    for bad in ["1,2,3", "a,b,c,d", "0,0,0,5", "-1,0,5,5", "inf,0,10,10", "1e400,0,10,10", "nan,0,10,10",
                "0,0,-inf,5"]:
        with pytest.raises(BadRequestError):
            parse_crop(bad)
