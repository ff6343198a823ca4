"""The server's own image downloads (search by URL): at most `limit` at once, waited for on the event loop (no
request thread each), and any beyond the limit refused at once with 503 rather than queued behind slow ones."""

from __future__ import annotations

import contextlib
import math
from typing import AsyncIterator

from viscover.serve.deps import BusyError


class DownloadSlots:
    """A count of downloads in progress; only the event loop's thread touches it, so it needs no lock."""

    def __init__(self, limit: int):
        self.limit, self.in_use = max(1, limit), 0

    @contextlib.asynccontextmanager
    async def slot(self, retry_after: float) -> AsyncIterator[None]:
        """Hold one slot while downloading; all taken: BusyError, to retry in `retry_after` s (when one frees)."""
        if self.in_use >= self.limit:
            raise BusyError(f"{self.limit} image downloads are in progress, the most this server makes at once "
                            "(url_downloads); retry in a few seconds", retry_after=math.ceil(retry_after))
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1
