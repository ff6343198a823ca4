"""Objects in scenes: detection on an image (file, URL or bytes) and one catalogue search per detected object."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from viscover.config import Settings
from viscover.embed import Embedder
from viscover.embed.declared import DeclaredModel
from viscover.embed.pipeline import decode_pixels
from viscover.errors import Remedy, UnavailableError
from viscover.imaging import decode_image, read_image_bytes

if TYPE_CHECKING:  # ONNX Runtime's detector session only when detection is used
    from viscover.detect import Detection, Detector

# SearchService.search_vectors: (raw vectors (n, dim), k, filters, binary, exclude_item, model) -> a list per row
SearchVectors = Callable[..., list]


@dataclass
class SceneObjects:
    """Objects detected in one image, with the image's upright size."""

    width: int
    height: int
    objects: list["Detection"]
    data: bytes = field(default=b"", repr=False)  # the image's bytes, to crop each object from
    hits: list[list] = field(default_factory=list)  # per object (SearchHit lists), with shop_the_look


class ShopService:
    """The detector of the `detector` setting, loaded once, and shop the look over the catalogue's search."""

    def __init__(self, settings: Settings, embedder: Callable[[str | None], Embedder], search_vectors: SearchVectors,
                 lock: threading.RLock):
        self.settings, self._embedder, self._search_vectors, self._lock = settings, embedder, search_vectors, lock
        self._detector: "Detector | None" = None

    def detector(self) -> "Detector":
        """The object detector, loaded on first use; UnavailableError when the setting is empty."""
        from viscover.detect import load_detector

        if not self.settings.detector:
            raise UnavailableError("object detection is off: no detector model is configured",
                                   remedy=Remedy("set-detector"))
        with self._lock:
            if self._detector is None:
                self._detector = load_detector(self.settings.detector, threads=self.settings.inference_threads)
            return self._detector

    def detect(self, image: str | Path | bytes, *, min_score: float | None = None,
               name: str = "uploaded image") -> SceneObjects:
        """Objects in an image (bytes called `name` in errors), boxes in the upright image's pixels: each box is
        a crop to search by."""
        detector = self.detector()
        s = self.settings
        data = image if isinstance(image, bytes) else read_image_bytes(image, max_bytes=s.max_image_bytes,
                                                                       timeout=s.url_timeout,
                                                                       url_allow_hosts=s.url_allow_hosts)
        name = name if isinstance(image, bytes) else str(image)
        img = decode_image(data, max_pixels=s.max_image_pixels, name=name)
        score = s.detect_min_score if min_score is None else min_score
        return SceneObjects(img.width, img.height, detector.detect(img, min_score=score), data)

    def shop_the_look(self, image: str | Path | bytes, *, k: int | None = None, filters=None,
                      min_score: float | None = None, max_objects: int = 8, exclude_item: str | None = None,
                      binary: bool = False, model: str | None = None,
                      name: str = "uploaded image") -> SceneObjects:
        """Detect the objects of a scene and search the catalogue for each by its box (one batch through the
        model); `exclude_item` drops the scene's own item (and its copies) from the results."""
        embedder = self._embedder(model)
        if isinstance(embedder, DeclaredModel):  # before detecting: no object of the scene could be embedded
            raise embedder.no_encoder()
        scene = self.detect(image, min_score=min_score, name=name)
        scene.objects = scene.objects[:max_objects]
        raw = np.zeros((0, embedder.dim), np.float32)
        if scene.objects:
            pixels = np.stack([decode_pixels(scene.data, embedder.spec, self.settings, name="scene", crop=o.box)
                               for o in scene.objects])
            raw = np.asarray(embedder.embed(pixels), np.float32)
        # searched even without objects: an unknown exclude_item or a missing index is still reported
        scene.hits = self._search_vectors(raw, k=k, filters=filters, binary=binary, exclude_item=exclude_item,
                                       model=model)
        return scene
