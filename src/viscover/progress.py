"""Progress reporting without a UI dependency: the core calls a factory, the CLI passes a Rich one."""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Iterator, Protocol

Advance = Callable[[int], None]


class ProgressFactory(Protocol):
    def __call__(self, description: str, total: int | None) -> ContextManager[Advance]: ...


@contextlib.contextmanager
def no_progress(description: str, total: int | None) -> Iterator[Advance]:
    """The default: report nothing."""
    yield lambda n: None
