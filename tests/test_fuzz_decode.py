"""Fuzzing the decoder: random bytes and damaged real images never crash it (only BadImageError) and never hang.

Reusable: `image_bytes()` is a hypothesis strategy of hostile image payloads (random bytes, and real JPEG, PNG, GIF,
WebP files with random mutations and truncations) and `fuzz_calls(call, allowed)` runs any callable on them and
fails on any exception outside `allowed` or on a call that does not return within `no_hang` seconds; the server's
upload endpoint can be fuzzed the same way.
"""

from __future__ import annotations

import contextlib
import io
import signal
import threading
from functools import lru_cache
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from conftest import GROCERY, needs_data
from viscover.errors import BadImageError
from viscover.imaging import decode_image, probe_image

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install -e '.[dev]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = needs_data
PHOTO = GROCERY / "train/Fruit/Banana/Banana_001.jpg"
LIMIT = 4_000_000  # pixels: keeps a mutated header that claims a huge size cheap to refuse
HANG_SECONDS = 20  # far above any decode of these small images; only a hang trips it
EXAMPLES = 300


@lru_cache(maxsize=1)
def seed_images() -> tuple[bytes, ...]:
    """Small real images in each common format: what a mutation starts from."""
    photo = Image.open(PHOTO).convert("RGB").resize((96, 96))

    def enc(img: Image.Image, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        return buf.getvalue()

    red = Image.new("RGB", photo.size, (255, 0, 0))
    return (
        PHOTO.read_bytes()[:60_000],  # the real camera JPEG
        enc(photo, "JPEG", quality=80, progressive=True),
        enc(photo, "PNG"),
        enc(photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=32), "PNG", transparency=0),
        enc(Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257), "PNG"),
        enc(photo.convert("P"), "GIF", save_all=True, append_images=[red.convert("P")], duration=50),
        enc(photo, "WEBP", quality=70),
        enc(photo, "WEBP", save_all=True, append_images=[red], duration=50),
    )


@st.composite
def image_bytes(draw) -> bytes:
    """Hostile payloads: random bytes, or a real image with random byte edits, insertions and a truncation."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=4096))
    data = bytearray(draw(st.sampled_from(seed_images())))
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["set", "insert", "delete", "header"]))
        if action == "set":
            data[pos] = draw(st.integers(0, 255))
        elif action == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        else:  # the first bytes hold sizes, counts and offsets: the likeliest to trip a parser
            data[draw(st.integers(0, min(63, len(data) - 1)))] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
        if not data:
            break
    if data and draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


@contextlib.contextmanager
def no_hang(seconds: float = HANG_SECONDS):
    """Raise TimeoutError in the block if it runs longer than `seconds` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise TimeoutError(f"no result after {seconds} s: the decoder hangs on this input")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def fuzz_calls(call: Callable[[bytes], object], allowed: tuple[type[BaseException], ...] = (BadImageError,),
               max_examples: int = EXAMPLES) -> None:
    """Run `call` on `max_examples` hostile payloads; anything but a return or an `allowed` exception fails."""

    @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(image_bytes())
    def run(data: bytes) -> None:
        with no_hang():
            try:
                call(data)
            except allowed:
                pass

    run()


def test_decode_image_raises_only_bad_image_error():
    fuzz_calls(lambda data: decode_image(data, max_pixels=LIMIT, name="fuzz.jpg", min_size=64))


def test_probe_image_raises_only_bad_image_error():
    fuzz_calls(lambda data: probe_image(data, max_pixels=LIMIT, name="fuzz.jpg"))


def test_the_payloads_reach_both_outcomes():
    """The strategy is worth running only if some payloads still decode and others are refused."""
    outcomes: set[str] = set()

    def call(data: bytes) -> None:
        try:
            decode_image(data, max_pixels=LIMIT, name="fuzz")
            outcomes.add("decoded")
        except BadImageError:
            outcomes.add("refused")

    fuzz_calls(call, allowed=(), max_examples=60)
    assert outcomes == {"decoded", "refused"}
