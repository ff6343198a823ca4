"""Read endpoints: items, boards, visual search, related items, object detection, readiness."""

from __future__ import annotations

import functools
import time
from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from viscover import (BadRequestError, CropBox, Engine, IndexCorruptError, Naming, NotFoundError, ViscoverError,
                      parse_crop)
from viscover.serve import schemas as s
from viscover.serve.hints import detail, redact_all
from viscover.serve.deps import (EngineDep, FiltersDep, TooLargeError, item_out, json_response, operations_thread,
                                 page)

router = APIRouter(prefix="/api")

Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.")]
Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
K = Annotated[int, Query(ge=1, le=1000, description="Number of results.")]
Crop = Annotated[str | None, Query(description="Search by a region x,y,w,h in pixels of the (upright) query image.",
                                   max_length=100, examples=["10,20,200,150"])]
Binary = Annotated[bool, Query(description="Search the binary (sign-bit) index, then re-rank by float.")]
Collapse = Annotated[bool, Query(description="Fold near-duplicates into the best of them.")]
MinScore = Annotated[float | None, Query(ge=0.0, le=1.0, description="Keep objects the detector scores at least "
                                         "this (default: the detect_min_score setting).")]
MaxObjects = Annotated[int, Query(ge=1, le=20, description="Search at most this many objects, best first.")]


@router.get("/health", response_model=s.Health, tags=["operations"])
async def health() -> dict:
    """The process is up (liveness); answered on the event loop, so even while every request thread is busy."""
    return {"status": "ok"}


@router.get("/ready", response_model=s.Ready, responses={503: {"model": s.Ready}}, tags=["operations"])
async def ready(engine: EngineDep, request: Request):
    """The catalogue is indexed and searches can be answered (readiness); 503 with the reason otherwise, also
    while items a stopped server left unindexed are being indexed."""
    from fastapi.responses import JSONResponse

    def check() -> dict:
        body = {"ready": True, "items": engine.counts()["items"], "indexed": 0, "model": engine.settings.model,
                "reason": None, "jobs_pending": request.app.state.jobs.pending()}
        try:
            body["indexed"] = len(engine.vector_index())
        except (NotFoundError, IndexCorruptError) as e:
            body.update(ready=False, reason=detail(e))
        if (unfinished := request.app.state.unfinished.reason(engine, request.app.state.jobs)) is not None:
            body.update(ready=False, reason=unfinished)
        return body

    body = await operations_thread(check)  # not a request thread: those may all be busy
    return body if body["ready"] else JSONResponse(body, status_code=503)


@router.get("/info", tags=["operations"])
def info(engine: EngineDep, request: Request) -> dict:
    """Catalogue counts, models and indexes, and which optional features this server has."""
    data = engine.info()
    for private in ("home", "database"):  # server paths and URLs are not for clients
        data.pop(private, None)
    data["bad_image_examples"] = len(data.get("bad_image_examples", []))
    try:
        indexed = len(engine.vector_index())
    except ViscoverError:
        indexed = 0
    data.update(model=engine.settings.model, indexed=indexed, features={
        "detection": bool(engine.settings.detector), "related": data.get("board_memberships", 0) > 0,
        "writes": "open" if request.app.state.options.no_auth else "key"})
    return redact_all(data)  # e.g. a damaged index's error names its file


Order = Annotated[Literal["ingest", "mixed"], Query(description="ingest: catalogue order; mixed: shuffled by "
                                                  "`seed`, the same order on every page of one seed.")]
Seed = Annotated[int, Query(ge=0, le=2**32 - 1, description="The shuffle of order=mixed.")]


@router.get("/items", response_model=s.ItemPage, responses=s.ERRORS, tags=["catalogue"])
def list_items(engine: EngineDep, filters: FiltersDep, offset: Offset = 0, limit: Limit = 50,
               order: Order = "ingest", seed: Seed = 0) -> Response:
    """Page through the catalogue (in ingest order, or mixed), optionally filtered by label, domain, board or text
    in the id or title (q)."""
    items, total = engine.items(filters, offset=offset, limit=limit, order=order, seed=seed)
    naming = engine.naming()
    return json_response({"items": [item_out(i, engine, naming) for i in items], **page(total, offset, len(items))})


@router.get("/facets", response_model=s.FacetsOut, responses=s.ERRORS, tags=["catalogue"])
def facets(engine: EngineDep) -> dict:
    """What /api/items and /api/search can be filtered by (domain, label TASK=LABEL, board), with item counts."""
    return engine.facets().to_dict()


@router.get("/items/{item_id:path}", response_model=s.ItemOut, responses=s.ERRORS, tags=["catalogue"])
def get_item(item_id: str, engine: EngineDep) -> Response:
    """One item: metadata, labels, boards and image URLs."""
    return json_response(item_out(engine.item(item_id), engine))


@router.get("/boards", response_model=s.BoardPage, responses=s.ERRORS, tags=["catalogue"])
def list_boards(engine: EngineDep, offset: Offset = 0, limit: Limit = 50) -> dict:
    """Boards in natural order of names ("sender-2" before "sender-10"), each with its size and first item as a
    cover."""
    rows, total = engine.boards(offset=offset, limit=limit)
    naming = engine.naming()
    boards = [{"name": b.name, "size": b.size,
               "cover": item_out(b.cover, engine, naming) if b.cover is not None else None} for b in rows]
    return {"boards": boards, **page(total, offset, len(rows))}


@router.get("/boards/{name:path}", response_model=s.BoardItems, responses=s.ERRORS, tags=["catalogue"])
def get_board(name: str, engine: EngineDep, offset: Offset = 0, limit: Limit = 50) -> dict:
    """The items of one board."""
    items, total = engine.board_items(name, offset=offset, limit=limit)
    naming = engine.naming()
    return {"name": name, "items": [item_out(i, engine, naming) for i in items], **page(total, offset, len(items))}


def _ms(start: float) -> float:
    """Milliseconds since `start` (a perf_counter reading), for `took_ms`."""
    return round((time.perf_counter() - start) * 1000, 2)


def _crop(text: str | None) -> CropBox | None:
    return parse_crop(text) if text else None


def _hit(h, engine: Engine, naming: Naming) -> dict:
    return {**item_out(h.item, engine, naming), "score": float(h.score),
            "duplicates": [d.key for d in h.duplicates]}


def _hits(engine, hits, query: dict, start: float, *, by_image: bool) -> dict:
    """A search answer; a query image (upload or URL) whose best hit scores below weak_match_score is flagged
    weak_match (the threshold was measured on query photos, not on "more like this" of catalogue items)."""
    weak = by_image and bool(hits) and float(hits[0].score) < engine.settings.weak_match_score
    naming = engine.naming()
    return {"query": query, "took_ms": _ms(start), "weak_match": weak,
            "results": [_hit(h, engine, naming) for h in hits]}


@router.get("/search", response_model=s.SearchOut, responses=s.ERRORS, tags=["search"])
async def search(request: Request, engine: EngineDep, filters: FiltersDep,
           item: Annotated[str | None, Query(description="Query by this item's image (\"more like this\").",
                                             max_length=2000)] = None,
           url: Annotated[str | None, Query(description="Query by the image at this http(s) URL.",
                                            max_length=4000)] = None,
           crop: Crop = None, k: K = 20, binary: Binary = False, collapse: Collapse = True) -> Response:
    """Visual search by a catalogue item or an image URL, optionally by a crop box of it. Upload an image with
    POST /api/search instead. An image URL is downloaded on the event loop (at most url_downloads at once, each
    within url_timeout), then searched on a request thread like any other search."""
    start = time.perf_counter()
    if (item is None) == (url is None):
        raise BadRequestError("give exactly one query: item=ID or url=IMAGE_URL (or POST an image file)")
    box = _crop(crop)
    kwargs = dict(crop=box, k=k, filters=filters, binary=binary, collapse=collapse)
    if item is not None:
        if box is None:  # "more like this": built as serve/hot.py builds it
            return json_response(await run_in_threadpool(functools.partial(
                more_like_this, engine, item, k=k, filters=filters, binary=binary, collapse=collapse, start=start)))
        hits = await run_in_threadpool(functools.partial(engine.search_item, item, **kwargs))
    else:
        if not url.lower().startswith(("http://", "https://")):
            raise BadRequestError(f"url {url!r}: only http:// and https:// image URLs can be searched")
        async with request.app.state.downloads.slot(retry_after=engine.settings.url_timeout):
            data = await engine.download_image(url)
        hits = await run_in_threadpool(functools.partial(engine.search_image, data, name=url, **kwargs))
    query = {"item": item} if item is not None else {"url": url}
    return json_response(_hits(engine, hits, {**query, "crop": str(box) if box else None, "k": k, "binary": binary},
                               start, by_image=item is None))


def more_like_this(engine: Engine, item: str, *, k: int, filters, binary: bool, collapse: bool,
                   start: float) -> dict:
    """The answer to GET /api/search?item= (no crop), for the FastAPI route and the plain path of serve/hot.py."""
    hits = engine.search_item(item, k=k, filters=filters, binary=binary, collapse=collapse)
    return _hits(engine, hits, {"item": item, "crop": None, "k": k, "binary": binary}, start, by_image=False)


def read_upload(file: UploadFile, limit: int, what: str = "image") -> bytes:
    """The bytes of an uploaded file, refusing more than `limit` without reading it all."""
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"uploaded {what} {file.filename!r} is over the limit of {limit:,} bytes")
    if not data:
        raise BadRequestError(f"uploaded {what} {file.filename!r} is empty")
    return data


@router.post("/search", response_model=s.SearchOut, responses=s.ERRORS, tags=["search"])
def search_upload(engine: EngineDep, filters: FiltersDep,
                  file: Annotated[UploadFile, File(description="The query image (JPEG, PNG, WebP, GIF, ...).")],
                  crop: Crop = None, k: K = 20, binary: Binary = False, collapse: Collapse = True) -> Response:
    """Visual search by an uploaded image (multipart field `file`), optionally by a crop box of it."""
    start = time.perf_counter()
    data = read_upload(file, engine.settings.max_image_bytes)
    box = _crop(crop)
    hits = engine.search_image(data, crop=box, k=k, filters=filters, binary=binary, collapse=collapse)
    return json_response(_hits(engine, hits, {"upload": file.filename, "bytes": len(data),
                                              "crop": str(box) if box else None, "k": k, "binary": binary},
                               start, by_image=True))


@router.get("/related", response_model=s.RelatedList, responses=s.ERRORS, tags=["related"])
def related(engine: EngineDep,
            item: Annotated[list[str], Query(description="Item id(s): one, or several (e.g. a user's recent "
                                             "saves).", min_length=1, max_length=100)],
            k: K = 20,
            domain: Annotated[str | None, Query(description="Bias walks toward items of this domain.",
                                                max_length=200)] = None,
            explain: Annotated[bool, Query(description="Say which generators proposed each item.")] = False
            ) -> Response:
    """Related items from the board graph (Pixie walks), co-occurrence and looks, blended and ranked."""
    return json_response(related_answer(engine, item, k=k, domain=domain, explain=explain,
                                        start=time.perf_counter()))


def related_answer(engine: Engine, item: list[str], *, k: int, domain: str | None, explain: bool,
                   start: float) -> dict:
    """The answer to GET /api/related, for the FastAPI route and the plain path of serve/hot.py."""
    hits = engine.related(item, k=k, domain=domain or None)
    naming = engine.naming()
    results = [{**item_out(h.item, engine, naming), "score": float(h.score), "sources": h.sources,
                "explanation": h.explanation if explain else None} for h in hits]
    return {"query": {"items": item, "k": k, "domain": domain}, "results": results,
            "visual_only": bool(hits) and all(h.by_looks_only for h in hits), "took_ms": _ms(start)}


def _detected(result, start: float) -> dict:
    return {"width": result.width, "height": result.height, "objects": [o.to_dict() for o in result.objects],
            "took_ms": _ms(start)}


@router.get("/detect", response_model=s.DetectOut, responses=s.ERRORS, tags=["search"])
def detect(engine: EngineDep, item: Annotated[str, Query(description="Detect objects in this item's image.",
                                                         max_length=2000)], min_score: MinScore = None) -> dict:
    """Objects in an item's image (shop the look: search each one with its box as crop); 503 without a detector."""
    start = time.perf_counter()
    return _detected(engine.detect_item(item, min_score=min_score), start)


@router.post("/detect", response_model=s.DetectOut, responses=s.ERRORS, tags=["search"])
def detect_upload(engine: EngineDep, file: Annotated[UploadFile, File(description="A scene photo.")],
                  min_score: MinScore = None) -> dict:
    """Objects in an uploaded image; 503 without a detector."""
    start = time.perf_counter()
    return _detected(engine.detect(read_upload(file, engine.settings.max_image_bytes), min_score=min_score), start)


def _looks(engine: Engine, scene, start: float) -> dict:
    naming = engine.naming()
    looks = [{**o.to_dict(), "results": [_hit(h, engine, naming) for h in hits]}
             for o, hits in zip(scene.objects, scene.hits)]
    return {"width": scene.width, "height": scene.height, "objects": looks,
            "took_ms": _ms(start)}




@router.get("/shop", response_model=s.ShopOut, responses=s.ERRORS, tags=["search"])
def shop(engine: EngineDep, filters: FiltersDep,
         item: Annotated[str, Query(description="The scene: a catalogue item's image.", max_length=2000)],
         k: Annotated[int, Query(ge=1, le=100, description="Results per object.")] = 6,
         max_objects: MaxObjects = 8, min_score: MinScore = None, binary: Binary = False) -> dict:
    """Shop the look: detect the objects in an item's image and search the catalogue for each one."""
    start = time.perf_counter()
    scene = engine.shop_the_look_item(item, k=k, filters=filters, max_objects=max_objects, min_score=min_score,
                                      binary=binary)
    return _looks(engine, scene, start)


@router.post("/shop", response_model=s.ShopOut, responses=s.ERRORS, tags=["search"])
def shop_upload(engine: EngineDep, filters: FiltersDep,
                file: Annotated[UploadFile, File(description="A scene photo.")],
                k: Annotated[int, Query(ge=1, le=100, description="Results per object.")] = 6,
                max_objects: MaxObjects = 8, min_score: MinScore = None, binary: Binary = False) -> dict:
    """Shop the look on an uploaded scene photo."""
    start = time.perf_counter()
    scene = engine.shop_the_look(read_upload(file, engine.settings.max_image_bytes), k=k, filters=filters,
                                 max_objects=max_objects, min_score=min_score, binary=binary)
    return _looks(engine, scene, start)
