"""Download an image URL within a size limit and one deadline for the whole download, blocking or async.

Every hop goes through the SSRF guard (`viscover.imaging.netguard`): redirects are followed here, at most
MAX_REDIRECTS of them, each one checked before it is requested. Proxy variables are ignored: the guard must see
the real destination. `timeout` bounds the whole download (every hop and read), not each read: a server sending
one byte now and then would otherwise hold the download, and whatever waits for it, for as long as it liked.
The blocking form is for ingest and the library; the async one lets a server wait for downloads without
holding a thread each, and cuts them off at the deadline exactly.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from viscover.errors import BadImageError
from viscover.imaging.netguard import AllowList, Destination, check_url, parse_allow_list

if TYPE_CHECKING:  # httpx is imported when a URL is fetched, not when viscover.imaging is
    import httpx

MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}


def too_slow(url: str, timeout: float) -> BadImageError:
    return BadImageError(f"{url}: the download took longer than {timeout:g} s (url_timeout); give a faster image "
                         "URL or raise url_timeout")


class _Hops:
    """The redirect chain of one download: where to go next, what to call it in messages, and its deadline."""

    def __init__(self, url: str, timeout: float, allow: AllowList):
        self.url, self.current, self.timeout, self.allow = url, url, timeout, allow
        self.deadline = time.monotonic() + timeout

    @property
    def what(self) -> str:
        return self.url if self.current == self.url else f"{self.url} (redirected to {self.current})"

    def remaining(self) -> float:
        """Seconds left before the deadline; past it, the download is refused as too slow."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise too_slow(self.url, self.timeout)
        return left

    def check(self) -> Destination:
        return check_url(self.current, self.allow, what=self.what)

    def redirected(self, response: httpx.Response) -> bool:
        """Follow a redirect (True: request the new `current`), or refuse anything but 200."""
        import httpx

        location = response.headers.get("location")
        if response.status_code in _REDIRECTS and location:
            self.current = str(httpx.URL(self.current).join(location))
            return True
        if response.status_code != 200:
            raise BadImageError(f"{self.what}: HTTP {response.status_code}")
        return False

    def too_many(self) -> BadImageError:
        return BadImageError(f"{self.url}: more than {MAX_REDIRECTS} redirects; give the final address of the image")


class _Body:
    """The bytes of a response as they arrive, refused once over `max_bytes` or past the deadline."""

    def __init__(self, response: httpx.Response, hops: _Hops, max_bytes: int):
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise BadImageError(f"{hops.what}: {int(declared):,} bytes, over the limit of {max_bytes:,}")
        self.hops, self.max_bytes, self.chunks, self.total = hops, max_bytes, [], 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.total > self.max_bytes:
            raise BadImageError(f"{self.hops.what}: more than {self.max_bytes:,} bytes, over the limit")
        self.chunks.append(chunk)
        self.hops.remaining()  # a trickle of small chunks must not outlast the deadline

    def data(self) -> bytes:
        return b"".join(self.chunks)


def _failed(url: str, error: Exception) -> BadImageError:
    import httpx

    if isinstance(error, httpx.InvalidURL):
        return BadImageError(f"{url}: invalid URL ({error})")
    return BadImageError(f"{url}: download failed ({type(error).__name__}: {error})")


def download(url: str, *, max_bytes: int, timeout: float, url_allow_hosts: str = "") -> bytes:
    """The bytes at an http(s) URL, blocking; BadImageError saying why not. Each hop's connection and reads wait
    at most the time left, so the download ends at most about one deadline late (one read that began just
    before it), and a trickle of bytes at the deadline itself."""
    import httpx

    hops = _Hops(url, timeout, parse_allow_list(url_allow_hosts))
    try:
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                dest = hops.check()
                with client.stream("GET", dest.url, headers=dest.headers, extensions=dest.extensions,
                                   timeout=hops.remaining()) as response:
                    if hops.redirected(response):
                        continue
                    body = _Body(response, hops, max_bytes)
                    for chunk in response.iter_bytes():
                        body.add(chunk)
                    return body.data()
    except httpx.TimeoutException:  # a wait of all the time left: the deadline has passed
        raise too_slow(url, timeout) from None
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        raise _failed(url, e) from None
    raise hops.too_many()


async def download_async(url: str, *, max_bytes: int, timeout: float, url_allow_hosts: str = "") -> bytes:
    """The bytes at an http(s) URL without blocking the event loop; cut off exactly at the deadline. Host names
    are resolved on a thread of this download's own, never one of the caller's pool (which may be busy)."""
    import anyio
    import anyio.to_thread
    import httpx

    hops = _Hops(url, timeout, parse_allow_list(url_allow_hosts))
    resolver = anyio.CapacityLimiter(1)
    try:
        with anyio.fail_after(timeout):
            async with httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=timeout) as client:
                for _ in range(MAX_REDIRECTS + 1):
                    dest = await anyio.to_thread.run_sync(hops.check, limiter=resolver,
                                                          abandon_on_cancel=True)
                    async with client.stream("GET", dest.url, headers=dest.headers,
                                             extensions=dest.extensions) as response:
                        if hops.redirected(response):
                            continue
                        body = _Body(response, hops, max_bytes)
                        async for chunk in response.aiter_bytes():
                            body.add(chunk)
                        return body.data()
    except (TimeoutError, httpx.TimeoutException):
        raise too_slow(url, timeout) from None
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        raise _failed(url, e) from None
    raise hops.too_many()
