"""Fuzzing the upload endpoints: hostile image payloads never get a 500 (or hang) from search or detection."""

from __future__ import annotations

import pytest

from conftest import DETECTOR, needs_data, needs_detector
from test_fuzz_decode import image_bytes

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install -e '.[dev]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402

pytestmark = [needs_data, pytest.mark.slow]
ALLOWED = {200, 400, 413, 422}  # found, bad request, too large, not a (usable) image


@pytest.fixture(scope="module")
def client(indexed_home):
    from fastapi.testclient import TestClient

    from viscover import Engine, Settings
    from viscover.serve import ServeOptions, create_app

    engine = Engine(indexed_home, Settings(workers=1, max_image_pixels=4_000_000,
                                           detector=str(DETECTOR) if DETECTOR.is_file() else ""))
    with TestClient(create_app(engine, ServeOptions(api_key="k")), raise_server_exceptions=False) as c:
        yield c
    engine.close()


@given(data=image_bytes())
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_search_upload_never_500(client, data):
    r = client.post("/api/search", params={"k": 3}, files={"file": ("fuzz.jpg", data, "image/jpeg")})
    assert r.status_code in ALLOWED, (r.status_code, r.text[:300])
    assert isinstance(r.json()["detail" if r.status_code != 200 else "results"], (str, list))


@needs_detector
@given(data=image_bytes())
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_detect_upload_never_500(client, data):
    r = client.post("/api/detect", files={"file": ("fuzz.png", data, "image/png")})
    assert r.status_code in ALLOWED, (r.status_code, r.text[:300])
