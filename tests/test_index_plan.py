"""The memory-budget choice of index kind (`plan_index`): a pure function of (items, dim, settings), shown by
`viscover index --plan`. Without a budget it keeps today's choice (exact, then HNSW above hnsw_threshold); with one
it takes the first of exact, HNSW, IVF-PQ and binary codes whose estimated RAM fits."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import needs_data
from viscover import Settings
from viscover.cli.app import app
from viscover.errors import ConfigError
from viscover.index.plan import parse_bytes, plan_index

GB, MB = 10**9, 10**6
runner = CliRunner()


@pytest.mark.parametrize("n, dim, budget, kind", [
    (1_000, 256, "", "exact"),
    (50_000, 256, "", "exact"),
    (50_001, 256, "", "hnsw"),
    (10_000_000, 256, "", "hnsw"),  # no budget: never compressed
    (10_000, 256, "1GB", "exact"),
    (1_000_000, 256, "4GB", "hnsw"),  # ~1.3 KB per item fits
    (1_000_000, 256, "1GB", "ivfpq"),  # floats do not fit in RAM: codes, floats memory-mapped
    (1_000_000, 256, "100MB", "binary"),  # PQ codes + ids do not fit either
    (1_000_000, 256, "1MB", "binary"),  # nothing fits: the smallest, and the plan says so
    (100_000_000, 256, "64GB", "ivfpq"),
])
def test_the_first_kind_that_fits_the_budget(n, dim, budget, kind):
    plan = plan_index(n, dim, Settings(memory_budget=budget))
    assert plan.kind == kind, plan
    assert plan.items == n and plan.dim == dim and plan.ram_bytes == plan.ram_per_item * n
    assert plan.disk_bytes == plan.disk_per_item * n and plan.reason
    if budget and kind != "binary":
        assert plan.ram_bytes <= parse_bytes(budget)


def test_estimates_shrink_from_hnsw_to_codes_and_the_parameters_are_sound():
    s = Settings(memory_budget="1TB")
    plans = {k: plan_index(1_000_000, 256, s.replace(index_kind=k)) for k in ("exact", "hnsw", "ivfpq", "binary")}
    assert plans["hnsw"].ram_per_item > plans["exact"].ram_per_item > plans["ivfpq"].ram_per_item \
        > plans["binary"].ram_per_item
    assert plans["ivfpq"].disk_per_item >= 4 * 256  # the floats for re-ranking live on disk
    ivf = plans["ivfpq"].params
    assert 256 % ivf["pq_m"] == 0 and ivf["pq_m"] == 32 and ivf["nlist"] == 4000 and ivf["nprobe"] == 32
    assert ivf["train_size"] <= 1_000_000 and ivf["train_size"] >= 39 * ivf["nlist"]
    assert plans["hnsw"].params["m"] == s.hnsw_m
    small = plan_index(2_000, 64, s.replace(index_kind="ivfpq")).params
    assert 64 % small["pq_m"] == 0 and small["nlist"] * 39 <= 2_000 and small["nbits"] <= 8


def test_forced_kind_and_the_reason_names_the_budget():
    forced = plan_index(100, 64, Settings(index_kind="binary"))
    assert forced.kind == "binary" and "index_kind" in forced.reason
    tight = plan_index(1_000_000, 256, Settings(memory_budget="1MB"))
    assert "exceeds" in tight.reason and "1MB" in tight.reason or "1.0 MB" in tight.reason
    assert plan_index(1_000, 256, Settings()).to_dict()["kind"] == "exact"


@pytest.mark.parametrize("text, value", [("", 0), ("123", 123), ("2GB", 2 * GB), ("512 MB", 512 * MB),
                                         ("1.5gb", 1_500_000_000), ("4GiB", 4 * 2**30), ("10kb", 10_000)])
def test_sizes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("bad", ["lots", "-1GB", "2XB"])
def test_bad_sizes_and_kinds_name_the_setting(bad):
    with pytest.raises(ConfigError, match="memory_budget"):
        plan_index(10, 8, Settings(memory_budget=bad))
    with pytest.raises(ConfigError, match="index_kind"):
        plan_index(10, 8, Settings(index_kind="faster"))


@needs_data
def test_index_plan_on_the_command_line(indexed_home):
    """`viscover index --plan` shows the kind `index` would build for the catalogue, without building it; a
    memory_budget from the environment changes the choice and the reason says why."""
    result = runner.invoke(app, ["index", "--plan", "--json", "--home", str(indexed_home)])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["kind"] == "exact" and plan["items"] == 59 and plan["dim"] > 0
    assert plan["ram_bytes"] == plan["ram_per_item"] * 59 and "hnsw_threshold" in plan["reason"]
    tight = runner.invoke(app, ["index", "--plan", "--home", str(indexed_home)],
                          env={"VISCOVER_MEMORY_BUDGET": "10KB"})
    assert tight.exit_code == 0, tight.output
    text = " ".join(tight.output.split())
    assert "binary" in text and "exceeds" in text and "10KB" in text
    bad = runner.invoke(app, ["index", "--plan", "--home", str(indexed_home)], env={"VISCOVER_INDEX_KIND": "fast"})
    assert bad.exit_code != 0 and "index_kind" in bad.output
