"""Every kind of bad image a catalogue meets, in one folder beside good photos, through `Engine.ingest` + `index`.

Each case is either handled (ingested, embedded, and found first when searched by itself) or skipped with its own
specific reason (in the IngestReport or the IndexReport); the ingest never stops, and the good photos are always
ingested and searchable. The cases are generated here from real photos with Pillow and numpy.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image, features

from conftest import GROCERY, needs_data
from viscover import Engine, Settings
from viscover.errors import BadImageError
from viscover.imaging import decode_image, probe_image

pytestmark = needs_data
PIXEL_LIMIT = 5_000_000  # set low for the test (default 80M) so a real over-limit image stays cheap to make
OK = "ok"


def photos() -> list[Path]:
    """Distinct real photos, one per case, so every case has its own embedding."""
    return sorted((GROCERY / "train").rglob("*.jpg"))[::61]


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_rgb16(pixels: np.ndarray) -> bytes:
    """A 48-bit RGB PNG (Pillow cannot write one)."""
    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: refused from the header, before any pixel is allocated."""
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


def exif_orientation_raw(type_code: int, count: int, value: bytes) -> bytes:
    """An EXIF block with one Orientation entry of any TIFF type (Pillow only writes well-formed ones)."""
    entry = struct.pack(">HHI", 0x0112, type_code, count) + value.ljust(4, b"\x00")
    return b"Exif\x00\x00MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1) + entry + b"\x00\x00\x00\x00"


def exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def animated(first: Image.Image, fmt: str) -> bytes:
    red = Image.new("RGB", first.size, (255, 0, 0))
    if fmt == "GIF":
        return encode(first.convert("P"), fmt, save_all=True, append_images=[red.convert("P")], duration=80)
    return encode(first, fmt, save_all=True, append_images=[red], duration=80)


def truncated_in_second_frame(first: Image.Image) -> bytes:
    """An animated GIF cut just after its second frame's header: the first frame is whole, the second has no data."""
    gif = animated(first, "GIF")
    flags = gif[10]
    pos, frames = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0), 0
    while gif[pos] != 0x3B:
        if gif[pos] == 0x21:  # extension: label, then sub-blocks
            pos += 2
        else:  # image descriptor, local colour table, LZW code size, then sub-blocks
            frames += 1
            local = gif[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            if frames == 2:
                return gif[:pos]
            pos += 1
        while gif[pos]:
            pos += gif[pos] + 1
        pos += 1
    raise AssertionError("the GIF has one frame")


HEIC_REFUSAL = r"unsupported format: HEIC/HEIF image.*pip install pillow-heif"


def heic_or_header(photo: Image.Image) -> tuple[bytes, str]:
    """A real HEIC when Pillow can write one (pillow-heif, registered by viscover.imaging: then handled), else a
    HEIC header (then a clear refusal). Only Pillow's "no such format" KeyError means there is no encoder: any other
    error is a broken HEIF encoder, and fails the test instead of passing for an expected refusal."""
    try:
        return encode(photo, "HEIF"), OK
    except KeyError as e:  # Image.save looks the format up in Image.SAVE
        if e.args != ("HEIF",):
            raise
        box = b"ftypheic\x00\x00\x00\x00mif1heic"
        return struct.pack(">I", len(box) + 4) + box + b"\x00" * 64, HEIC_REFUSAL


@dataclass(frozen=True)
class Case:
    """A file to put in the folder, built from a real photo, and what must become of it: OK or a reason regex."""

    name: str
    build: Callable[[Image.Image, bytes], bytes | tuple[bytes, str]]
    expect: str = OK
    stage: str = "ingest"  # where a refusal is reported: "ingest" (IngestReport) or "index" (IndexReport)


CASES = [
    # handled: read, turned into upright RGB, embedded
    Case("cmyk.jpg", lambda im, raw: encode(im.convert("CMYK"), "JPEG", quality=90)),
    Case("rgb-16bit.png", lambda im, raw: png_rgb16(np.asarray(im, np.uint16) * 257)),
    Case("grey-16bit.png", lambda im, raw: encode(Image.fromarray(np.asarray(im.convert("L"), np.uint16) * 257),
                                                  "PNG")),
    Case("grey-float.tif", lambda im, raw: encode(Image.fromarray(np.asarray(im.convert("L"), np.float32) / 255),
                                                  "TIFF")),
    Case("palette-transparent.png", lambda im, raw: encode(im.convert("P", palette=Image.Palette.ADAPTIVE),
                                                           "PNG", transparency=0)),
    Case("palette-transparent.gif", lambda im, raw: encode(im.convert("P", palette=Image.Palette.ADAPTIVE),
                                                           "GIF", transparency=0)),
    Case("grey-alpha.png", lambda im, raw: encode(im.convert("LA"), "PNG")),
    Case("animated.gif", lambda im, raw: animated(im, "GIF")),
    Case("animated.webp", lambda im, raw: animated(im, "WEBP")),
    Case("animated.png", lambda im, raw: animated(im, "PNG")),
    Case("animated-cut-in-frame-2.gif", lambda im, raw: truncated_in_second_frame(im)),
    Case("one-pixel.png", lambda im, raw: encode(im.resize((1, 1)), "PNG")),
    Case("wide-10000x1.jpg", lambda im, raw: encode(im.resize((10000, 1)), "JPEG")),
    Case("tall-1x10000.png", lambda im, raw: encode(im.resize((1, 10000)), "PNG")),
    Case("exif-rotated.jpg", lambda im, raw: encode(im, "JPEG", exif=exif_orientation(6))),
    Case("exif-orientation-9.jpg", lambda im, raw: encode(im, "JPEG", exif=exif_orientation(9))),
    Case("exif-orientation-text.jpg", lambda im, raw: encode(im, "JPEG", exif=exif_orientation_raw(2, 2, b"6\x00"))),
    Case("exif-garbage.jpg", lambda im, raw: encode(im, "JPEG", exif=b"Exif\x00\x00" + b"\xff" * 40)),
    Case("heic.heic", lambda im, raw: heic_or_header(im)),
    # refused while ingesting (header checks)
    Case("empty.jpg", lambda im, raw: b"", r"empty file \(0 bytes\)"),
    Case("text.jpg", lambda im, raw: b"name,price\nbanana,0.25\n", r"not an image Pillow can read"),
    Case("random-bytes.png", lambda im, raw: np.random.default_rng(0).bytes(5000), r"not an image Pillow can read"),
    Case("too-many-pixels.png", lambda im, raw: encode(Image.new("L", (2500, 2500)), "PNG"),
         r"2500x2500 = 6,250,000 pixels is over the limit of 5,000,000"),
    Case("bomb-header.png", lambda im, raw: png_claiming(100_000, 100_000), r"over the limit of 5,000,000"),
    # refused while indexing (the header is fine, the pixel data is not)
    Case("truncated.jpg", lambda im, raw: raw[:len(raw) // 3], r"corrupt or truncated image data", "index"),
    Case("truncated.png", lambda im, raw: encode(im, "PNG")[:3000], r"corrupt or truncated image data", "index"),
    Case("corrupt-data.png", lambda im, raw: corrupt_idat(encode(im, "PNG")), r"corrupt or truncated image data",
         "index"),
]
if features.check("avif"):
    CASES.append(Case("photo.avif", lambda im, raw: encode(im, "AVIF", quality=70)))


def corrupt_idat(png: bytes) -> bytes:
    """Overwrite the middle of the compressed pixel data (the header and chunk layout stay valid)."""
    start = png.index(b"IDAT") + 4
    data = bytearray(png)
    data[start + 200:start + 400] = bytes(range(200))
    return bytes(data)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """The folder of cases and 3 good photos, ingested and indexed; yields (engine, folder, reports, expected)."""
    folder = tmp_path_factory.mktemp("bad-images") / "images"
    folder.mkdir()
    sources = photos()
    assert len(sources) >= len(CASES) + 3, "not enough distinct photos for the cases"
    expected: dict[str, tuple[str, str]] = {}
    for case, src in zip(CASES, sources):
        built = case.build(Image.open(src).convert("RGB"), src.read_bytes())
        data, expect = built if isinstance(built, tuple) else (built, case.expect)
        (folder / case.name).write_bytes(data)
        expected[case.name] = (expect, case.stage)
    for i, src in enumerate(sources[len(CASES):len(CASES) + 3]):
        (folder / f"good-{i}.jpg").write_bytes(src.read_bytes())
        expected[f"good-{i}.jpg"] = (OK, "ingest")
    home = tmp_path_factory.mktemp("bad-images-home")
    with Engine(home, Settings(workers=1, max_image_pixels=PIXEL_LIMIT)) as engine:
        ingest = engine.ingest(folder)
        index = engine.index()
        yield engine, folder, ingest, index, expected


@pytest.mark.parametrize("name", [c.name for c in CASES] + ["good-0.jpg", "good-1.jpg", "good-2.jpg"])
def test_each_case_is_handled_or_skipped_with_its_reason(ingested, name):
    engine, folder, ingest, index, expected = ingested
    expect, stage = expected[name]
    refused_at_ingest = {Path(p.where).name: p.reason for p in ingest.skipped}
    failed_ids = {int(p.where.removeprefix("image ")): p.reason for p in index.failed}
    if expect == OK:
        assert name not in refused_at_ingest, refused_at_ingest.get(name)
        item = engine.store.item(name)
        assert item.image_id not in failed_ids, failed_ids.get(item.image_id)
        hits = engine.search_image(str(folder / name), k=3, collapse=False)
        assert hits[0].item.key == name or hits[0].score - max(h.score for h in hits if h.item.key == name) < 1e-5
    elif stage == "ingest":
        assert name in refused_at_ingest, f"{name} was not refused"
        assert re.search(expect, refused_at_ingest[name]) and name in refused_at_ingest[name]
    else:
        item = engine.store.item(name)  # the header was fine: catalogued, then refused when decoded
        assert re.search(expect, failed_ids[item.image_id]) and name in failed_ids[item.image_id]


def test_the_ingest_ran_through_every_case(ingested):
    engine, folder, ingest, index, expected = ingested
    refusals = sum(1 for expect, stage in expected.values() if expect != OK and stage == "ingest")
    failures = sum(1 for expect, stage in expected.values() if expect != OK and stage == "index")
    assert ingest.rows == len(expected) and len(ingest.skipped) == refusals
    assert ingest.counts.added == len(expected) - refusals
    assert len(index.failed) == failures and index.embedded == len(expected) - refusals - failures
    assert index.size == index.embedded  # refused images are catalogued but never in the index


def test_animated_images_are_embedded_from_their_first_frame(ingested):
    engine, folder, *_ = ingested
    for name in ("animated.gif", "animated.webp", "animated.png", "animated-cut-in-frame-2.gif"):
        with Image.open(folder / name) as img:
            img.seek(0)
            first = encode(img.convert("RGB"), "PNG")
        hits = engine.search_image(first, k=1, collapse=False)
        assert hits[0].item.key == name and hits[0].score > 0.9, (name, hits[0].item.key, hits[0].score)


def test_catalogue_sizes_are_upright_and_ignore_invalid_orientations(ingested):
    engine, folder, *_ = ingested
    rotated = engine.store.item("exif-rotated.jpg")
    with Image.open(folder / "exif-rotated.jpg") as img:
        assert (rotated.width, rotated.height) == (img.height, img.width)
    for name in ("exif-orientation-9.jpg", "exif-orientation-text.jpg", "exif-garbage.jpg"):
        item = engine.store.item(name)
        with Image.open(folder / name) as img:
            assert (item.width, item.height) == img.size, name


# ---- the decoder on its own ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wide() -> Image.Image:
    return Image.open(photos()[0]).convert("RGB").resize((300, 120))


@pytest.mark.parametrize("exif", [exif_orientation(0), exif_orientation(9), exif_orientation(65535),
                                  exif_orientation_raw(2, 2, b"6\x00"), exif_orientation_raw(5, 1, b"\x00\x00\x00\x08"),
                                  b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff"])
def test_invalid_exif_orientation_leaves_the_image_as_stored(wide, exif):
    data = encode(wide, "JPEG", exif=exif)
    info = probe_image(data, max_pixels=PIXEL_LIMIT)
    img = decode_image(data, max_pixels=PIXEL_LIMIT)
    assert (info.width, info.height) == img.size == (300, 120)


@pytest.mark.parametrize("values", [np.array([[0, 1_000_000], [250_000, 500_000]], np.int32),
                                    np.array([[-5, 5], [0, 2]], np.int32),
                                    np.array([[0.0, np.nan], [np.inf, 1.0]], np.float32),
                                    np.full((2, 2), np.nan, np.float32)])
def test_wide_range_greyscale_is_stretched_not_clipped(values):
    img = decode_image(encode(Image.fromarray(values), "TIFF"), max_pixels=PIXEL_LIMIT)
    grey = np.asarray(img.convert("L"))
    finite = np.isfinite(values.astype(np.float64))
    if finite.any() and values[finite].max() > values[finite].min():
        order = np.argsort(values[finite], kind="stable")
        assert grey[finite][order][0] == 0 and grey[finite][order][-1] == 255
        assert np.all(np.diff(grey[finite][order].astype(int)) >= 0)  # the order of values is kept
    assert np.all(grey[~finite] == 0)  # NaN and infinities become black


@pytest.fixture()
def without_a_heif_decoder(monkeypatch):
    """Pillow as it is without pillow-heif: no opener for HEIF files (the encoder, if any, stays, to make one)."""
    Image.init()
    monkeypatch.setattr(Image, "ID", [f for f in Image.ID if f != "HEIF"])
    if "HEIF" in Image.OPEN:
        monkeypatch.delitem(Image.OPEN, "HEIF")


def test_heic_without_a_decoder_names_the_format_and_the_fix(without_a_heif_decoder):
    data, _ = heic_or_header(Image.new("RGB", (8, 8)))  # a real HEIC file when pillow-heif can write one
    assert data[4:12] == b"ftypheic"
    for read in (probe_image, decode_image):
        with pytest.raises(BadImageError, match="x.heic: " + HEIC_REFUSAL):
            read(data, max_pixels=PIXEL_LIMIT, name="x.heic")


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
def test_avif_and_heic_are_decoded_when_an_encoder_and_decoder_exist(wide, fmt):
    if fmt == "HEIF":
        pytest.importorskip("pillow_heif", reason="pillow-heif not installed: HEIC is refused as unsupported")
    elif not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec: AVIF is refused as unsupported")
    img = decode_image(encode(wide, fmt, quality=90), max_pixels=PIXEL_LIMIT)
    assert img.size == (300, 120) and img.mode == "RGB"
    assert np.abs(np.asarray(img, float).mean((0, 1)) - np.asarray(wide, float).mean((0, 1))).max() < 8
