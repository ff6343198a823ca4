"""When a newly trained ranker replaces the one related items use: only when it beats the heuristic on held-out
queries, unless the user insists."""

from __future__ import annotations

from pathlib import Path
from typing import ContextManager, Protocol

from viscover.errors import Remedy
from viscover.rank.ranker import LightGBMRanker


class WriteLock(Protocol):
    """A lock held around writes to a home (viscover.fsutil.HomeLock)."""

    def held(self) -> ContextManager[None]: ...


def should_save(report: dict, metric: str, force: bool) -> tuple[bool, str | None]:
    """(save?, why not) for a training report with metrics {"learned": {metric: ...}, "heuristic": {...}}: save when
    the learned ranker is at least as good on `metric`, or when either figure is missing, or when forced."""
    metrics = report.get("metrics") or {}
    learned = metrics.get("learned", {}).get(metric)
    heuristic = metrics.get("heuristic", {}).get(metric)
    if force or learned is None or heuristic is None or learned >= heuristic:
        return True, None
    return False, (f"held-out {metric} {learned:.4f} is below the heuristic's {heuristic:.4f}; related items keep "
                   "the heuristic")


def save_if_better(ranker: LightGBMRanker, report: dict, metric: str, folder: Path, *, force: bool,
                   write_lock: WriteLock) -> bool:
    """Save `ranker` in `folder` if `should_save` says so, holding `write_lock` only for the save (training needs
    none); record the decision in the report ("saved", and "not_saved_because" when not). Returns whether saved."""
    saved, why_not = should_save(report, metric, force)
    report["saved"] = saved
    if saved:
        with write_lock.held():
            ranker.save(folder)
    else:
        report["not_saved_because"] = why_not
    return saved


def not_saved_remedy(report: dict) -> Remedy | None:
    """What would save a ranker that lost to the heuristic (None when it was saved): for shells to phrase beside
    the report's "not_saved_because"."""
    return Remedy("force-save") if "not_saved_because" in report else None
