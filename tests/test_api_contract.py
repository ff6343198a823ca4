"""Schemathesis against the server's own OpenAPI schema: generated requests, valid (positive) and invalid
(negative), never get a 500; invalid ones are refused with a 4xx; responses match the schema. Bounded: 25 valid and
10 invalid examples per operation, on a copy of the indexed home."""

from __future__ import annotations

import shutil

import pytest

from conftest import DETECTOR, needs_data

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install -e '.[dev]')")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance  # noqa: E402

pytestmark = [needs_data, pytest.mark.slow]
KEY = "contract-key"


@pytest.fixture(scope="module")
def app(indexed_home, tmp_path_factory):
    from viscover import Engine, Settings
    from viscover.serve import ServeOptions, create_app

    home = tmp_path_factory.mktemp("contract") / "home"
    shutil.copytree(indexed_home, home)
    engine = Engine(home, Settings(workers=1, detector=str(DETECTOR) if DETECTOR.is_file() else ""))
    yield create_app(engine, ServeOptions(api_key=KEY))
    engine.close()


OPERATIONS = ["GET /api/health", "GET /api/ready", "GET /api/info", "GET /api/items", "GET /api/facets",
              "GET /api/items/{item_id}",
              "GET /api/boards", "GET /api/boards/{name}", "GET /api/search", "POST /api/search", "GET /api/related",
              "GET /api/detect", "POST /api/detect", "GET /api/shop", "POST /api/shop", "POST /api/items",
              "POST /api/items/manifest", "POST /api/items/delete", "DELETE /api/items/{item_id}", "GET /api/jobs",
              "GET /api/jobs/{job_id}", "GET /images/{sha256}", "GET /thumbs/{sha256}"]


EXAMPLES = {"positive": 25, "negative": 10}  # invalid requests cost more to generate; 10 keep the file quick
# every request to these is valid (no body, no parameter but free-form strings in the path, and the key is always
# sent): there is no invalid request to make (hypothesis would raise Unsatisfiable), so they only get valid ones
ANY_REQUEST_VALID = {"GET /api/health", "GET /api/ready", "GET /api/info", "GET /api/facets",
                     "GET /api/items/{item_id}", "DELETE /api/items/{item_id}", "GET /api/jobs",
                     "GET /api/jobs/{job_id}", "GET /images/{sha256}"}
CASES = [(op, mode) for op in OPERATIONS for mode in ("positive", "negative")
         if mode == "positive" or op not in ANY_REQUEST_VALID]


def _nothing_can_be_invalid(app, operation: str) -> bool:
    """The operation has no body, and no parameter but free-form strings in the path."""
    method, path = operation.split(" ", 1)
    spec = app.openapi()["paths"][path][method.lower()]
    return "requestBody" not in spec and all(
        p["in"] == "path" and p["schema"].get("type") == "string" and set(p["schema"]) <= {"type", "title"}
        for p in spec.get("parameters", []))


@pytest.mark.parametrize("operation,mode", CASES)
def test_no_server_errors_and_responses_match_schema(app, operation, mode):
    """Valid requests (positive) get documented answers that match their schema; invalid ones (negative) also get
    a documented 4xx answer, never a 5xx, and are never accepted."""
    from hypothesis import given
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import negative_data_rejection

    if ("detect" in operation or "shop" in operation) and not DETECTOR.is_file():
        pytest.skip(f"object detector not found at {DETECTOR} (without it /api/detect answers 503 by design)")
    method, path = operation.split(" ", 1)
    generation = GenerationMode(mode)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # the key is not generated: every request sends the right one (test_auth.py covers missing and wrong keys), so
    # an invalid request is invalid in its path, query or body, never merely in a malformed Authorization header
    schema.config.generation.update(with_security_parameters=False)
    op = schema[path][method]
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    if generation.is_negative:
        checks.append(negative_data_rejection)

    @given(case=op.as_strategy(generation_mode=generation))
    @settings(max_examples=EXAMPLES[mode], deadline=None, suppress_health_check=list(HealthCheck),
              derandomize=True, database=None)
    def check(case):
        case.headers = {**(case.headers or {}), "X-API-Key": KEY}
        case.call_and_validate(checks=checks)

    check()


def test_every_operation_is_covered(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    found = {f"{r.ok().method.upper()} {r.ok().path}" for r in schema.get_all_operations()}
    assert found == set(OPERATIONS)
    # an operation that gains a parameter or a body must get invalid requests too
    assert {op for op in OPERATIONS if _nothing_can_be_invalid(app, op)} == ANY_REQUEST_VALID
