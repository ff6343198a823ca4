"""Schemathesis against the server's own OpenAPI schema: generated requests (valid and not) never get a 500, and
responses match the schema. Bounded: a few dozen examples per operation, on a copy of the indexed home."""

from __future__ import annotations

import shutil

import pytest

from conftest import SHARED, needs_data

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install -e '.[dev]')")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance  # noqa: E402

pytestmark = [needs_data, pytest.mark.slow]
KEY = "contract-key"
DETECTOR = SHARED.parent / "models" / "centernet-coco.onnx"


@pytest.fixture(scope="module")
def app(indexed_home, tmp_path_factory):
    from viscover import Engine, Settings
    from viscover.serve import ServeOptions, create_app

    home = tmp_path_factory.mktemp("contract") / "home"
    shutil.copytree(indexed_home, home)
    engine = Engine(home, Settings(workers=1, detector=str(DETECTOR) if DETECTOR.is_file() else ""))
    yield create_app(engine, ServeOptions(api_key=KEY))
    engine.close()


OPERATIONS = ["GET /api/health", "GET /api/ready", "GET /api/info", "GET /api/items", "GET /api/items/{item_id}",
              "GET /api/boards", "GET /api/boards/{name}", "GET /api/search", "POST /api/search", "GET /api/related",
              "GET /api/detect", "POST /api/detect", "GET /api/shop", "POST /api/shop", "POST /api/items",
              "POST /api/items/manifest", "POST /api/items/delete", "DELETE /api/items/{item_id}", "GET /api/jobs",
              "GET /api/jobs/{job_id}", "GET /images/{sha256}", "GET /thumbs/{sha256}"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_no_server_errors_and_responses_match_schema(app, operation):
    from hypothesis import given
    from schemathesis.checks import not_a_server_error

    if ("detect" in operation or "shop" in operation) and not DETECTOR.is_file():
        pytest.skip(f"object detector not found at {DETECTOR} (without it /api/detect answers 503 by design)")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    method, path = operation.split(" ", 1)
    op = schema[path][method]

    @given(case=op.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def check(case):
        case.headers = {**(case.headers or {}), "X-API-Key": KEY}
        case.call_and_validate(checks=[not_a_server_error, status_code_conformance, response_schema_conformance])

    check()


def test_every_operation_is_covered(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    found = {f"{r.ok().method.upper()} {r.ok().path}" for r in schema.get_all_operations()}
    assert found == set(OPERATIONS)
