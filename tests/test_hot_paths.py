"""The plain path for "more like this" and related items (serve/hot.py) answers exactly as the FastAPI routes do:
same bodies (but took_ms), same errors, the same metrics; anything it does not handle reaches FastAPI. Checked with
the server's threads (one process) and on the event loop (as a worker of several processes answers warm searches)."""

from __future__ import annotations

import orjson
import pytest

from conftest import needs_data

pytestmark = needs_data


@pytest.fixture(scope="module", params=[1, 2], ids=["threads", "event-loop"])
def client(request, indexed_home):
    from fastapi.testclient import TestClient

    from viscover import Engine, Settings
    from viscover.serve import ServeOptions, create_app

    engine = Engine(indexed_home, Settings())
    with TestClient(create_app(engine, ServeOptions(no_auth=True, workers=request.param)),
                    raise_server_exceptions=False) as c:
        yield c
    engine.close()


@pytest.fixture(scope="module")
def keys(indexed_home) -> dict[str, str]:
    """A grocery photo and a clothing item on a board."""
    from viscover import Engine, Settings

    with Engine(indexed_home, Settings()) as engine:
        items, _ = engine.items(limit=500)
    return {"photo": next(i.key for i in items if not i.boards), "boarded": next(i.key for i in items if i.boards)}


def _body(response) -> dict:
    body = orjson.loads(response.content)
    body.pop("took_ms", None)
    return body


def _via_fastapi(path: str) -> str:
    """The same request, made to miss the plain path: FastAPI ignores a parameter it does not know, the plain path
    hands any such request over."""
    return path + ("&" if "?" in path else "?") + "via=fastapi"


PLAIN = ["/api/search?item={photo}", "/api/search?item={photo}&k=3", "/api/search?item={boarded}&k=7&binary=true",
         "/api/search?item={photo}&collapse=false&k=5", "/api/search?item={photo}&binary=0&collapse=YES",
         "/api/related?item={boarded}", "/api/related?item={boarded}&k=4&explain=true",
         "/api/related?item={boarded}&item={photo}&k=6", "/api/related?item={boarded}&domain=&k=3"]


@pytest.mark.parametrize("template", PLAIN)
def test_plain_requests_answer_as_fastapi_does(client, keys, template):
    path = template.format(**keys)
    fast, full = client.get(path), client.get(_via_fastapi(path))
    assert fast.status_code == full.status_code == 200, (fast.text, full.text)
    assert fast.headers["content-type"] == full.headers["content-type"] == "application/json"
    assert _body(fast) == _body(full)
    assert _body(fast)["results"], path  # not vacuous: both found something


WRONG = ["/api/search?item=no-such-item.jpg", "/api/search?item={photo}&k=0", "/api/search?item={photo}&k=1001",
         "/api/search?item={photo}&k=ten", "/api/search?item={photo}&binary=maybe", "/api/search?item={photo}&item=x",
         "/api/related?item=no-such-item.jpg", "/api/related?item={boarded}&k=-2", "/api/related?k=3",
         "/api/related?item={boarded}&domain=no-such-domain"]


@pytest.mark.parametrize("template", WRONG)
def test_wrong_requests_get_fastapis_errors(client, keys, template):
    path = template.format(**keys)
    fast, full = client.get(path), client.get(_via_fastapi(path))
    assert fast.status_code == full.status_code and fast.status_code in (400, 404, 422), (fast.text, full.text)
    assert fast.json() == full.json()


def test_what_the_plain_path_leaves_alone_still_works(client, keys):
    """Filters, crops and URLs go to FastAPI, which answers them as ever."""
    filtered = client.get(f"/api/search?item={keys['photo']}&domain=photo&k=4")
    assert filtered.status_code == 200 and all(r["domain"] == "photo" for r in filtered.json()["results"])
    assert client.get(f"/api/search?item={keys['photo']}&crop=0,0,50,50&k=2").status_code == 200
    assert client.get("/api/search?url=ftp://example.com/x.jpg").status_code == 400


def test_plain_answers_are_counted_under_their_route(client, keys):
    def count(route: str) -> float:
        line = f'viscover_http_requests_total{{method="GET",route="{route}",status="200"}} '
        return sum(float(x[len(line):]) for x in client.get("/metrics").text.splitlines() if x.startswith(line))

    before = {route: count(route) for route in ("/api/search", "/api/related", "(unmatched)")}
    client.get(f"/api/search?item={keys['photo']}&k=2")
    client.get(f"/api/related?item={keys['boarded']}&k=2")
    assert count("/api/search") == before["/api/search"] + 1
    assert count("/api/related") == before["/api/related"] + 1
    assert count("(unmatched)") == before["(unmatched)"]


def test_a_write_is_seen_by_the_next_plain_search(tmp_path, indexed_home):
    """On the event loop too, a search after a removal never shows the removed item (the warm check sees the
    index another save replaced)."""
    import shutil

    from fastapi.testclient import TestClient

    from viscover import Engine, Settings
    from viscover.serve import ServeOptions, create_app

    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    with Engine(home, Settings()) as engine, \
            TestClient(create_app(engine, ServeOptions(no_auth=True, workers=2))) as c:
        items, _ = engine.items(limit=50)
        first = c.get(f"/api/search?item={items[0].key}&k=3").json()["results"][0]["id"]
        with Engine(home, Settings()) as other:  # another process's write: a new index save
            other.remove([first])
        after = c.get(f"/api/search?item={items[0].key}&k=3").json()["results"]
        assert first not in [r["id"] for r in after]
