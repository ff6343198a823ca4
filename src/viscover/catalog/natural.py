"""Natural ordering of names people give (boards "sender-2" before "sender-10"), for listings meant to be read."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """A sort key comparing runs of digits by value and the rest case-insensitively ("b-2" < "B-10" < "b-100")."""
    parts = _DIGITS.split(name.casefold())
    return tuple((0, int(p), p) if i % 2 else (1, 0, p) for i, p in enumerate(parts)), name
