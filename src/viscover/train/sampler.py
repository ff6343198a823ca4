"""Multi-task, class-balanced batches (Zhai et al. 2019; Zhai & Wu 2019).

Every batch gives each (manifest, task) stream an equal share; within a stream it picks classes uniformly and
`per_class` images of each (with replacement only when a class has fewer). One epoch is the number of steps
that passes once over the largest stream.
"""

from __future__ import annotations

import math

import numpy as np


class MultiTaskSampler:
    def __init__(self, streams: list[tuple[np.ndarray, np.ndarray]], batch_size: int, per_class: int, seed: int = 0):
        """`streams`: (row indices, label code of each row) for each stream with training rows."""
        self.streams = [(np.asarray(r, np.int64), np.asarray(c, np.int64)) for r, c in streams if len(r)]
        if not self.streams:
            raise ValueError("no stream has training rows")
        self.share = max(1, batch_size // len(self.streams))
        self.per_class = max(1, min(per_class, self.share))
        self.rng = np.random.default_rng(seed)
        self._by_class = []
        for rows, codes in self.streams:
            order = np.argsort(codes, kind="stable")
            classes, starts = np.unique(codes[order], return_index=True)
            self._by_class.append((classes, np.split(rows[order], starts[1:])))

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(max(len(r) for r, _ in self.streams) / self.share))

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, stream index of each row) for one step."""
        rows, which = [], []
        for s, (classes, members) in enumerate(self._by_class):
            n_classes = max(1, self.share // self.per_class)
            k = self.per_class
            if len(classes) < n_classes:  # few classes: take them all, with more images each
                n_classes, k = len(classes), math.ceil(self.share / len(classes))
            picked = self.rng.choice(len(classes), size=n_classes, replace=False)
            taken = [self.rng.choice(members[c], size=k, replace=len(members[c]) < k) for c in picked]
            part = np.concatenate(taken)[: self.share]
            rows.append(part)
            which.append(np.full(len(part), s))
        return np.concatenate(rows), np.concatenate(which)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state
