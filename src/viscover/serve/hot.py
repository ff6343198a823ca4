"""A plain ASGI path for the two reads a loaded server answers most: "more like this" (GET /api/search?item=ID) and
related items (GET /api/related?item=ID), when they carry only plain parameters.

FastAPI's routing, dependency solving and per-parameter validation cost about as much CPU as a search by id of a
1M-item HNSW index (in process: 1.8 ms of CPU per request beside the Engine's 1.5 ms; 1.2 ms on this path). Here
the query string is read by hand and the answer built by the very functions the FastAPI routes call
(api_read.more_like_this and api_read.related_answer), so the answer is the same. Anything else (filters, a crop,
an unknown or repeated parameter, a value FastAPI would refuse) and any error goes to the full app, which answers
it as always: errors are formatted in one place, and the documented API stays the FastAPI one.

Where it runs: a server of several processes (--workers) answers a warm "more like this" (model and current index in
memory: about 1.5 ms at 1M items) on its event loop, since its parallelism comes from the processes and the hand-off
to a request thread cost 0.3 ms of CPU per request (1M items, 2 workers, wrk: 1,040 requests/s with p99 7 ms at 4
clients, against 900 and 10 ms through the thread pool). A single process keeps the thread pool (FAISS searches
run side by side there), as do related items (walks take 10-20 ms at 1M) and any search that must load first."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qsl

import orjson
from anyio import to_thread
from fastapi import FastAPI

from viscover import Filters
from viscover.serve.api_read import more_like_this, related_answer

# pydantic's lax booleans, as FastAPI reads them from a query string
TRUE, FALSE = {"1", "on", "t", "true", "y", "yes"}, {"0", "off", "f", "false", "n", "no"}
MAX_K = 1000  # the routes' bound on k (api_read.K)
HEADERS = [(b"content-type", b"application/json")]


def _bool(value: str) -> bool | None:
    low = value.lower()
    return True if low in TRUE else False if low in FALSE else None


def _k(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_K else None


def _search(params: list[tuple[str, str]]) -> dict[str, Any] | None:
    """Keyword arguments of more_like_this for a plain "more like this" query string, else None."""
    got = dict(params)
    if len(got) != len(params) or "item" not in got or not got.keys() <= {"item", "k", "binary", "collapse"}:
        return None
    k = _k(got.get("k", "20"))
    binary, collapse = _bool(got.get("binary", "false")), _bool(got.get("collapse", "true"))
    if k is None or binary is None or collapse is None or len(got["item"]) > 2000:
        return None
    return {"item": got["item"], "k": k, "filters": Filters(), "binary": binary, "collapse": collapse}


def _related(params: list[tuple[str, str]]) -> dict[str, Any] | None:
    """Keyword arguments of related_answer for a plain related-items query string, else None."""
    items = [v for name, v in params if name == "item"]
    rest = dict((name, v) for name, v in params if name != "item")
    if not 1 <= len(items) <= 100 or len(rest) != len(params) - len(items) or \
            not rest.keys() <= {"k", "domain", "explain"}:
        return None
    k, explain = _k(rest.get("k", "20")), _bool(rest.get("explain", "false"))
    domain = rest.get("domain")
    if k is None or explain is None or (domain is not None and len(domain) > 200):
        return None
    return {"item": items, "k": k, "domain": domain, "explain": explain}


@dataclass(frozen=True)
class RouteLabel:
    """What the metrics read of the route FastAPI would have matched: its path template."""

    path: str


ROUTES: dict[str, tuple[Callable[[list[tuple[str, str]]], dict | None], Callable[..., dict]]] = {
    "/api/search": (_search, more_like_this), "/api/related": (_related, related_answer)}


class HotPaths:
    """ASGI middleware answering plain GET /api/search?item= and /api/related?item= without FastAPI's machinery;
    `fastapi_app` gives the engine (app.state.engine) and the server's options."""

    def __init__(self, app, fastapi_app: FastAPI):
        self.app, self.fastapi_app = app, fastapi_app

    async def __call__(self, scope, receive, send):
        entry = ROUTES.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "GET" else None
        if entry is not None:
            parse, answer = entry
            start = time.perf_counter()
            kwargs = parse(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
            if kwargs is not None:
                engine = self.fastapi_app.state.engine
                inline = answer is more_like_this and self.fastapi_app.state.options.workers > 1 and \
                    engine.search_is_warm()
                try:
                    if inline:
                        body = orjson.dumps(answer(engine, **kwargs, start=start))
                    else:
                        body = await to_thread.run_sync(lambda: orjson.dumps(answer(engine, **kwargs, start=start)))
                except Exception:  # noqa: BLE001 - the full app answers it again, with its own error handling
                    body = None
                if body is not None:
                    scope["route"] = RouteLabel(scope["path"])  # the metrics' route label (both paths are templates)
                    await send({"type": "http.response.start", "status": 200,
                                "headers": [*HEADERS, (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)
