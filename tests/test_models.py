"""Model loaders through the public names: `hf:DIR`, `onnx:PATH`, model folders and unknown names.

Every model here is tiny and built in the test (random weights, saved into tmp_path): nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

# Never reach for the Hugging Face hub: a hub name must fail at once instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

from viscover.embed import load_embedder, resolve_model
from viscover.embed.base import InputSpec, to_pixels
from viscover.errors import ModelError
from viscover.imaging import decode_image

from conftest import SHARED as DATA  # noqa: E402
MAX_PIXELS = 50_000_000
IMAGE_FILES = [
    "grocery/train/Fruit/Apple/Golden-Delicious/Golden-Delicious_001.jpg",
    "clothing/images/00003aeb-ace5-43bf-9a0c-dc31a03e9cd2.jpg",
    "clothing/images/000d31f6-44b5-4758-8d86-c4fcfb234392.jpg",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# ---------------------------------------------------------------------------------------------------------------
# shared fixtures


@pytest.fixture(scope="module")
def images():
    """Three real photos (an apple and two clothes), decoded to RGB PIL images."""
    paths = [DATA / p for p in IMAGE_FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"shared image data not found (expected beside the repository at {DATA}): {missing[0]}")
    return [decode_image(p.read_bytes(), max_pixels=MAX_PIXELS, name=p.name) for p in paths]


def batch(imgs, spec: InputSpec) -> np.ndarray:
    return np.stack([to_pixels(img, spec) for img in imgs])


def check_vectors(vecs: np.ndarray, n: int, dim: int) -> None:
    assert vecs.shape == (n, dim)
    assert vecs.dtype == np.float32
    assert np.isfinite(vecs).all()


def check_distinct_and_repeatable(emb, imgs) -> None:
    """Different images give different vectors; the same image twice (in one batch and across calls) the same."""
    a, b = imgs[0], imgs[1]
    vecs = emb.embed(batch([a, b, a], emb.spec))
    assert not np.allclose(vecs[0], vecs[1], atol=1e-4), "two different photos embedded to the same vector"
    np.testing.assert_array_equal(vecs[0], vecs[2])
    np.testing.assert_array_equal(emb.embed(batch([a], emb.spec))[0], emb.embed(batch([a], emb.spec))[0])


# ---------------------------------------------------------------------------------------------------------------
# Hugging Face models


@pytest.fixture(scope="module")
def transformers():
    pytest.importorskip("torch")
    tf = pytest.importorskip("transformers")
    tf.logging.set_verbosity_error()
    return tf


def tiny_vision(**extra) -> dict:
    return dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                patch_size=8, **extra)


@pytest.fixture(scope="module")
def clip_dir(transformers, tmp_path_factory):
    """A tiny random CLIPModel (text and vision towers, projection 16) with its image processor."""
    import torch

    torch.manual_seed(0)
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=99, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=16),
        vision_config=tiny_vision(),
        projection_dim=16,
    )
    model = transformers.CLIPModel(config).eval()
    folder = tmp_path_factory.mktemp("clip")
    model.save_pretrained(folder)
    # shorter side to 40, then the central 32 x 32: resize and size differ, so both are checked
    transformers.CLIPImageProcessor(size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32},
                                    image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD)).save_pretrained(folder)
    return folder, model


def test_hf_clip_folder(clip_dir, images):
    import torch

    folder, model = clip_dir
    emb = load_embedder(f"hf:{folder}")
    assert emb.dim == 16
    assert emb.spec.size == 32 and emb.spec.resize == 40
    assert emb.spec.layout == "NCHW" and emb.spec.dtype == "float32"
    np.testing.assert_allclose(emb.spec.mean, [255 * m for m in CLIP_MEAN], rtol=1e-6)
    np.testing.assert_allclose(emb.spec.std, [255 * s for s in CLIP_STD], rtol=1e-6)
    assert emb.name == f"hf:{folder.resolve()}"
    assert emb.key.startswith("hf-")

    pixels = batch(images, emb.spec)
    assert pixels.shape == (3, 32, 32, 3)
    vecs = emb.embed(pixels)
    check_vectors(vecs, 3, 16)

    # reference: the saved CLIPModel's own image features (projected pooled output), on the same tensor
    with torch.no_grad():
        x = torch.from_numpy(emb.spec.to_tensor(pixels))
        pooled = model.vision_model(pixel_values=x).pooler_output
        ref = model.visual_projection(pooled).numpy()
    np.testing.assert_allclose(vecs, ref, rtol=1e-4, atol=1e-5)

    check_distinct_and_repeatable(emb, images)


def test_hf_clip_vision_only_folder(transformers, tmp_path, images):
    """A vision-only checkpoint (CLIPVisionModelWithProjection, no processor config): defaults from the config."""
    import torch

    torch.manual_seed(1)
    config = transformers.CLIPVisionConfig(**tiny_vision(projection_dim=16))
    model = transformers.CLIPVisionModelWithProjection(config).eval()
    model.save_pretrained(tmp_path)

    emb = load_embedder(f"hf:{tmp_path}")
    assert emb.dim == 16
    assert emb.spec.size == 32 and emb.spec.resize == 32
    pixels = batch(images, emb.spec)
    vecs = emb.embed(pixels)
    check_vectors(vecs, 3, 16)
    with torch.no_grad():
        ref = model(pixel_values=torch.from_numpy(emb.spec.to_tensor(pixels))).image_embeds.numpy()
    np.testing.assert_allclose(vecs, ref, rtol=1e-4, atol=1e-5)


def test_hf_vit_folder(transformers, tmp_path, images):
    import torch

    torch.manual_seed(2)
    config = transformers.ViTConfig(**tiny_vision())
    model = transformers.ViTModel(config).eval()
    assert model.pooler is not None
    model.save_pretrained(tmp_path)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)

    emb = load_embedder(f"hf:{tmp_path}")
    assert emb.dim == 32  # the pooled output has the hidden size: there is no projection
    assert emb.spec.size == 32 and emb.spec.resize == 32
    np.testing.assert_allclose(emb.spec.mean, [127.5] * 3)
    np.testing.assert_allclose(emb.spec.std, [127.5] * 3)

    pixels = batch(images, emb.spec)
    vecs = emb.embed(pixels)
    check_vectors(vecs, 3, 32)
    with torch.no_grad():
        out = model(pixel_values=torch.from_numpy(emb.spec.to_tensor(pixels)))
    np.testing.assert_allclose(vecs, out.pooler_output.numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(vecs, out.last_hidden_state[:, 0].numpy(), atol=1e-3)  # really the pooler, not CLS

    check_distinct_and_repeatable(emb, images)


def test_hf_key_follows_folder_contents(clip_dir, tmp_path):
    folder, _ = clip_dir
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    key = load_embedder(f"hf:{copy}").key
    assert load_embedder(f"hf:{copy}").key == key  # stable
    proc = json.loads((copy / "preprocessor_config.json").read_text())
    proc["image_mean"] = [0.5, 0.5, 0.5]
    (copy / "preprocessor_config.json").write_text(json.dumps(proc))
    assert load_embedder(f"hf:{copy}").key != key  # new preprocessing: new stored embeddings


def test_hf_relative_folder(clip_dir, monkeypatch):
    """A relative folder becomes absolute, so the name (and key) do not depend on the working directory."""
    folder, _ = clip_dir
    monkeypatch.chdir(folder.parent)
    assert resolve_model(f"hf:{folder.name}") == f"hf:{folder.resolve()}"
    emb = load_embedder(f"hf:{folder.name}")
    assert emb.name == f"hf:{folder.resolve()}"
    assert emb.key == load_embedder(f"hf:{folder}").key


def test_hf_missing_folder(transformers, tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError) as info:
        load_embedder(f"hf:{missing}")
    msg = str(info.value)
    assert str(missing) in msg and "cannot load" in msg
    assert "Traceback" not in msg


def test_hf_folder_without_config(transformers, tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    (empty / "notes.txt").write_text("no config here")
    assert resolve_model(f"hf:{empty}") == f"hf:{empty.resolve()}"
    with pytest.raises(ModelError) as info:
        load_embedder(f"hf:{empty}")
    assert str(empty) in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained transformers traceback


# ---------------------------------------------------------------------------------------------------------------
# ONNX models


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def export_conv(torch, path: Path, *, seed: int = 0, dynamic_spatial: bool = False) -> None:
    """A one-layer conv net, input (N, 3, 64, 64) float32, output (N, 8, H, W); the batch axis is dynamic."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()).eval()
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_spatial else {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated, still fine
        torch.onnx.export(net, (torch.zeros(1, 3, 64, 64),), str(path), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["features"],
                          dynamic_axes={"image": axes, "features": axes})


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_onnx_file(torch, tmp_path, images):
    path = tmp_path / "tiny.onnx"
    export_conv(torch, path)
    assert resolve_model(f"onnx:{path}") == f"onnx:{path.resolve()}"

    emb = load_embedder(f"onnx:{path}")
    assert emb.spec == InputSpec(size=64, resize=64, layout="NCHW", dtype="float32")
    assert emb.dim == 8
    assert emb.name == f"onnx:{path.resolve()}"
    assert emb.key.startswith("onnx-")

    pixels = batch(images, emb.spec)
    assert pixels.shape == (3, 64, 64, 3)
    vecs = emb.embed(pixels)
    check_vectors(vecs, 3, 8)
    fmap = run_onnx(path, emb.spec.to_tensor(pixels))
    assert fmap.shape == (3, 8, 64, 64)
    np.testing.assert_allclose(vecs, fmap.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)

    check_distinct_and_repeatable(emb, images)

    # the key is stable for the same file and follows its contents
    assert load_embedder(f"onnx:{path}").key == emb.key
    export_conv(torch, path, seed=1)
    assert load_embedder(f"onnx:{path}").key != emb.key


def test_onnx_bare_path_resolves(torch, tmp_path, monkeypatch):
    path = tmp_path / "tiny.onnx"
    export_conv(torch, path)
    assert resolve_model(str(path)) == f"onnx:{path.resolve()}"
    assert load_embedder(str(path)).dim == 8
    monkeypatch.chdir(tmp_path)  # relative names become absolute
    assert resolve_model("onnx:tiny.onnx") == resolve_model("tiny.onnx") == f"onnx:{path.resolve()}"
    assert load_embedder("tiny.onnx").name == f"onnx:{path.resolve()}"


def test_onnx_sidecar_spec(torch, tmp_path, images):
    path = tmp_path / "dyn.onnx"
    export_conv(torch, path, dynamic_spatial=True)
    assert load_embedder(f"onnx:{path}").spec.size == 224  # no static side: the default

    path.with_suffix(".json").write_text(json.dumps(
        {"size": 48, "resize": 56, "mean": [0, 0, 0], "std": [255, 255, 255]}))
    emb = load_embedder(f"onnx:{path}")
    assert emb.spec == InputSpec(size=48, resize=56, layout="NCHW", dtype="float32",
                                 mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0))
    assert emb.dim == 8

    pixels = batch(images, emb.spec)
    assert pixels.shape == (3, 48, 48, 3)
    x = emb.spec.to_tensor(pixels)
    assert x.shape == (3, 3, 48, 48) and 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(emb.embed(pixels), run_onnx(path, x).mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)


def test_onnx_sidecar_changes_key(torch, tmp_path):
    """Preprocessing changes the embeddings, so a new sidecar must not reuse vectors stored under the old key."""
    path = tmp_path / "dyn.onnx"
    export_conv(torch, path, dynamic_spatial=True)
    bare = load_embedder(f"onnx:{path}").key
    path.with_suffix(".json").write_text(json.dumps({"size": 48, "resize": 56}))
    first = load_embedder(f"onnx:{path}").key
    assert first != bare
    assert load_embedder(f"onnx:{path}").key == first
    path.with_suffix(".json").write_text(json.dumps({"size": 48, "resize": 56, "mean": [0, 0, 0]}))
    assert load_embedder(f"onnx:{path}").key != first


def test_onnx_bad_sidecar(torch, tmp_path):
    path = tmp_path / "tiny.onnx"
    export_conv(torch, path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelError, match="tiny.json"):
        load_embedder(f"onnx:{path}")


def test_onnx_missing_file(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        load_embedder(f"onnx:{tmp_path / 'absent.onnx'}")


# ---------------------------------------------------------------------------------------------------------------
# model folders and unknown names


def test_model_folder(torch, tmp_path, images):
    folder = tmp_path / "my-model"
    folder.mkdir()
    export_conv(torch, folder / "model.onnx", dynamic_spatial=True)
    spec = InputSpec(size=40, resize=48, mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0))
    (folder / "model.json").write_text(json.dumps({"input": spec.to_dict(), "key": "my-model-v1", "dim": 8}))

    assert resolve_model(str(folder)) == str(folder.resolve())
    emb = load_embedder(str(folder))
    assert emb.key == "my-model-v1"
    assert emb.spec == spec
    assert emb.dim == 8
    pixels = batch(images, emb.spec)
    vecs = emb.embed(pixels)
    check_vectors(vecs, 3, 8)
    np.testing.assert_allclose(vecs, run_onnx(folder / "model.onnx", spec.to_tensor(pixels)).mean(axis=(2, 3)),
                               rtol=1e-5, atol=1e-6)


def test_folder_without_model(tmp_path):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "model.json").write_text("{}")  # no model.onnx
    with pytest.raises(ModelError, match="not a model folder"):
        load_embedder(str(folder))


def test_unknown_name():
    with pytest.raises(ModelError) as info:
        load_embedder("no-such-model")
    msg = str(info.value)
    assert "no-such-model" in msg
    for form in ("efficientnet-lite0", "onnx:PATH", "hf:NAME_OR_DIR", "DIR"):
        assert form in msg
    with pytest.raises(ModelError):
        resolve_model("no-such-model")
