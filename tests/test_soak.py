"""Searches keep answering while items are added and removed over the API and another process rebuilds the index:
a bounded run of benchmarks/soak.py against a real server on loopback."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from conftest import grocery_subset, needs_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
pytestmark = [needs_data, pytest.mark.slow]


def test_soak_searches_never_fail_during_writes(indexed_home, tmp_path):
    from soak import run_soak

    home = tmp_path / "home"
    shutil.copytree(indexed_home, home)
    new = [Path(r["path"]) for r in grocery_subset(per_product_train=3, per_product_val=0,
                                                    products=["Orange", "Kiwi", "Yellow-Onion", "Carrots"])]
    result = run_soak(home, new, seconds=20, searchers=2, rebuild_every=2)
    print(result)
    assert result["errors"] == 0, result["error_examples"]
    assert result["write_failures"] == 0
    assert result["rounds"] >= 2 and result["rebuilds"] >= 1  # the writes and a rebuild really overlapped searches
    assert result["items_added"] == result["items_removed"] > 0
    assert result["not_searchable_after_add"] == 0 and result["still_listed_after_delete"] == 0
    assert all(result["latency"][k]["requests"] > 0 for k in ("search_by_id", "search_by_upload", "related"))
