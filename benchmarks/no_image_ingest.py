"""Ingesting items without image files (a manifest with an id column and no path column), next to raw SQLite.

Data: a CSV of N synthetic items (id, title, label.category with 50 values, boards: 1-3 of N/10 boards), written
once. Steps, in one process, alternating, median of --repeats runs, each into a fresh home:
  * viscover - `Engine.ingest(manifest)`: rows streamed in batches, a placeholder image row per item, items,
               labels and board memberships upserted in batches of 256 (what `viscover ingest` does).
  * raw      - the same rows into the same tables with the standard library alone: csv.reader, hashlib for
               the placeholder hashes, sqlite3 executemany in one transaction per 256 rows (same PRAGMAs).

    .venv/bin/python benchmarks/no_image_ingest.py --json benchmarks/results/no_image_ingest.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, environment  # noqa: E402

BATCH = 256


def write_manifest(path: Path, n: int) -> None:
    boards = max(1, n // 10)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "label.category", "boards"])
        for i in range(n):
            w.writerow([f"sku-{i:08d}", f"product {i}", f"c{i % 50}",
                        ";".join(f"board-{(i * 7 + j * 13) % boards}" for j in range(1 + i % 3))])


def run_viscover(manifest: Path, home: Path) -> float:
    from viscover import Engine, Settings

    start = time.perf_counter()
    with Engine(home, Settings(workers=1)) as engine:
        report = engine.ingest(manifest)
    seconds = time.perf_counter() - start
    assert report.counts.added == report.rows and report.without_image == report.rows, report.to_dict()
    return seconds


def run_raw(manifest: Path, home: Path) -> float:
    from sqlalchemy import create_engine

    from viscover.catalog import schema

    home.mkdir(parents=True)
    db = home / "catalog.sqlite"
    schema.metadata.create_all(create_engine(f"sqlite:///{db}"))  # the same tables; not timed
    start = time.perf_counter()
    con = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        con.execute(f"PRAGMA {pragma}")
    board_ids: dict[str, int] = {}
    with open(manifest, newline="") as f:
        rows = csv.reader(f)
        next(rows)
        while True:
            batch = [r for _, r in zip(range(BATCH), rows)]
            if not batch:
                break
            con.execute("BEGIN")
            shas = [hashlib.sha256(f"no-image:{r[0]}".encode()).hexdigest() for r in batch]
            con.executemany("INSERT INTO images (sha256, width, height, format, nbytes, uri) "
                            "VALUES (?, 0, 0, 'none', 0, '')", [(s,) for s in shas])
            con.executemany("INSERT INTO items (key, image_id, source, title) VALUES "
                            "(?, (SELECT id FROM images WHERE sha256 = ?), '', ?)",
                            [(r[0], s, r[1]) for r, s in zip(batch, shas)])
            ids = dict(con.execute(f"SELECT key, id FROM items WHERE key IN ({','.join('?' * len(batch))})",
                                   [r[0] for r in batch]))
            con.executemany("INSERT INTO labels (item_id, task, label) VALUES (?, 'category', ?)",
                            [(ids[r[0]], r[2]) for r in batch])
            members = []
            for r in batch:
                for name in r[3].split(";"):
                    if name not in board_ids:
                        board_ids[name] = con.execute("INSERT INTO boards (name) VALUES (?)", (name,)).lastrowid
                    members.append((board_ids[name], ids[r[0]]))
            con.executemany("INSERT INTO board_items (board_id, item_id) VALUES (?, ?)", members)
            con.execute("COMMIT")
    con.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="viscover-noimage-"))
    try:
        manifest = work / "items.csv"
        write_manifest(manifest, args.items)
        times: dict[str, list[float]] = {"viscover": [], "raw": []}
        for r in range(args.repeats):
            for step, fn in (("viscover", run_viscover), ("raw", run_raw)):
                home = work / f"{step}-{r}"
                times[step].append(fn(manifest, home))
                shutil.rmtree(home)
        result = {"benchmark": "no_image_ingest", "items": args.items, "repeats": args.repeats,
                  "note": "2 cores shared with other agents' work while measured",
                  **environment(), "steps": {}}
        for step, ts in times.items():
            median = statistics.median(ts)
            result["steps"][step] = {"seconds_median": round(median, 3), "seconds_all": [round(t, 3) for t in ts],
                                     "rows_per_second": round(args.items / median)}
        result["viscover_over_raw"] = round(result["steps"]["viscover"]["seconds_median"]
                                            / result["steps"]["raw"]["seconds_median"], 2)
        emit(result, args.json_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
