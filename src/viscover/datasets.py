"""Manifests for the public datasets used by the demo, tests and benchmarks (see ../shared/data/README.md)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Iterable, Iterator

from viscover.errors import BadManifestError

NOISE_LABELS = {"Not sure", "Skip", "Other"}  # clothing labels that name no category
HOLDOUT = 0.2  # fraction of clothing contributors held out as split "val"


def grocery_rows(root: Path) -> Iterator[dict]:
    """Photos (train and val splits) and catalogue (iconic) images of the Grocery Store Dataset."""
    root = Path(root).resolve()
    classes_file = root / "classes.csv"
    if not classes_file.is_file():
        raise BadManifestError(f"{root}: not the Grocery Store Dataset (no classes.csv)")
    classes = {}
    with open(classes_file, newline="") as f:
        for row in csv.reader(f):
            if not row or not row[1].strip().isdigit():
                continue  # header
            name, fine, coarse_name, _, iconic, description = [c.strip() for c in row[:6]]
            classes[int(fine)] = (name, coarse_name, iconic.lstrip("/"), description.lstrip("/"))
    for split in ("train", "val"):
        with open(root / f"{split}.txt") as f:
            for line in f:
                if not line.strip():
                    continue
                rel, fine, _ = [c.strip() for c in line.split(",")]
                name, coarse, _, _ = classes[int(fine)]
                yield {"id": rel, "path": str(root / rel), "domain": "photo", "split": split,
                       "label.product": name, "label.category": coarse}
    for _, (name, coarse, iconic, description) in sorted(classes.items()):
        text_file = root / description
        text = text_file.read_text(errors="replace").strip() if text_file.is_file() else ""
        yield {"id": iconic, "path": str(root / iconic), "domain": "catalog", "split": "catalog",
               "title": name.replace("-", " "), "description": text[:2000],
               "label.product": name, "label.category": coarse}


def _held_out(sender: str) -> bool:
    digest = hashlib.sha256(f"viscover-clothing-{sender}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < HOLDOUT


def clothing_rows(root: Path) -> Iterator[dict]:
    """Clothing photos: label.category (noise labels left empty), one board per contributor, fixed split."""
    root = Path(root).resolve()
    table = root / "images.csv"
    if not table.is_file():
        raise BadManifestError(f"{root}: not the clothing dataset (no images.csv)")
    with open(table, newline="") as f:
        for row in csv.DictReader(f):
            label = row["label"].strip()
            yield {"id": row["image"], "path": str(root / "images" / f"{row['image']}.jpg"), "domain": "photo",
                   "split": "val" if _held_out(row["sender_id"]) else "train",
                   "boards": f"sender-{row['sender_id']}",
                   "label.category": "" if label in NOISE_LABELS else label}


def write_manifest(rows: Iterable[dict], out: Path) -> int:
    """Write rows as CSV, JSONL or Parquet by the file's suffix; return the row count."""
    rows = list(rows)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    suffix = out.suffix.lower()
    if suffix == ".csv":
        with open(out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    elif suffix in (".jsonl", ".ndjson"):
        with open(out, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows]), out)
    else:
        raise BadManifestError(f"{out}: unknown manifest type; use .csv, .jsonl or .parquet")
    return len(rows)
