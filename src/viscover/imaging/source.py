"""Fetch the bytes of an image from a local path or an http(s) URL, with size and time limits."""

from __future__ import annotations

from pathlib import Path

from viscover.errors import BadImageError

_URL_PREFIXES = ("http://", "https://")


def is_url(location: str) -> bool:
    return location.lower().startswith(_URL_PREFIXES)


def read_image_bytes(location: str | Path, *, max_bytes: int, timeout: float = 20.0) -> bytes:
    """Return the bytes at `location` (a path or an http(s) URL); raise BadImageError saying why not."""
    loc = str(location)
    if is_url(loc):
        return _download(loc, max_bytes=max_bytes, timeout=timeout)
    path = Path(loc)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise BadImageError(f"{loc}: file is {size:,} bytes, over the limit of {max_bytes:,} "
                                "(raise max_image_bytes to accept it)")
        if not path.is_file():
            raise BadImageError(f"{loc}: not a regular file")
        return path.read_bytes()
    except FileNotFoundError:
        raise BadImageError(f"{loc}: file not found") from None
    except PermissionError:
        raise BadImageError(f"{loc}: permission denied") from None
    except IsADirectoryError:
        raise BadImageError(f"{loc}: is a folder, not an image file") from None
    except OSError as e:
        raise BadImageError(f"{loc}: cannot read ({e.strerror or e})") from None


def _download(url: str, *, max_bytes: int, timeout: float) -> bytes:
    import httpx  # imported here: only URL ingest pays for it

    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise BadImageError(f"{url}: HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise BadImageError(f"{url}: {int(declared):,} bytes, over the limit of {max_bytes:,}")
            chunks, total = [], 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise BadImageError(f"{url}: more than {max_bytes:,} bytes, over the limit")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as e:
        raise BadImageError(f"{url}: download failed ({type(e).__name__}: {e})") from None
