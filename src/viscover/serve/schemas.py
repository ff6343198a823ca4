"""Request and response shapes of the HTTP API: they document it in the OpenAPI schema (/docs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ItemOut(BaseModel):
    id: str = Field(description="The item's id as given at ingest.")
    name: str = Field(description="What to call it: its title, else its most specific label (the value fewest "
                                  "items share, unless all do), else its file name.")
    title: str | None = None
    description: str | None = None
    domain: str | None = None
    split: str | None = None
    labels: dict[str, str] = Field(default_factory=dict, description="task -> label")
    boards: list[str] = Field(default_factory=list)
    width: int
    height: int
    sha256: str = Field(description="Content hash of the image (items with identical bytes share it).")
    image_url: str
    thumb_url: str = Field(description="JPEG thumbnail; add ?size=160, 320 (default) or 640.")


class HitOut(ItemOut):
    score: float = Field(description="Cosine similarity to the query (higher is closer).")
    duplicates: list[str] = Field(default_factory=list, description="Near-duplicate items folded into this one.")


class RelatedOut(ItemOut):
    score: float = Field(description="Ranking score of this answer: a blend of signals, not a similarity; compare "
                                     "it only with the other results of the same answer.")
    sources: list[str] = Field(default_factory=list, description="The generators that proposed the item: pixie "
                               "(board walks), co-occurrence (shared boards), visual (looks).")
    explanation: dict[str, Any] | None = Field(None, description="With explain=true: generators and features.")


class ItemPage(BaseModel):
    items: list[ItemOut]
    total: int
    offset: int
    next_offset: int | None


class BoardOut(BaseModel):
    name: str
    size: int = Field(description="Number of items on the board.")
    cover: ItemOut | None


class BoardPage(BaseModel):
    boards: list[BoardOut]
    total: int
    offset: int
    next_offset: int | None


class BoardItems(ItemPage):
    name: str


class SearchOut(BaseModel):
    query: dict[str, Any]
    results: list[HitOut]
    weak_match: bool = Field(False, description="A query image (upload or URL) whose best score is below the "
                                                "weak_match_score setting: nothing searched is close to it; these "
                                                "are only the nearest.")
    took_ms: float


class RelatedList(BaseModel):
    query: dict[str, Any]
    results: list[RelatedOut]
    visual_only: bool = Field(False, description="Every result was found by looks alone (the queried items are on "
                              "no board, or only the visual generator proposed each result): what visual search "
                              "(\"more like this\") shows already, nothing boards add.")
    took_ms: float


class FacetsOut(BaseModel):
    total: int = Field(description="Items in the catalogue.")
    domains: dict[str, int] = Field(description="domain -> items")
    labels: dict[str, dict[str, int]] = Field(description="task -> label -> items (filter with label=TASK=LABEL)")
    boards: dict[str, int] = Field(description="board -> items, in natural order of names")


class ObjectOut(BaseModel):
    label: str
    score: float
    box: list[int] = Field(description="x, y, w, h in pixels of the upright image.")


class DetectOut(BaseModel):
    width: int
    height: int
    objects: list[ObjectOut]
    took_ms: float


class LookOut(ObjectOut):
    results: list[HitOut] = Field(description="Catalogue items that look like this object.")


class ShopOut(BaseModel):
    width: int
    height: int
    objects: list[LookOut]
    took_ms: float


class JobOut(BaseModel):
    id: str
    kind: str
    state: Literal["queued", "running", "done", "failed"]
    stage: str
    done: int
    total: int | None
    result: dict[str, Any] | None
    error: str | None
    created: float
    finished: float | None


class JobAccepted(BaseModel):
    job: JobOut
    status_url: str


class JobList(BaseModel):
    jobs: list[JobOut]


class IngestIn(BaseModel):
    items: list[dict[str, Any]] = Field(min_length=1, max_length=100_000, description=(
        "Manifest rows: `id`, `path` (an http(s) URL, or a file under one of the server's image_roots), "
        "and optional `title`, `description`, `domain`, `split`, `boards` (';'-separated) and `label.<task>`."))


class DeleteIn(BaseModel):
    ids: list[str] = Field(min_length=1, max_length=100_000)


class ErrorOut(BaseModel):
    detail: str = Field(description="What was wrong with the request and what to do.")
    error: str = Field(description="not_found, bad_request, bad_image, too_large, unauthorized, forbidden, "
                                   "unavailable, busy, timeout or insufficient_storage (the server's disk is "
                                   "full).")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    ready: bool
    items: int
    indexed: int
    model: str
    reason: str | None = None
    jobs_pending: int


ERRORS = {code: {"model": ErrorOut} for code in (400, 404, 413, 422, 503, 507)}
WRITE_ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 422, 503, 507)}
