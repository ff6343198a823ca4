"""What every route shares: the Engine of the app, the API-key check, filter parameters, item serialisation."""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Callable, Coroutine, TypeVar

import orjson
from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import Depends, Query, Request, Response, Security
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from viscover import Engine, Filters, Item, Naming, ViscoverError


class AuthError(ViscoverError):
    """A write request without the right API key."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class TooLargeError(ViscoverError):
    """An upload over its size limit."""


class BusyError(ViscoverError):
    """The server is doing as much of something as it allows at once; retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


async def engine_of(request: Request) -> Engine:  # async, as every dependency here: no thread to run it
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(engine_of)]


API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="The key printed by `viscover serve`.")
BEARER = HTTPBearer(auto_error=False, description="The same key as `Authorization: Bearer KEY`.")


async def require_key(request: Request, x_api_key: Annotated[str | None, Security(API_KEY)] = None,
                      bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None) -> None:
    """Writes need the server's key in X-API-Key (or `Authorization: Bearer KEY`), unless started with --no-auth.
    (The parameters document the two headers in the OpenAPI schema; `check_key` reads them.)"""
    check_key(request)


def _bearer(authorization: str | None) -> str | None:
    scheme, _, credentials = (authorization or "").partition(" ")
    return (credentials.strip() or None) if scheme.lower() == "bearer" else None


def check_key(request: Request) -> None:
    """AuthError unless the request carries the server's key (or the server was started with --no-auth)."""
    options = request.app.state.options
    if options.no_auth:
        return
    given = request.headers.get("x-api-key") or _bearer(request.headers.get("authorization"))
    if not given:
        raise AuthError("this request changes the catalogue: send the server's API key in the X-API-Key header "
                        "(printed when `viscover serve` starts)", 401)
    if not hmac.compare_digest(given.encode(), options.api_key.encode()):  # constant time: no timing oracle
        raise AuthError("wrong API key in X-API-Key", 403)


WriteAccess = Depends(require_key)


class KeyFirstRoute(APIRoute):
    """A route that checks the API key before FastAPI reads and validates the body: a client without the key
    gets 401 (or 403) whatever it sent, never a 422 about a body it may not send at all."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def key_first(request: Request) -> Response:
            check_key(request)
            return await handler(request)

        return key_first


async def filters(label: Annotated[list[str] | None, Query(description="Only items with this label: TASK=LABEL or "
                                                    "TASK:LABEL (repeatable).", max_length=500)] = None,
            domain: Annotated[str | None, Query(description="Only items of this domain.", max_length=200)] = None,
            board: Annotated[str | None, Query(description="Only items on this board.", max_length=500)] = None,
            q: Annotated[str | None, Query(description="Only items whose id or title contains this text "
                                           "(case-insensitive).", max_length=500)] = None
            ) -> Filters:
    return Filters.parse(label or [], domain, board, q)


FiltersDep = Annotated[Filters, Depends(filters)]


T = TypeVar("T")
_OPERATIONS: RunVar[CapacityLimiter] = RunVar("viscover_operations_threads")


async def operations_thread(work: Callable[[], T]) -> T:
    """Run a quick blocking check (readiness, metrics) on two threads of its own, not the request threads: a
    monitor must get its answer even while every request thread is busy."""
    try:
        limiter = _OPERATIONS.get()
    except LookupError:
        limiter = CapacityLimiter(2)
        _OPERATIONS.set(limiter)
    return await to_thread.run_sync(work, limiter=limiter)


def item_out(item: Item, engine: Engine, naming: Naming | None = None) -> dict[str, Any]:
    """An item as the API shows it: metadata, the name to show it by, and the URLs of its image (never its path on
    the server). A list passes the `engine.naming()` it fetched once."""
    return {"id": item.key, "name": (naming or engine.naming()).name(item), "title": item.title,
            "description": item.description, "domain": item.domain,
            "split": item.split, "labels": dict(item.labels), "boards": list(item.boards),
            "width": item.width, "height": item.height, "sha256": item.sha256,
            "image_url": f"/images/{item.sha256}", "thumb_url": f"/thumbs/{item.sha256}"}


def json_response(body: dict[str, Any]) -> Response:
    """A JSON answer serialised once by orjson, skipping FastAPI's validation against the response model (which
    stays the documented schema, checked by tests/test_api_contract.py): on a search by id that validation and
    json.dumps cost more than the search."""
    return Response(orjson.dumps(body), media_type="application/json")


def page(total: int, offset: int, count: int) -> dict[str, Any]:
    nxt = offset + count
    return {"total": total, "offset": offset, "next_offset": nxt if count and nxt < total else None}
