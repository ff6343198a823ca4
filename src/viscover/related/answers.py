"""Related-items answers kept for repeated queries. Walks are seeded, so the same query on the same graph, index,
ranker and catalogue gives the same answer: keeping it is exact, not an approximation. Popular items are asked for
over and over (a walk of 100k steps costs about 10 ms at 1M items), so a server keeps the latest answers."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Hashable


class AnswerCache:
    """Up to `max_entries` answers of one service object and one catalogue version, least recently used dropped
    first; a new service (graph, index or ranker changed) or catalogue version (any commit) empties it. A version
    of None (a database without a change counter) keeps nothing."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._service: weakref.ref | None = None  # a weak reference: a new service may reuse a freed one's id()
        self._version: Hashable | None = None
        self._answers: OrderedDict[Hashable, list] = OrderedDict()

    def _owns(self, service: object, version: Hashable) -> bool:
        return self._service is not None and self._service() is service and self._version == version

    def get(self, service: object, version: Hashable | None, key: Hashable) -> list | None:
        if version is None or self.max_entries <= 0:
            return None
        with self._lock:
            if not self._owns(service, version):
                return None
            found = self._answers.get(key)
            if found is not None:
                self._answers.move_to_end(key)
            return None if found is None else list(found)

    def put(self, service: object, version: Hashable | None, key: Hashable, answer: list) -> None:
        if version is None or self.max_entries <= 0:
            return
        with self._lock:
            if not self._owns(service, version):
                self._service, self._version, self._answers = weakref.ref(service), version, OrderedDict()
            self._answers[key] = list(answer)
            self._answers.move_to_end(key)
            while len(self._answers) > self.max_entries:
                self._answers.popitem(last=False)
