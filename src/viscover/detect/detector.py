"""Object detection with an ONNX CenterNet-style model, so that each object in a scene photo can become a query.

Model convention (e.g. centernet-coco.onnx): one NHWC float32 input of RGB pixel values 0-255 at a fixed square
size (the whole image is resized to it, aspect ratio not kept), and an output of shape (1, N, 6) holding
x1, y1, x2, y2 (in input pixels), score, class id per row, without non-maximum suppression. Labels come from a
sidecar `<model>.labels.txt`, else `coco-labels.txt` beside the model (one name a line, in class-id order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from viscover.detect.nms import nms
from viscover.embed.onnx_model import open_session
from viscover.errors import BadRequestError, ModelError
from viscover.imaging import CropBox

IOU_THRESHOLD = 0.5  # per-class NMS: boxes of one class overlapping more than this are one object
MIN_SIDE = 0.02  # boxes narrower or lower than this fraction of the image's width or height are dropped
DEFAULT_SIZE = 512  # input side when the model's input shape does not fix it
LABELS_SIDECAR = ".labels.txt"
SHARED_LABELS = "coco-labels.txt"


@dataclass(frozen=True)
class Detection:
    """One object found in an image: its class name, the model's confidence and its box in the image's pixels."""

    label: str
    score: float
    box: CropBox

    def to_dict(self) -> dict:
        return {"label": self.label, "score": round(self.score, 4), "box": [self.box.x, self.box.y, self.box.w,
                                                                              self.box.h]}


class Detector:
    """An ONNX Runtime session over a detection model, with its labels; `detect` is safe to call from threads."""

    def __init__(self, path: Path, labels: list[str], *, threads: int = 0):
        self.session = open_session(path, threads, hint="; give an ONNX object detector such as centernet-coco.onnx")
        self.path, self.name, self.labels = Path(path), Path(path).stem, labels
        self.input_name, self.output_name, self.size = _signature(self.session, self.path)

    def detect(self, image: Image.Image, *, min_score: float = 0.3, max_objects: int = 20) -> list[Detection]:
        """The objects in `image` scoring at least `min_score`, best first, at most `max_objects` of them."""
        if not 0.0 <= min_score <= 1.0:
            raise BadRequestError(f"min_score {min_score}: give a confidence between 0 and 1, e.g. 0.3")
        if max_objects < 1:
            raise BadRequestError(f"max_objects {max_objects}: give at least 1")
        if image.mode != "RGB":
            image = image.convert("RGB")
        raw = self.run(to_tensor(image, self.size))
        return self.postprocess(raw, image.width, image.height, min_score=min_score, max_objects=max_objects)

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """The model's raw (N, 6) rows for one (1, size, size, 3) input tensor."""
        out = self.session.run([self.output_name], {self.input_name: tensor})[0]
        return np.asarray(out, dtype=np.float32).reshape(-1, 6)

    def postprocess(self, raw: np.ndarray, width: int, height: int, *, min_score: float = 0.3,
                    max_objects: int = 20) -> list[Detection]:
        """Raw rows -> detections: score filter, scale to the image, clip, drop tiny boxes, per-class NMS."""
        rows = raw[np.isfinite(raw).all(axis=1) & (raw[:, 4] >= min_score)]
        if not len(rows):
            return []
        scale = np.array([width, height, width, height], dtype=np.float64) / self.size
        boxes = rows[:, :4].astype(np.float64) * scale
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        big = ((boxes[:, 2] - boxes[:, 0]) >= MIN_SIDE * width) & ((boxes[:, 3] - boxes[:, 1]) >= MIN_SIDE * height)
        boxes, rows = boxes[big], rows[big]
        classes = np.rint(rows[:, 5]).astype(np.int64)
        keep = nms(boxes, rows[:, 4], classes, IOU_THRESHOLD)[:max_objects]
        return [Detection(self.label(int(classes[i])), float(rows[i, 4]), _crop_box(boxes[i], width, height))
                for i in keep]

    def label(self, class_id: int) -> str:
        """The class name for `class_id`, or "class N" when the labels file does not name it."""
        name = self.labels[class_id] if 0 <= class_id < len(self.labels) else ""
        return name or f"class {class_id}"


def to_tensor(image: Image.Image, size: int) -> np.ndarray:
    """The whole RGB image resized to size x size, as a (1, size, size, 3) float32 array of 0-255 values."""
    resized = image.resize((size, size), Image.BILINEAR)
    return np.asarray(resized, dtype=np.float32)[None]


def _crop_box(box: np.ndarray, width: int, height: int) -> CropBox:
    """Float x1, y1, x2, y2 -> a whole-pixel CropBox covering the box, inside the image and at least 1x1."""
    x1, y1 = min(int(math.floor(box[0])), width - 1), min(int(math.floor(box[1])), height - 1)
    x2, y2 = max(int(math.ceil(box[2])), x1 + 1), max(int(math.ceil(box[3])), y1 + 1)
    return CropBox(x1, y1, min(x2, width) - x1, min(y2, height) - y1)


def _signature(session, path: Path) -> tuple[str, str, int]:
    """Input name, detections output name and input side, or ModelError when the model is not of this kind."""
    inp = session.get_inputs()[0]
    shape = list(inp.shape)
    if len(shape) != 4 or shape[3] != 3 or "float" not in inp.type:
        raise ModelError(f"{path}: input {inp.name} is {inp.type} {shape}; a detector needs a float (1, H, W, 3) "
                         "RGB input")
    side = shape[1] if isinstance(shape[1], int) and shape[1] > 0 else DEFAULT_SIZE
    for out in session.get_outputs():
        if len(out.shape) == 3 and out.shape[2] == 6:
            return inp.name, out.name, side
    found = ", ".join(f"{o.name} {list(o.shape)}" for o in session.get_outputs())
    raise ModelError(f"{path}: no (1, N, 6) detections output (x1, y1, x2, y2, score, class); outputs are {found}")


def read_labels(model: Path) -> list[str]:
    """Class names for `model`: its `<stem>.labels.txt` sidecar, else coco-labels.txt beside it, else none."""
    for candidate in (model.with_name(model.stem + LABELS_SIDECAR), model.with_name(SHARED_LABELS)):
        if candidate.is_file():
            try:
                return [line.strip() for line in candidate.read_text().splitlines()]
            except (OSError, UnicodeDecodeError) as e:
                raise ModelError(f"{candidate}: unreadable labels file ({e}); give one class name a line") from None
    return []


def load_detector(path: str | Path, *, threads: int = 0) -> Detector:
    """Open an ONNX object detector; ModelError naming the path if it is missing or not a usable detector."""
    model = Path(path).expanduser()
    if not model.is_file():
        raise ModelError(f"{model}: no such detector model file; give the path of an ONNX object detector such "
                         "as centernet-coco.onnx")
    return Detector(model, read_labels(model), threads=threads)
