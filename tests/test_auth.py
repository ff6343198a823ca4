"""The API key, derived from the app's own routes: every endpoint that changes the catalogue or shows its jobs
needs it (401 without it, 403 with a wrong one, in either header), and every other endpoint is a read. A new
endpoint must be classified here, so a write route that forgot `dependencies=[WriteAccess]` fails this test."""

from __future__ import annotations

import re
import shutil

import pytest

from conftest import needs_data

pytestmark = needs_data
KEY = "auth-key-123"
# the endpoints that need the key: writes to the catalogue, and the jobs that carry them out
PROTECTED = {"POST /api/items", "POST /api/items/manifest", "POST /api/items/delete",
             "DELETE /api/items/{item_id:path}", "GET /api/jobs", "GET /api/jobs/{job_id}"}
# POSTs that only read: an uploaded query image, nothing is stored
READ_ONLY_POSTS = {"POST /api/search", "POST /api/detect", "POST /api/shop"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
MISSING = ("this request changes the catalogue: send the server's API key in the X-API-Key header (printed when "
           "`viscover serve` starts)")
WRONG = "wrong API key in X-API-Key"
# a minimal well-formed body for each protected route that takes one (anything else sends none)
BODIES = {"POST /api/items": {"json": {"items": [{"id": "auth-x", "path": "nowhere.jpg"}]}},
          "POST /api/items/manifest": {"files": {"file": ("m.csv", b"id,path\nauth-x,nowhere.jpg\n", "text/csv")}},
          "POST /api/items/delete": {"json": {"ids": ["auth-x"]}}}
# what the same requests get with the right key (path parameters name no real item or job)
WITH_KEY = {"POST /api/items": 202, "POST /api/items/manifest": 202, "POST /api/items/delete": 202,
            "DELETE /api/items/{item_id:path}": 404, "GET /api/jobs": 200, "GET /api/jobs/{job_id}": 404}


@pytest.fixture(scope="module")
def app(indexed_home, tmp_path_factory):
    """An app over a copy of the indexed home: if a route let a request through, it may write."""
    from viscover import Engine, Settings
    from viscover.serve import ServeOptions, create_app

    home = tmp_path_factory.mktemp("auth") / "home"
    shutil.copytree(indexed_home, home)
    engine = Engine(home, Settings(workers=1))
    yield create_app(engine, ServeOptions(api_key=KEY))
    engine.close()


def _needs_key(dependant) -> bool:
    from viscover.serve.deps import require_key

    return any(d.call is require_key or _needs_key(d) for d in dependant.dependencies)


def _routes(app) -> dict[str, bool]:
    """Each route of the app (API routes, docs, static mounts) as "METHOD path" -> whether it needs the key."""
    from fastapi.routing import APIRoute

    try:  # FastAPI >= 0.165 keeps included routers as one entry of app.routes: walk what they include
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI copies the routes into app.routes
        def iter_route_contexts(routes):
            return iter(routes)

    out = {}
    for route in iter_route_contexts(app.routes):
        protected = isinstance(getattr(route, "original_route", route), APIRoute) and _needs_key(route.dependant)
        for method in route.methods or {"GET"}:  # a mount (static files) has no methods: it answers GET
            out[f"{method} {route.path}"] = protected
    return out


def _call(client, route: str, headers: dict):
    method, path = route.split(" ", 1)
    url = re.sub(r"\{\w+(:\w+)?\}", "auth-dummy", path)
    return client.request(method, url, headers=headers, **BODIES.get(route, {}))


def _err(response, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    body = response.json()
    assert body["error"] == code and isinstance(body["detail"], str), body
    for word in words:
        assert word in body["detail"], body["detail"]
    if words and words[0] in (MISSING, WRONG):  # the refusals' whole text: what to send, and where to find it
        assert body["detail"] == words[0], body["detail"]


def test_exactly_the_write_and_job_endpoints_need_the_key(app):
    assert {r for r, protected in _routes(app).items() if protected} == PROTECTED


def test_no_write_endpoint_goes_without_the_key(app):
    routes = _routes(app)
    unprotected_writes = {r for r, protected in routes.items()
                          if not protected and r.split(" ", 1)[0] in WRITE_METHODS} - READ_ONLY_POSTS
    assert not unprotected_writes, f"write routes without the API key: {sorted(unprotected_writes)}"
    assert READ_ONLY_POSTS <= set(routes)  # the exceptions still name real routes


def test_every_protected_endpoint_refuses_a_missing_or_wrong_key(app):
    from fastapi.testclient import TestClient

    engine = app.state.engine
    uploads = engine.home.root / "uploads"
    protected = sorted(PROTECTED | {r for r, p in _routes(app).items() if p})
    with TestClient(app, raise_server_exceptions=False) as client:
        for route in protected:
            _err(_call(client, route, {}), 401, "unauthorized", MISSING)
            _err(_call(client, route, {"Authorization": "Bearer "}), 401, "unauthorized")
            _err(_call(client, route, {"X-API-Key": "wrong"}), 403, "forbidden", WRONG)
            _err(_call(client, route, {"X-API-Key": KEY + "x"}), 403, "forbidden")
            _err(_call(client, route, {"Authorization": "Bearer wrong"}), 403, "forbidden")
        # refused before anything happened: no job, no uploaded file kept
        assert app.state.jobs.all() == []
        assert not uploads.exists() or not any(uploads.iterdir())
        # the same requests with the right key get through (in either header)
        for route in protected:
            for auth in ({"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}):
                got = _call(client, route, auth)
                assert got.status_code == WITH_KEY.get(route), (route, auth, got.text)
        assert len(app.state.jobs.all()) == 6  # two of each write


def test_the_key_is_checked_before_the_body_is_read(app):
    """A write without the key is 401 (wrong key: 403) whatever its body: invalid JSON, a broken multipart form or
    a body of the wrong shape is not worth parsing, or telling apart, for a client that may not write at all."""
    from fastapi.testclient import TestClient

    bad_bodies = [
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        {"content": b"[1, 2", "headers": {"Content-Type": "application/json"}},
        {"content": b"--x\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
        {"json": {"wrong": "shape"}},
    ]
    with TestClient(app, raise_server_exceptions=False) as client:
        for route in sorted(r for r in PROTECTED if r.startswith("POST")):
            path = route.split(" ", 1)[1]
            for body in bad_bodies:
                headers = body.get("headers", {})
                kwargs = {k: v for k, v in body.items() if k != "headers"}
                _err(client.post(path, headers=headers, **kwargs), 401, "unauthorized", MISSING)
                _err(client.post(path, headers={**headers, "X-API-Key": "wrong"}, **kwargs), 403, "forbidden",
                     WRONG)
        got = client.post("/api/items", content=b"{not json",
                          headers={"Content-Type": "application/json", "X-API-Key": KEY})
        assert got.status_code == 422 and got.json()["error"] == "bad_request", got.text  # with the key: invalid
