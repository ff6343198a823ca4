"""Training augmentation: random resized crop, horizontal flip and mild colour jitter, reproducible from a seed
(so cached augmented views are the same on every run with the same seed)."""

from __future__ import annotations

import math
import random

from PIL import Image, ImageEnhance

SCALE = (0.35, 1.0)  # fraction of the image area kept by the crop
RATIO = (3 / 4, 4 / 3)  # aspect ratio range of the crop
JITTER = 0.2  # brightness, contrast and saturation factors in [1 - JITTER, 1 + JITTER]


def augment(img: Image.Image, seed: int) -> Image.Image:
    """A randomly cropped, possibly mirrored, colour-jittered copy of an RGB image (deterministic per seed)."""
    rng = random.Random(seed)
    w, h = img.size
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(*SCALE)
        ratio = math.exp(rng.uniform(math.log(RATIO[0]), math.log(RATIO[1])))
        cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
            img = img.crop((left, top, left + cw, top + ch))
            break
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enhancer(img).enhance(rng.uniform(1 - JITTER, 1 + JITTER))
    return img
