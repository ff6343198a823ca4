"""Fetch the bytes of an image from a local path or an http(s) URL, with size and time limits.

URLs are downloaded by `viscover.imaging.download` (SSRF guard on every hop, one deadline for the whole download).
"""

from __future__ import annotations

import re
from pathlib import Path

from viscover.errors import BadImageError
from viscover.imaging.download import download

_URL_PREFIXES = ("http://", "https://")
_OTHER_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+://")  # file://, ftp://, gopher://, ...


def is_url(location: str) -> bool:
    return location.lower().startswith(_URL_PREFIXES)


def read_image_bytes(location: str | Path, *, max_bytes: int, timeout: float = 20.0,
                     url_allow_hosts: str = "") -> bytes:
    """Return the bytes at `location` (a path or an http(s) URL); raise BadImageError saying why not.

    URLs must reach public addresses unless their host is in `url_allow_hosts` (the setting of that name), and
    arrive whole within `timeout` seconds.
    """
    loc = str(location)
    if is_url(loc):
        return download(loc, max_bytes=max_bytes, timeout=timeout, url_allow_hosts=url_allow_hosts)
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
