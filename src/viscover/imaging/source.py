"""Fetch the bytes of an image from a local path or an http(s) URL, with size and time limits.

URLs go through the SSRF guard (`viscover.imaging.netguard`) on every hop: redirects are followed here, at most
MAX_REDIRECTS of them, each one checked before it is requested. Proxy variables are ignored: the guard must see
the real destination.
"""

from __future__ import annotations

import re
from pathlib import Path

from viscover.errors import BadImageError
from viscover.imaging.netguard import AllowList, check_url, parse_allow_list

_URL_PREFIXES = ("http://", "https://")
MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
_OTHER_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+://")  # file://, ftp://, gopher://, ...


def is_url(location: str) -> bool:
    return location.lower().startswith(_URL_PREFIXES)


def read_image_bytes(location: str | Path, *, max_bytes: int, timeout: float = 20.0,
                     url_allow_hosts: str = "") -> bytes:
    """Return the bytes at `location` (a path or an http(s) URL); raise BadImageError saying why not.

    URLs must reach public addresses unless their host is in `url_allow_hosts` (the setting of that name).
    """
    loc = str(location)
    if is_url(loc):
        return _download(loc, max_bytes=max_bytes, timeout=timeout, allow=parse_allow_list(url_allow_hosts))
    if _OTHER_SCHEME.match(loc):
        raise BadImageError(f"{loc}: only http and https URLs are fetched; give a file path or an http(s) URL")
    path = Path(loc)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise BadImageError(f"{loc}: file is {size:,} bytes, over the limit of {max_bytes:,} "
                                "(raise max_image_bytes to accept it)")
        if not path.is_file():
            raise BadImageError(f"{loc}: not a regular file")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)  # the file may have grown since stat (or be a /proc file sized 0)
        if len(data) > max_bytes:
            raise BadImageError(f"{loc}: more than {max_bytes:,} bytes, over the limit (raise max_image_bytes "
                                "to accept it)")
        return data
    except FileNotFoundError:
        raise BadImageError(f"{loc}: file not found") from None
    except PermissionError:
        raise BadImageError(f"{loc}: permission denied") from None
    except IsADirectoryError:
        raise BadImageError(f"{loc}: is a folder, not an image file") from None
    except OSError as e:
        raise BadImageError(f"{loc}: cannot read ({e.strerror or e})") from None
    except ValueError as e:  # e.g. an embedded NUL character
        raise BadImageError(f"{loc!r}: not a usable file path ({e})") from None


def _download(url: str, *, max_bytes: int, timeout: float, allow: AllowList) -> bytes:
    import httpx  # imported here: only URL ingest pays for it

    current = url
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                what = url if current == url else f"{url} (redirected to {current})"
                dest = check_url(current, allow, what=what)
                with client.stream("GET", dest.url, headers=dest.headers, extensions=dest.extensions) as response:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        current = str(httpx.URL(current).join(location))
                        continue
                    if response.status_code != 200:
                        raise BadImageError(f"{what}: HTTP {response.status_code}")
                    return _read_body(response, what, max_bytes)
    except httpx.HTTPError as e:
        raise BadImageError(f"{url}: download failed ({type(e).__name__}: {e})") from None
    except httpx.InvalidURL as e:
        raise BadImageError(f"{url}: invalid URL ({e})") from None
    raise BadImageError(f"{url}: more than {MAX_REDIRECTS} redirects; give the final address of the image")


def _read_body(response, what: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BadImageError(f"{what}: {int(declared):,} bytes, over the limit of {max_bytes:,}")
    chunks, total = [], 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise BadImageError(f"{what}: more than {max_bytes:,} bytes, over the limit")
        chunks.append(chunk)
    return b"".join(chunks)
