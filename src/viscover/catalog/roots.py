"""Which folders a manifest's image paths may point into: the manifest's own folder plus the roots the user allows.

A manifest handed to a server (or copied from elsewhere) must not make viscover read arbitrary files: a row with
`../../home/user/.ssh/id_rsa.png`, `/etc/shadow` or a symbolic link out of the folder is refused unless the file
lies inside one of the allowed roots (`--image-root DIR`, the `image_roots` setting).
"""

from __future__ import annotations

import os.path
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from viscover.errors import BadManifestError, Remedy


def parse_roots(text: str) -> list[Path]:
    """The `image_roots` setting: comma-separated folders (`~` expanded, relative to the working directory)."""
    return [Path(p.strip()).expanduser() for p in text.split(",") if p.strip()]


@dataclass
class PathGuard:
    """Refuses image paths that resolve (following symbolic links) outside `base` and every allowed root.

    Checked once per manifest row, so it works on strings and remembers each folder's real path (a manifest's
    rows usually share a few folders): one lstat per row instead of one per path component.
    """

    base: str
    roots: tuple[str, ...] = ()
    _folders: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, manifest: Path, roots: Iterable[str | Path] = ()) -> "PathGuard":
        return cls(os.path.dirname(os.path.realpath(manifest)),
                   tuple(os.path.realpath(Path(r).expanduser()) for r in roots))

    def check(self, path: str | Path, raw: str) -> None:
        """Raise BadManifestError unless `path` (absolute; `raw` as written in the manifest) may be read."""
        text = os.fspath(path)
        try:
            real = self._real(text)
        except (OSError, ValueError) as e:  # an unreadable folder, an embedded NUL
            raise BadManifestError(f"path {raw!r} cannot be resolved ({e})") from None
        if any(_inside(real, folder) for folder in (self.base, *self.roots)):
            return
        how = "through a symbolic link " if _inside(os.path.normpath(text), self.base) else ""
        allowed = "" if not self.roots else f" or the allowed roots ({', '.join(self.roots)})"
        raise BadManifestError(f"path {raw!r} leads {how}to {real}, outside the manifest folder {self.base}"
                               f"{allowed}", remedy=Remedy("allow-image-root"))

    def _real(self, text: str) -> str:
        folder, name = os.path.split(text)
        if name in ("", ".", ".."):
            return os.path.realpath(text)
        real_folder = self._folders.get(folder)
        if real_folder is None:
            if len(self._folders) >= 4096:  # bounded, whatever the manifest's layout
                self._folders.clear()
            real_folder = self._folders[folder] = os.path.realpath(folder)
        full = os.path.join(real_folder, name)
        return os.path.realpath(full) if os.path.islink(full) else full


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder if folder.endswith(os.sep) else folder + os.sep)
