"""Object detection ("shop the look") on real photos: classes, box geometry, NMS and model loading errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import CLOTHING, DETECTOR, GROCERY, needs_data, needs_detector
from viscover.detect import Detection, load_detector, nms
from viscover.detect.nms import iou_matrix
from viscover.errors import BadRequestError, ModelError
from viscover.imaging import CropBox, decode_image

MODEL = DETECTOR
needs_model = needs_detector


@pytest.fixture(scope="module")
def detector():
    if not MODEL.is_file():
        pytest.skip(f"detector model not found at {MODEL}")
    return load_detector(MODEL)


def photos(product: str, n: int = 10) -> list[Path]:
    """The first n training photos of a grocery product."""
    from viscover.datasets import grocery_rows

    rows = [r for r in grocery_rows(GROCERY) if r["label.product"] == product and r["split"] == "train"]
    return [Path(r["path"]) for r in rows[:n]]


def load(path: Path) -> Image.Image:
    return decode_image(path.read_bytes(), max_pixels=50_000_000, name=str(path))


def xyxy(box: CropBox) -> list[float]:
    return [box.x, box.y, box.x + box.w, box.y + box.h]


def best_iou(target: list[float], detections: list[Detection], label: str) -> float:
    """The largest IoU between `target` and any detection of `label`."""
    boxes = [xyxy(d.box) for d in detections if d.label == label]
    return float(iou_matrix(np.array([target] + boxes))[0, 1:].max()) if boxes else 0.0


def check_geometry(detections: list[Detection], width: int, height: int, min_score: float, max_objects: int):
    """Every box inside the image and not tiny, scores above the threshold and sorted, no more than asked for."""
    assert len(detections) <= max_objects
    scores = [d.score for d in detections]
    assert scores == sorted(scores, reverse=True)
    for d in detections:
        assert d.score >= min_score
        b = d.box
        assert b.x >= 0 and b.y >= 0 and b.x + b.w <= width and b.y + b.h <= height, (b, width, height)
        assert b.w >= 0.02 * width - 1 and b.h >= 0.02 * height - 1, b


@needs_data
@needs_model
@pytest.mark.parametrize("product,label", [("Banana", "banana"), ("Golden-Delicious", "apple"),
                                           ("Orange", "orange")])
def test_fruit_photos_give_their_coco_class(detector, product, label):
    """At least half the shop photos of a fruit COCO knows contain a detection of it, with a box of a fruit's size."""
    found = 0
    for path in photos(product, 20):
        img = load(path)
        detections = detector.detect(img)
        check_geometry(detections, img.width, img.height, 0.3, 20)
        mine = [d for d in detections if d.label == label]
        if mine:
            found += 1
            area = mine[0].box.w * mine[0].box.h / (img.width * img.height)
            assert 0.005 <= area <= 0.9, (path.name, mine[0])  # one fruit or bunch, not a speck or the whole photo
    assert found >= 10, f"{label} found in only {found} of 20 {product} photos"  # measured: 12, 18, 19


@pytest.fixture(scope="module")
def fruit_boxes(detector) -> list[tuple[Image.Image, str, CropBox]]:
    """(photo, label, best box of that label) for the orange and apple photos where the fruit is found."""
    found = []
    for product, label in [("Orange", "orange"), ("Golden-Delicious", "apple")]:
        for path in photos(product):
            img = load(path)
            mine = [d for d in detector.detect(img) if d.label == label]
            if mine:
                found.append((img, label, mine[0].box))
    return found


def _stretch_x(img):
    return img.resize((img.width * 3 // 2, img.height)), lambda b: [b[0] * 1.5, b[1], b[2] * 1.5, b[3]]


def _stretch_y(img):
    return img.resize((img.width, img.height * 2)), lambda b: [b[0], b[1] * 2, b[2], b[3] * 2]


def _mirror(img):
    return ImageOps.mirror(img), lambda b: [img.width - b[2], b[1], img.width - b[0], b[3]]


def _pad(img):
    """The photo at (w/2, h/4) on a grey canvas 1.5 times its size: same aspect ratio, shifted and smaller."""
    dx, dy = img.width // 2, img.height // 4
    canvas = Image.new("RGB", (img.width * 3 // 2, img.height * 3 // 2), (128, 128, 128))
    canvas.paste(img, (dx, dy))
    return canvas, lambda b: [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy]


@needs_data
@needs_model
@pytest.mark.parametrize("transform", [_stretch_x, _stretch_y, _mirror, _pad], ids=lambda f: f.__name__[1:])
def test_boxes_follow_the_object_when_the_photo_changes(detector, fruit_boxes, transform):
    """Boxes are in the original image's pixels with x and y the right way round: stretching, mirroring or
    padding a photo moves the best fruit box where the transform puts it (catches swapped axes, a box left in
    model-input units, a wrong origin)."""
    moved = 0
    for img, label, box in fruit_boxes:
        changed, where = transform(img)
        moved += best_iou(where(xyxy(box)), detector.detect(changed, min_score=0.2), label) >= 0.7
    tried = len(fruit_boxes)
    assert tried >= 12 and moved >= 0.7 * tried, f"the box followed the fruit in {moved} of {tried} photos"


@needs_data
@needs_model
@pytest.mark.parametrize("image", ["82878359-5004-44b9-8a93-6234169793a4",  # a dress on a hanger
                                   "c995c900-693d-4dd6-8995-43f3051ec488",  # trousers laid flat
                                   "09f4ffb6-ed86-42b6-ac23-6f8f2359460f"])  # a shirt laid flat
def test_clothing_photo_gives_a_person_box_around_the_garment(detector, image):
    """The clothing set has garments, not people wearing them: COCO's nearest class for a whole garment is
    "person", and its box surrounds the garment (what shop-the-look would search)."""
    img = load(CLOTHING / "images" / f"{image}.jpg")
    detections = detector.detect(img)
    check_geometry(detections, img.width, img.height, 0.3, 20)
    assert detections[0].label == "person"
    b = detections[0].box
    assert b.h >= 0.7 * img.height and 0.4 * img.width <= b.w <= img.width  # a tall, garment-sized box
    assert b.x < img.width / 2 < b.x + b.w  # the garment is in the middle of the photo


@needs_data
@needs_model
def test_min_score_and_max_objects_select_from_the_same_ranking(detector):
    img = load(photos("Orange", 1)[0])
    everything = detector.detect(img, min_score=0.2, max_objects=100)
    assert len(everything) > 5
    assert detector.detect(img, min_score=0.2, max_objects=3) == everything[:3]
    strict = detector.detect(img, min_score=0.4, max_objects=100)
    assert strict == [d for d in everything if d.score >= 0.4]
    assert detector.detect(img, min_score=1.0) == []
    for bad in [dict(min_score=-0.1), dict(min_score=1.5), dict(max_objects=0)]:
        with pytest.raises(BadRequestError):
            detector.detect(img, **bad)


@needs_data
@needs_model
def test_detection_to_dict_and_non_rgb_input(detector):
    img = load(photos("Orange", 1)[0])
    first = detector.detect(img)[0]
    d = first.to_dict()
    assert d == {"label": "orange", "score": round(first.score, 4),
                 "box": [first.box.x, first.box.y, first.box.w, first.box.h]}
    grey = detector.detect(img.convert("L"))  # other modes are converted, not refused
    check_geometry(grey, img.width, img.height, 0.3, 20)


@needs_model
def test_raw_rows_are_scaled_clipped_filtered_and_suppressed_per_class(detector):
    """The output convention, on hand-made model rows: x1, y1, x2, y2 in 512-pixel input units, score, class."""
    rows = np.array([[0, 0, 256, 512, 0.9, 0],      # left half of the input, person
                     [0, 0, 256, 512, 0.8, 46],     # the same box, banana: another class is not suppressed
                     [10, 0, 256, 512, 0.7, 0],     # a near copy of the person: suppressed
                     [400, 256, 530, 600, 0.6, 49],  # past the bottom-right corner: clipped
                     [100, 100, 105, 300, 0.95, 47],  # 5 input pixels wide (< 2% of the side): dropped
                     [0, 0, 100, 100, 0.2, 0],      # below min_score
                     [np.nan, 0, 100, 100, 0.9, 0]], np.float32)
    got = detector.postprocess(rows, 1000, 600, min_score=0.3, max_objects=20)
    assert [(d.label, round(d.score, 2), d.box) for d in got] == [
        ("person", 0.9, CropBox(0, 0, 500, 600)), ("banana", 0.8, CropBox(0, 0, 500, 600)),
        ("orange", 0.6, CropBox(781, 300, 219, 300))]


def brute_force_nms(boxes, scores, classes, threshold):
    """Textbook greedy NMS, one class at a time, with IoU written out by hand."""
    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    kept = []
    for c in set(classes):
        todo = sorted((i for i in range(len(boxes)) if classes[i] == c), key=lambda i: -scores[i])
        while todo:
            best = todo.pop(0)
            kept.append(best)
            todo = [i for i in todo if iou(boxes[best], boxes[i]) <= threshold]
    return sorted(kept, key=lambda i: -scores[i])


@pytest.mark.parametrize("seed", range(20))
def test_nms_matches_brute_force_on_random_boxes(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 120))
    objects = rng.uniform(0, 200, (int(rng.integers(1, 8)), 4))  # a detector's output: jittered copies of a few
    boxes = objects[rng.integers(0, len(objects), n)] + rng.normal(0, 8, (n, 4))
    boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1)
    scores = rng.uniform(0, 1, n)
    classes = rng.integers(0, 3, n)
    threshold = float(rng.choice([0.3, 0.5, 0.7]))
    expected = brute_force_nms(boxes.tolist(), scores.tolist(), classes.tolist(), threshold)
    kept = nms(boxes, scores, classes, threshold).tolist()
    assert kept == expected
    assert len(kept) < n  # overlapping copies of the same object: something is suppressed


def test_nms_keeps_other_classes_and_handles_empty_input():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], float)
    assert nms(boxes, [0.9, 0.8, 0.7], [0, 0, 1], 0.5).tolist() == [0, 2]  # same box, other class: kept
    assert nms(boxes, [0.9, 0.8, 0.7], None, 0.5).tolist() == [0]  # class-agnostic when no classes
    assert nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.5).tolist() == []


def test_missing_model_is_a_model_error_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "detector.onnx"
    with pytest.raises(ModelError, match=str(missing)):
        load_detector(missing)


def test_file_that_is_not_onnx_is_a_model_error_naming_the_path(tmp_path):
    fake = tmp_path / "detector.onnx"
    fake.write_text("not a model")
    with pytest.raises(ModelError, match=str(fake)):
        load_detector(fake)


def test_onnx_model_that_is_not_a_detector_is_a_model_error(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("GlobalAveragePool", ["x"], ["y"])], "pool",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 224, 224])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 1, 1])])
    path = tmp_path / "embedder.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    with pytest.raises(ModelError, match=str(path)):
        load_detector(path)


@needs_model
def test_labels_from_sidecar_else_shared_file_else_class_numbers(tmp_path):
    alone = tmp_path / "alone" / "det.onnx"
    alone.parent.mkdir()
    alone.symlink_to(MODEL)
    assert load_detector(alone).label(0) == "class 0"
    (alone.parent / "coco-labels.txt").write_text("human\nbike\n")
    assert load_detector(alone).label(1) == "bike"
    assert load_detector(alone).label(5) == "class 5"  # beyond the labels file
    (alone.parent / "det.labels.txt").write_text("someone\n")
    assert load_detector(alone).label(0) == "someone"  # the model's own sidecar wins
    assert load_detector(MODEL).label(0) == "person"
