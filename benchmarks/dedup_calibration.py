"""Where the near-duplicate threshold comes from: cosine distances between real photos and edited copies of them
(re-encoded, resized, slightly cropped, brightened) against distances to the nearest *different* photo.

    python benchmarks/dedup_calibration.py [--model efficientnet-lite0] [--per-dataset 200] [--json out.json]

A good `dedup_threshold` sits above most edited-copy distances and below the nearest-different-photo distances.
Vectors go through the index's codec (centred on the mean of the original photos, then L2-normalised), as search
compares them.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, emit, machine  # noqa: E402

EDITS = {
    "jpeg_q60": lambda im: Image.open(_jpeg(im, 60)),
    "resize_60pct": lambda im: im.resize((int(im.width * 0.6), int(im.height * 0.6))),
    "crop_92pct": lambda im: im.crop((int(im.width * .04), int(im.height * .04), int(im.width * .96),
                                      int(im.height * .96))),
    "brighter_15pct": lambda im: Image.eval(im, lambda p: min(255, int(p * 1.15))),
}


def _jpeg(im: Image.Image, quality: int) -> io.BytesIO:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return buf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--per-dataset", type=int, default=200)
    parser.add_argument("--json")
    args = parser.parse_args()

    from viscover import Settings
    from viscover.embed import load_embedder
    from viscover.embed.base import to_pixels
    from viscover.index import Codec

    embedder = load_embedder(args.model)
    files = sorted((DATA / "grocery" / "train").rglob("*.jpg"))[::10][:args.per_dataset]
    files += sorted((DATA / "clothing" / "images").glob("*.jpg"))[:args.per_dataset]

    def embed(img: Image.Image) -> np.ndarray:
        return embedder.embed(to_pixels(img.convert("RGB"), embedder.spec)[None])[0]

    originals, edited = [], {k: [] for k in EDITS}
    for f in files:
        im = Image.open(f).convert("RGB")
        originals.append(embed(im))
        for name, edit in EDITS.items():
            edited[name].append(embed(edit(im)))
    codec = Codec.for_vectors(np.stack(originals), centered=embedder.centered)
    orig = codec.floats(np.stack(originals))
    edited = {name: codec.floats(np.stack(v)) for name, v in edited.items()}
    q = lambda d: {p: round(float(np.percentile(d, p)), 4) for p in (1, 5, 50, 95, 99)}  # noqa: E731
    edits = {name: q(1 - (v * orig).sum(1)) for name, v in edited.items()}
    sims = orig @ orig.T
    np.fill_diagonal(sims, -1)
    nearest_other = 1 - sims.max(1)
    threshold = Settings().dedup_threshold
    emit({"benchmark": "dedup_calibration", "machine": machine(), "model": embedder.name, "photos": len(files),
          "edited_copy_distance_percentiles": edits,
          "nearest_different_photo_distance_percentiles": q(nearest_other),
          "nearest_different_photo_min": round(float(nearest_other.min()), 4),
          "default_threshold": threshold,
          "edited_copies_collapsed_at_default": {k: round(float(np.mean(1 - (v * orig).sum(1) < threshold)),
                                                          3) for k, v in edited.items()},
          "different_photos_merged_at_default": round(float(np.mean(nearest_other < threshold)), 4)},
         args.json)


if __name__ == "__main__":
    main()
