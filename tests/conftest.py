"""Shared fixtures: small real-image manifests from ../shared/data, and one indexed home reused across tests."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("VISCOVER_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
GROCERY = SHARED / "grocery"
CLOTHING = SHARED / "clothing"
MODELS = Path(os.environ.get("VISCOVER_SHARED_MODELS", SHARED.parent / "models"))
DETECTOR = MODELS / "centernet-coco.onnx"

needs_data = pytest.mark.skipif(not (GROCERY / "classes.csv").is_file() or not (CLOTHING / "images.csv").is_file(),
                                reason=f"real image data not found at {SHARED} (set VISCOVER_SHARED_DATA)")
needs_detector = pytest.mark.skipif(not DETECTOR.is_file(), reason=f"object detector not found at {DETECTOR} "
                                    "(set VISCOVER_SHARED_MODELS to the folder holding centernet-coco.onnx)")

# CI sets VISCOVER_STRICT_TESTS=1: then a skipped test fails the run (missing data, detector, Chromium,
# PostgreSQL or a dev package would otherwise leave most of the suite unrun and the run green).
STRICT = os.environ.get("VISCOVER_STRICT_TESTS", "") not in ("", "0")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in a strict run (VISCOVER_STRICT_TESTS=1): {reason}"


def pytest_collectreport(report):
    if STRICT and report.skipped:  # a whole module skipped, e.g. by pytest.importorskip
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"module skipped in a strict run (VISCOVER_STRICT_TESTS=1): {reason}"

PRODUCTS = ["Golden-Delicious", "Banana", "Oatly-Oat-Milk", "Red-Bell-Pepper", "Lime"]


def grocery_subset(per_product_train: int = 4, per_product_val: int = 2, products=PRODUCTS) -> list[dict]:
    """A few photos per product from train and val, plus each product's catalogue image."""
    from viscover.datasets import grocery_rows

    counts: dict[tuple[str, str], int] = {}
    rows = []
    limits = {"train": per_product_train, "val": per_product_val, "catalog": 1}
    for row in grocery_rows(GROCERY):
        key = (row["label.product"], row["split"])
        if row["label.product"] in products and counts.get(key, 0) < limits[row["split"]]:
            counts[key] = counts.get(key, 0) + 1
            rows.append(row)
    return rows


def clothing_subset(n_boards: int = 4, per_board: int = 6) -> list[dict]:
    from viscover.datasets import clothing_rows

    by_board: dict[str, list[dict]] = {}
    for row in clothing_rows(CLOTHING):
        by_board.setdefault(row["boards"], []).append(row)
    boards = sorted(b for b, rows in by_board.items() if len(rows) >= per_board)[:n_boards]
    return [r for b in boards for r in by_board[b][:per_board]]


def write_csv(rows: list[dict], path: Path) -> Path:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory):
    """Keep exported models in one cache for the whole run (the user's cache unless VISCOVER_CACHE is set)."""
    if "VISCOVER_CACHE" not in os.environ:
        os.environ["VISCOVER_CACHE"] = str(Path(__file__).resolve().parents[1] / ".cache")
    yield


@pytest.fixture(scope="session")
def grocery_manifest(tmp_path_factory) -> Path:
    if not (GROCERY / "classes.csv").is_file():
        pytest.skip(f"grocery data not found at {GROCERY}")
    return write_csv(grocery_subset(), tmp_path_factory.mktemp("manifests") / "grocery.csv")


@pytest.fixture(scope="session")
def clothing_manifest(tmp_path_factory) -> Path:
    if not (CLOTHING / "images.csv").is_file():
        pytest.skip(f"clothing data not found at {CLOTHING}")
    return write_csv(clothing_subset(), tmp_path_factory.mktemp("manifests") / "clothing.csv")


@pytest.fixture(scope="session")
def indexed_home(tmp_path_factory, grocery_manifest, clothing_manifest) -> Path:
    """A home with the grocery and clothing subsets ingested and indexed (read-only for tests)."""
    from viscover import Engine, Settings

    home = tmp_path_factory.mktemp("home")
    with Engine(home, Settings(workers=1)) as engine:
        engine.ingest(grocery_manifest, image_roots=[SHARED])
        engine.ingest(clothing_manifest, image_roots=[SHARED])
        engine.index()
    return home


@pytest.fixture()
def engine(indexed_home):
    from viscover import Engine, Settings

    with Engine(indexed_home, Settings(workers=1)) as e:
        yield e
