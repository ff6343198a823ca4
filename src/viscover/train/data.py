"""Training data from manifests: one row per image, integer labels per task, train/validation split, and the
(manifest, task) streams that batches mix uniformly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from viscover.catalog.records import Problem
from viscover.catalog.sources import manifest_source
from viscover.errors import BadManifestError


@dataclass(frozen=True)
class Stream:
    """The rows of one manifest (and domain) labelled for one task: a dataset in the sense of multi-task
    training; every batch gives each stream an equal share."""

    manifest: str
    task: str
    domain: str | None
    train_rows: np.ndarray  # row indices used for training
    val_rows: np.ndarray  # row indices held out for validation

    @property
    def name(self) -> str:
        return f"{Path(self.manifest).stem}/{self.task}" + (f"/{self.domain}" if self.domain else "")


@dataclass
class TrainData:
    locations: list[str]  # image path or URL per row
    domains: list[str | None]
    is_val: np.ndarray  # bool per row
    labels: dict[str, np.ndarray]  # task -> label code per row, -1 where the row has no label for the task
    classes: dict[str, list[str]]  # task -> label names by code
    streams: list[Stream]
    skipped: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.locations)

    def drop_rows(self, bad: np.ndarray) -> None:
        """Forget rows whose images could not be used (their labels become -1; streams lose them)."""
        for codes in self.labels.values():
            codes[bad] = -1
        keep = ~bad
        self.streams = [Stream(s.manifest, s.task, s.domain, s.train_rows[keep[s.train_rows]],
                               s.val_rows[keep[s.val_rows]]) for s in self.streams]


def load_train_data(manifests: list[str], tasks: list[str], val_split: str = "val",
                    balance_domains: bool = True) -> TrainData:
    """Read the manifests; a row is used if it has a label for at least one of `tasks`. With `balance_domains`,
    each domain of a manifest (e.g. photo, catalog) is its own stream, so that a few catalogue images get as much
    of every batch as thousands of photos."""
    locations, domains, is_val, raw_labels, origin = [], [], [], [], []
    skipped: list[Problem] = []
    for m in manifests:
        for row in manifest_source(Path(m), image_roots=None).rows:  # the user's own manifests: any path
            if isinstance(row, Problem):
                skipped.append(row)
                continue
            labels = {t: row.labels.get(t) for t in tasks}
            if all(v is None for v in labels.values()):
                continue
            locations.append(row.location)
            domains.append(row.fields.get("domain"))
            is_val.append(row.fields.get("split") == val_split)
            raw_labels.append(labels)
            origin.append(m)
    classes, codes = {}, {}
    for t in tasks:
        names = sorted({r[t] for r in raw_labels if r[t] is not None})
        if not names:
            raise BadManifestError(f"task {t!r}: no row of {', '.join(manifests)} has a label.{t} value")
        index = {n: i for i, n in enumerate(names)}
        classes[t] = names
        codes[t] = np.array([index[r[t]] if r[t] is not None else -1 for r in raw_labels], np.int64)
    val = np.array(is_val, bool)
    origin_arr = np.array(origin)
    dom = np.array([d or "" for d in domains])
    streams = []
    for m in manifests:
        for t in tasks:
            for d in (sorted(set(dom)) if balance_domains else [None]):
                mine = (origin_arr == m) & (codes[t] >= 0)
                if d is not None:
                    mine &= dom == d
                if mine.any():
                    streams.append(Stream(m, t, d or None, np.nonzero(mine & ~val)[0], np.nonzero(mine & val)[0]))
    if not any(len(s.train_rows) for s in streams):
        raise BadManifestError(f"no labelled training rows (every labelled row has split {val_split!r})")
    return TrainData(locations, domains, val, codes, classes, streams, skipped)
