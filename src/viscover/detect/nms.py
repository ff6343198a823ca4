"""Greedy non-maximum suppression in numpy, per class: the detector's raw output repeats each object many times."""

from __future__ import annotations

import numpy as np


def iou_matrix(boxes: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of (N, 4) boxes x1, y1, x2, y2; 0 where the union is empty."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    area = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    iw = np.clip(np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = area[:, None] + area[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray | None = None,
        iou_threshold: float = 0.5) -> np.ndarray:
    """Indices of the boxes kept, best score first: each box suppresses lower-scored boxes of its own class whose
    IoU with it is above `iou_threshold` (boxes of other classes never suppress each other)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    overlap = iou_matrix(np.asarray(boxes)[order]) > iou_threshold
    if classes is not None:
        cls = np.asarray(classes).reshape(-1)[order]
        overlap &= cls[:, None] == cls[None, :]
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlap[i]
    return order[np.asarray(keep, dtype=np.int64)]
