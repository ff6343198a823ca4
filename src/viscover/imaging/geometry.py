"""Crop boxes: parsing `x,y,w,h` and checking them against an image."""

from __future__ import annotations

from dataclasses import dataclass

from viscover.errors import BadRequestError


@dataclass(frozen=True)
class CropBox:
    """A rectangle in pixels of the upright (EXIF-rotated) image: left x, top y, width w, height h."""

    x: int
    y: int
    w: int
    h: int

    def check_within(self, width: int, height: int, what: str = "image") -> None:
        if self.w <= 0 or self.h <= 0:
            raise BadRequestError(f"crop box {self}: width and height must be positive")
        if self.x < 0 or self.y < 0 or self.x + self.w > width or self.y + self.h > height:
            raise BadRequestError(f"crop box {self.x},{self.y},{self.w},{self.h} does not fit inside the "
                                  f"{width}x{height} {what}; give x,y,w,h with x+w <= {width} and y+h <= {height}")

    def as_pil(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.x + self.w, self.y + self.h)

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"


def parse_crop(text: str) -> CropBox:
    """Parse `x,y,w,h` (integers, pixels) into a CropBox; raise BadRequestError on anything else."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        if len(parts) != 4:
            raise ValueError
        x, y, w, h = (int(round(float(p))) for p in parts)
    except (ValueError, OverflowError):  # OverflowError: inf, or 1e400 (read as inf)
        raise BadRequestError(f"crop box {text!r}: expected four numbers x,y,w,h (pixels), e.g. 10,20,100,80") from None
    box = CropBox(x, y, w, h)
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise BadRequestError(f"crop box {text!r}: x and y must be >= 0, w and h > 0")
    return box
