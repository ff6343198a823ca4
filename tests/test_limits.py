"""Request size limits: an uploaded manifest over max_manifest_bytes, and a request body over max_body_bytes whether
it announces its size (Content-Length) or streams in without one (chunked). Each is refused with 413 before any
job is queued, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import shutil
import time

import pytest

from conftest import needs_data

pytestmark = needs_data
KEY = "limits-key"
MANIFEST_LIMIT = 2000
BODY_LIMIT = 1000
CHUNK = 100


@pytest.fixture()
def home(indexed_home, tmp_path):
    """A copy of the indexed home (these tests upload and queue writes)."""
    copy = tmp_path / "home"
    shutil.copytree(indexed_home, copy)
    return copy


def _app(home, *, max_manifest_bytes: int = 512 * 1024 * 1024, max_body_bytes: int = 512 * 1024 * 1024):
    from viscover import Engine, Settings
    from viscover.serve import ServeOptions, create_app

    engine = Engine(home, Settings(workers=1, max_manifest_bytes=max_manifest_bytes))
    return create_app(engine, ServeOptions(api_key=KEY, max_body_bytes=max_body_bytes)), engine


def _err(response, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    for word in words:
        assert word in body["detail"], body["detail"]


def _leftovers(home) -> list:
    uploads = home / "uploads"
    return sorted(uploads.iterdir()) if uploads.exists() else []


def _manifest(size: int) -> bytes:
    """A CSV manifest of exactly `size` bytes (one row, padded in its title)."""
    head = b"id,path,title\nlimit-row,nowhere.jpg,"
    return head + b"t" * (size - len(head) - 1) + b"\n"


# ---- max_manifest_bytes -------------------------------------------------------------------------------------
def test_a_manifest_over_the_limit_is_refused_and_leaves_nothing(home):
    from fastapi.testclient import TestClient

    app, engine = _app(home, max_manifest_bytes=MANIFEST_LIMIT)
    auth = {"X-API-Key": KEY}
    with TestClient(app, raise_server_exceptions=False) as client:
        for size in (MANIFEST_LIMIT + 1, 3 * MANIFEST_LIMIT):
            got = client.post("/api/items/manifest", files={"file": ("big.csv", _manifest(size))}, headers=auth)
            _err(got, 413, "too_large", "big.csv", "2,000 bytes", "max_manifest_bytes")
        assert app.state.jobs.all() == [] and _leftovers(home) == []  # no job, no half-written upload kept

        accepted = client.post("/api/items/manifest", files={"file": ("ok.csv", _manifest(MANIFEST_LIMIT))},
                               headers=auth)
        assert accepted.status_code == 202, accepted.text  # exactly at the limit is fine
        job = _finished(client, accepted.json()["job"]["id"])
        assert job["state"] == "done" and job["result"]["ingest"]["rows"] == 1, job
        assert _leftovers(home) == []  # the job removes its upload when done
    engine.close()


def _finished(client, job_id: str, timeout: float = 120) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        body = client.get(f"/api/jobs/{job_id}", headers={"X-API-Key": KEY}).json()
        if body["state"] in ("done", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_a_large_manifest_is_streamed_in_bounded_reads_and_counted_across_them(home, tmp_path):
    """Over several reads, the bytes add up to the limit (3 MiB against 2.5 MiB is refused, with the whole
    message), and no read asks for the whole file at once (an upload never sits in memory whole)."""
    import io

    from fastapi.testclient import TestClient
    from starlette.datastructures import UploadFile

    from viscover.serve.api_write import _save_upload
    from viscover.serve.deps import TooLargeError

    limit = 5 << 19  # 2.5 MiB
    app, _ = _app(home, max_manifest_bytes=limit)
    with TestClient(app, raise_server_exceptions=False) as client:
        got = client.post("/api/items/manifest", files={"file": ("big.csv", _manifest(3 << 20))},
                          headers={"X-API-Key": KEY})
        _err(got, 413, "too_large")
        assert got.json()["detail"] == ("uploaded manifest 'big.csv' is over the limit of 2,621,440 bytes "
                                        "(max_manifest_bytes)")
    assert _leftovers(home) == []

    class Recording(io.BytesIO):
        sizes: list = []

        def read(self, size=-1):
            self.sizes.append(size)
            return super().read(size)

    data = _manifest(5 << 20)
    upload = UploadFile(Recording(data), filename="m.csv")
    (tmp_path / "up").mkdir()
    saved = _save_upload(upload, tmp_path / "up" / "m.csv", 6 << 20)
    assert saved.read_bytes() == data
    assert all(size is not None and 0 < size <= 4 << 20 for size in Recording.sizes), Recording.sizes
    with pytest.raises(TooLargeError):
        _save_upload(UploadFile(io.BytesIO(data), filename="m.csv"), tmp_path / "up" / "m.csv", 4 << 20)
    # (the endpoint removes a refused upload's folder, as it does when the disk is full: the 413 above left none)


# ---- max_body_bytes -----------------------------------------------------------------------------------------
def _rows(size: int) -> bytes:
    """A valid POST /api/items body of exactly `size` bytes."""
    empty = json.dumps({"items": [{"id": "streamed", "path": "nowhere.jpg", "title": ""}]}).encode()
    return json.dumps({"items": [{"id": "streamed", "path": "nowhere.jpg",
                                  "title": "t" * (size - len(empty))}]}).encode()


def _upload(size: int) -> bytes:
    """A multipart POST /api/search body of `size` bytes (its file is not an image: only reached if not refused)."""
    head = b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="q.jpg"\r\n\r\n'
    tail = b"\r\n--b0undary--\r\n"
    return head + b"x" * (size - len(head) - len(tail)) + tail


def _send(app, body: bytes, *, content_length: bool, path: str = "/api/items",
          content_type: str = "application/json"):
    """POST `body` in CHUNK-byte pieces through httpx's ASGI transport (which hands the app one chunk per
    receive()), with or without a Content-Length header; returns (response, chunks the app pulled)."""
    import httpx

    pulled = 0

    async def chunks():
        nonlocal pulled
        for start in range(0, len(body), CHUNK):
            pulled += 1
            yield body[start:start + CHUNK]

    async def post():
        headers = {"X-API-Key": KEY, "Content-Type": content_type}
        if content_length:
            headers["Content-Length"] = str(len(body))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://testserver") as client:
            response = await client.post(path, content=chunks(), headers=headers)
        assert ("content-length" in response.request.headers) == content_length
        assert ("transfer-encoding" in response.request.headers) != content_length
        return response

    response = asyncio.run(post())
    return response, pulled


def test_a_streamed_body_over_the_limit_is_refused_while_it_streams_in(home):
    app, engine = _app(home, max_body_bytes=BODY_LIMIT)
    try:
        body = _rows(10 * BODY_LIMIT)
        chunked, pulled = _send(app, body, content_length=False)
        _err(chunked, 413, "too_large", "1,000 bytes")
        # reading stopped at the chunk that crossed the limit: the endpoint never saw the whole body
        assert pulled == BODY_LIMIT // CHUNK + 1 < len(body) // CHUNK, pulled
        announced, pulled = _send(app, body, content_length=True)
        _err(announced, 413, "too_large", "1,000 bytes")
        assert pulled == 0  # refused from the Content-Length header, before reading any of it
        assert app.state.jobs.all() == [] and _leftovers(home) == []
        for content_length in (False, True):  # a multipart upload too (a search: parsed by another reader)
            upload, pulled = _send(app, _upload(10 * BODY_LIMIT), content_length=content_length, path="/api/search",
                                   content_type="multipart/form-data; boundary=b0undary")
            _err(upload, 413, "too_large", "1,000 bytes")
            assert pulled == (0 if content_length else BODY_LIMIT // CHUNK + 1)

        small, pulled = _send(app, _rows(BODY_LIMIT), content_length=False)  # at the limit, streamed: accepted
        assert small.status_code == 202 and pulled == BODY_LIMIT // CHUNK, small.text
        assert len(app.state.jobs.all()) == 1
    finally:
        app.state.jobs.close()
        engine.close()


# ---- form fields: Starlette's own per-field limit ----------------------------------------------------------------
def _field(size: int) -> bytes:
    """A multipart body whose one part is a form field (no filename) of `size` bytes."""
    return (b'--b0undary\r\nContent-Disposition: form-data; name="file"\r\n\r\n' + b"x" * size
            + b"\r\n--b0undary--\r\n")


@pytest.mark.parametrize("chunked", [True, False])
def test_a_form_field_over_a_mebibyte_is_413_not_400_on_a_real_server(home, chunked):
    """Starlette refuses a non-file form field over 1 MiB (it would sit in memory) with a 400 "Part exceeded
    maximum size"; the body limit is far larger, so a big chunked upload sent as a field got that 400. Too large
    is 413, whichever limit it hits, with what to do."""
    import httpx

    from live_server import LiveServer

    body = _field(3 << 20)
    with LiveServer(home, api_key=KEY) as server:
        for path in ("/api/search", "/api/items/manifest"):
            content = (body[i:i + 65536] for i in range(0, len(body), 65536)) if chunked else body
            got = httpx.post(f"{server.base}{path}", content=content,
                             headers={"X-API-Key": KEY, "Content-Type": "multipart/form-data; boundary=b0undary"},
                             timeout=30)
            _err(got, 413, "too_large", "form field over the limit of 1,048,576 bytes",
                 "send files as file parts (with a filename)")
        urlencoded = httpx.post(f"{server.base}/api/search", content=b"file=" + b"x" * (3 << 20),
                                headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
        _err(urlencoded, 413, "too_large", "form field over the limit of 1,048,576 bytes")
        assert server.app.state.jobs.all() == [] and _leftovers(home) == []
