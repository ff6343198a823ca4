"""The Embedder contract (viscover.embed.base.Embedder), one suite run on every implementation:

  * builtin       the default backbone, EfficientNet-Lite0 exported once to ONNX and cached;
  * onnx-sidecar  `onnx:PATH` with its input convention in a sidecar PATH.json;
  * hf            `hf:DIR`, a Hugging Face transformers model (a tiny random ViT saved with save_pretrained);
  * model-folder  a viscover model folder (model.onnx + model.json) laid out as viscover.train.export writes it.

Each factory builds its model offline in a few seconds (tiny random weights; nothing is downloaded) and returns the
name to load it by; the suite embeds a few real photos from the shared data. A new implementation (another
runtime, a text-and-image model) joins by adding a factory to FACTORIES.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# Never reach for the Hugging Face hub: everything here is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from conftest import CLOTHING, GROCERY, needs_data  # noqa: E402
from viscover.embed import Embedder, InputSpec, load_embedder, resolve_model  # noqa: E402
from viscover.embed.base import to_pixels  # noqa: E402
from viscover.imaging import decode_image  # noqa: E402

pytestmark = needs_data

PHOTOS = [GROCERY / "train/Fruit/Banana/Banana_001.jpg", GROCERY / "train/Vegetables/Tomato/Regular-Tomato/"
          "Regular-Tomato_001.jpg", CLOTHING / "images/00003aeb-ace5-43bf-9a0c-dc31a03e9cd2.jpg"]
KEY_CHARS = re.compile(r"^[a-z0-9][a-z0-9._-]*$")  # a key names folders under the home: no separators, no case games


@dataclass(frozen=True)
class Declared:
    """What a factory says its model is, for the suite to compare with what the loaded Embedder reports."""

    name: str  # what to pass to load_embedder
    dim: int
    size: int
    centered: bool


# ---- factories: (folder to build in, seed of the random weights) -> the model -----------------------------------
# The same folder and another seed give a model of the same name with other weights.
def builtin(folder: Path, seed: int) -> Declared:
    """The default backbone (exported to ONNX into the model cache on first use; one set of weights)."""
    return Declared("efficientnet-lite0", dim=1280, size=224, centered=False)


def onnx_sidecar(folder: Path, seed: int) -> Declared:
    """A one-layer conv net (float NCHW input, any side), its side and normalisation given by a sidecar."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()).eval()
    path = folder / "conv.onnx"
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated, still fine
        torch.onnx.export(net, (torch.zeros(1, 3, 48, 48),), str(path), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["features"], dynamic_axes={"image": axes,
                                                                                        "features": axes})
    path.with_suffix(".json").write_text(json.dumps({"size": 48, "resize": 56, "mean": [0, 0, 0],
                                                     "std": [255, 255, 255]}))
    return Declared(f"onnx:{path}", dim=8, size=48, centered=False)


def hf_vit(folder: Path, seed: int) -> Declared:
    """A tiny random ViT (hidden size 32, 32px input) with its image processor, saved as a local folder."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    import torch

    transformers.logging.set_verbosity_error()
    torch.manual_seed(seed)
    config = transformers.ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                    image_size=32, patch_size=8)
    out = folder / "vit"
    transformers.ViTModel(config).eval().save_pretrained(out)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    return Declared(f"hf:{out}", dim=32, size=32, centered=False)


def model_folder(folder: Path, seed: int) -> Declared:
    """A trained-model folder in miniature: a uint8 NHWC pixel trunk (one conv) and the training head
    (LayerNorm, linear), exported and described as viscover.train.export does (no key: derived from the digest)."""
    torch = pytest.importorskip("torch")
    from viscover.embed.torch_models import export_pixel_model
    from viscover.train.model import EmbeddingHead

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 16, 3, stride=2)
            self.head = EmbeddingHead(16, 12)

        def forward(self, pixels):
            x = (pixels.permute(0, 3, 1, 2).float() - 127.0) / 128.0
            return self.head(torch.relu(self.conv(x)).mean((2, 3)))

    torch.manual_seed(seed)
    out = folder / "trained"
    out.mkdir(exist_ok=True)
    side = 40
    dim = export_pixel_model(Tiny().eval(), side, out / "model.onnx", "embedding")
    spec = InputSpec(size=side, resize=side, layout="NHWC", dtype="uint8")
    (out / "model.json").write_text(json.dumps({"format": "viscover-model/1", "name": out.name, "dim": dim,
                                                "input": spec.to_dict(), "centered": True}))
    return Declared(str(out), dim=12, size=side, centered=True)


FACTORIES: dict[str, Callable[[Path, int], Declared]] = {
    "builtin": builtin, "onnx-sidecar": onnx_sidecar, "hf": hf_vit, "model-folder": model_folder}
ONE_MODEL = {"builtin"}  # factories whose seed changes nothing


# ---- fixtures --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photos() -> list:
    missing = [str(p) for p in PHOTOS if not p.is_file()]
    if missing:
        pytest.skip(f"shared image data not found: {missing[0]}")
    return [decode_image(p.read_bytes(), max_pixels=10**8, name=p.name) for p in PHOTOS]


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Callable[[str], Declared]:
    """Each factory's default model, built on first use and kept for the module."""
    folder, built = tmp_path_factory.mktemp("models"), {}

    def get(kind: str) -> Declared:
        if kind not in built:
            (folder / kind).mkdir()
            built[kind] = FACTORIES[kind](folder / kind, 0)
        return built[kind]

    return get


@pytest.fixture(scope="module", params=list(FACTORIES))
def kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def declared(kind, build) -> Declared:
    return build(kind)


@pytest.fixture(scope="module")
def embedder(declared) -> Embedder:
    return load_embedder(declared.name, threads=1)


def pixels_for(embedder: Embedder, photos: list) -> np.ndarray:
    return np.stack([to_pixels(img, embedder.spec) for img in photos])


def assert_close(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to float rounding that differs between batch sizes (kernels may block the batch differently)."""
    scale = max(1.0, float(np.abs(b).max()))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale)


# ---- the contract ----------------------------------------------------------------------------------------------
def test_declares_what_callers_use(embedder, declared):
    """name, key, dim, spec and centered are present, typed, and agree with the model that was built."""
    assert isinstance(embedder, Embedder)
    assert resolve_model(embedder.name) == embedder.name == resolve_model(declared.name)  # canonical: loadable again
    assert isinstance(embedder.key, str) and KEY_CHARS.match(embedder.key), embedder.key
    assert isinstance(embedder.dim, int) and embedder.dim == declared.dim
    assert isinstance(embedder.spec, InputSpec) and embedder.spec.size == declared.size
    assert embedder.spec.resize >= embedder.spec.size
    assert embedder.centered is declared.centered


def test_embed_gives_float32_rows_of_dim(embedder, photos):
    vectors = embedder.embed(pixels_for(embedder, photos))
    assert isinstance(vectors, np.ndarray) and vectors.dtype == np.float32
    assert vectors.shape == (len(photos), embedder.dim)
    assert np.isfinite(vectors).all()
    assert not np.allclose(vectors[0], vectors[1], atol=1e-4), "two different photos embedded to the same vector"


def test_deterministic_within_and_across_loads(embedder, declared, photos):
    pixels = pixels_for(embedder, photos)
    first = embedder.embed(pixels)
    np.testing.assert_array_equal(embedder.embed(pixels), first)
    again = load_embedder(declared.name, threads=1)
    assert_close(again.embed(pixels), first)


def test_batch_equals_rows_embedded_one_by_one(embedder, photos):
    pixels = pixels_for(embedder, photos)
    one_by_one = [embedder.embed(pixels[i:i + 1]) for i in range(len(pixels))]
    assert all(v.shape == (1, embedder.dim) and v.dtype == np.float32 for v in one_by_one)  # a batch of one works
    assert_close(embedder.embed(pixels), np.concatenate(one_by_one))
    assert_close(embedder.embed(pixels[::-1])[::-1], embedder.embed(pixels))  # nor does a row depend on its place


def test_key_is_stable_across_loads(embedder, declared):
    again = load_embedder(declared.name, threads=1)
    assert (again.key, again.name, again.dim, again.spec, again.centered) == \
        (embedder.key, embedder.name, embedder.dim, embedder.spec, embedder.centered)


@pytest.mark.parametrize("kind", [k for k in FACTORIES if k not in ONE_MODEL], indirect=True)
def test_key_follows_the_weights(kind, tmp_path):
    """The same name with other weights is another model: its embeddings must not be stored under the old key."""
    first = FACTORIES[kind](tmp_path, 0)
    key = load_embedder(first.name, threads=1).key
    assert load_embedder(first.name, threads=1).key == key
    second = FACTORIES[kind](tmp_path, 1)  # rebuilt in place
    assert second.name == first.name
    assert load_embedder(second.name, threads=1).key != key


def test_keys_differ_between_implementations(build):
    keys = {kind: load_embedder(build(kind).name, threads=1).key for kind in FACTORIES}
    assert len(set(keys.values())) == len(keys), keys
