"""Training end to end on small real manifests: the model folder, its use by eval/index/search, checkpoints and
resumption, reproducibility, binarisation at zero, and the fine-tuning path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import SHARED, needs_data
from viscover import Engine, Settings
from viscover.embed import load_embedder
from viscover.errors import ConfigError
from viscover.train.config import TrainConfig
from viscover.train.loop import train

pytestmark = needs_data


def config(tmp_path, grocery_manifest, clothing_manifest, **kw) -> TrainConfig:
    base = dict(manifests=[str(grocery_manifest), str(clothing_manifest)], tasks=["product", "category"],
                out=str(tmp_path / "model"), dim=16, epochs=2, batch_size=30, per_class=2, views=1, workers=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, grocery_manifest, clothing_manifest):
    tmp = tmp_path_factory.mktemp("train")
    cfg = config(tmp, grocery_manifest, clothing_manifest)
    return cfg, train(cfg)


def test_model_folder(trained):
    cfg, result = trained
    out = result.out
    for name in ("model.onnx", "model.json", "labels.json", "report.json", "curves.png", "checkpoint.pt"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "model.json").read_text())
    assert meta["dim"] == 16 and meta["centered"] is True and meta["tasks"] == {"product": 5, "category": 13}
    labels = json.loads((out / "labels.json").read_text())
    assert "Banana" in labels["product"] and len(labels["category"]) == 13  # 5 grocery + 8 clothing
    report = json.loads((out / "report.json").read_text())
    assert len(report["history"]) == 2 and report["export_check"]["max_abs_difference"] < 1e-3
    names = set(report["history"][-1]["val"])
    assert {"grocery/product/photo", "grocery/product/photo->catalog", "clothing/category/photo"} <= names
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    streams = report["streams"]
    assert streams["grocery/product/catalog"] == {"train": 5, "val": 0}  # catalogue images train, own stream


def test_trained_model_is_used_by_eval_index_and_search(trained, grocery_manifest, tmp_path):
    from viscover.eval.retrieval import evaluate_manifest

    _, result = trained
    embedder = load_embedder(str(result.out))
    assert embedder.dim == 16 and embedder.centered and embedder.key.startswith("model-")
    # `viscover eval` of the exported ONNX model on decoded images against training's own final validation
    # (the PyTorch head on cached trunk features): the same queries (held-out photos), gallery and figures
    report = evaluate_manifest(grocery_manifest, "product", model=str(result.out), query_domain="photo",
                               query_split="val", gallery_domain="catalog", settings=Settings(workers=1))
    final = json.loads((result.out / "report.json").read_text())["final"]["grocery/product/photo->catalog"]
    assert (report.queries, report.gallery) == (final["queries"], 5) == (10, 5)
    assert report.float["recall@1"] == pytest.approx(final["recall@1"])
    assert report.float["map@r"] == pytest.approx(final["map@r"])
    assert report.binary["recall@1"] == pytest.approx(final["binary_recall@1"])
    assert report.float["recall@1"] >= 0.5  # 5 products: chance is 0.2
    with Engine(tmp_path / "home", Settings(workers=1, model=str(result.out))) as engine:
        engine.ingest(grocery_manifest, image_roots=[SHARED])
        engine.index()
        index = engine.vector_index()
        assert index.dim == 16 and not index.codec.center.any()  # binarised at zero: no catalogue mean
        item = "val/Fruit/Banana/Banana_001.jpg"
        hits = engine.search_item(item, k=3, binary=True)
        assert len(hits) == 3 and item not in [h.item.key for h in hits]


def test_bits_are_signs_of_the_exported_embedding(trained, grocery_manifest):
    _, result = trained
    from viscover.embed.pipeline import ImageJob, embed_images
    from viscover.index import Codec

    embedder = load_embedder(str(result.out))
    rows = [line.split(",")[1] for line in grocery_manifest.read_text().splitlines()[1:6]]
    raw = np.concatenate([b.vectors for b in embed_images([ImageJob(i, p) for i, p in enumerate(rows)],
                                                             embedder, Settings(workers=1))])
    bits = np.unpackbits(Codec.identity(16).bits(raw), axis=1)[:, :16]
    assert np.array_equal(bits == 1, raw > 0)
    assert 0.2 < bits.mean() < 0.8  # LayerNorm-centred: bits are not constant


def flat(value, prefix: str = "") -> dict[str, float]:
    """Nested report values as one {path: number} dict (pytest.approx compares flat dicts only)."""
    if isinstance(value, dict):
        return {k: v for key, inner in value.items() for k, v in flat(inner, f"{prefix}/{key}").items()}
    return {prefix: float(value)}


class Interrupted(Exception):
    pass


def interrupt_at(epoch: int):
    """A progress factory that stops training as soon as the given epoch starts (as Ctrl-C or a crash would)."""
    import contextlib

    @contextlib.contextmanager
    def progress(description, total):
        if description.startswith(f"epoch {epoch}/"):
            raise Interrupted(description)
        yield lambda n: None

    return progress


def test_resume_continues_exactly_where_it_stopped(tmp_path, grocery_manifest, clothing_manifest, trained):
    """A run interrupted after epoch 1 and resumed ends with the same model, bit for bit up to float noise, as
    the uninterrupted run: model weights, optimizer momentum, sampler and random streams all come back."""
    _, straight = trained
    cfg = config(tmp_path, grocery_manifest, clothing_manifest)  # the same settings as `trained`
    with pytest.raises(Interrupted):
        train(cfg, progress=interrupt_at(2))
    assert (tmp_path / "model" / "checkpoint.pt").is_file() and not (tmp_path / "model" / "report.json").exists()
    with pytest.raises(ConfigError, match="cannot resume"):  # a checkpoint of other settings is refused
        train(config(tmp_path, grocery_manifest, clothing_manifest, dim=8), resume=True)
    resumed = train(cfg, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    a = json.loads((straight.out / "report.json").read_text())
    b = json.loads((resumed.out / "report.json").read_text())
    for key in ("loss", "val", "lr"):
        assert flat(b["history"][1][key]) == pytest.approx(flat(a["history"][1][key]), rel=1e-5), key
    assert flat(b["final"]) == pytest.approx(flat(a["final"]), rel=1e-5)
    pixels = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    assert np.allclose(load_embedder(str(straight.out)).embed(pixels), load_embedder(str(resumed.out)).embed(pixels),
                       atol=1e-5)


def test_same_seed_same_model(tmp_path, grocery_manifest, clothing_manifest, trained):
    _, first = trained
    again = train(config(tmp_path, grocery_manifest, clothing_manifest))
    pixels = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    assert np.allclose(load_embedder(str(first.out)).embed(pixels), load_embedder(str(again.out)).embed(pixels),
                       atol=1e-5)


def test_finetuning_the_last_block_changes_the_trunk(tmp_path, grocery_manifest):
    cfg = TrainConfig(manifests=[str(grocery_manifest)], tasks=["product"], out=str(tmp_path / "ft"), dim=8,
                      epochs=1, batch_size=8, per_class=2, views=1, finetune_blocks=1, warmup_epochs=0, workers=1)
    import torch

    from viscover.embed.torch_models import load_efficientnet

    result = train(cfg)
    assert json.loads((result.out / "report.json").read_text())["export_check"]["max_abs_difference"] < 1e-3
    state = torch.load(result.out / "checkpoint.pt", weights_only=True)["trunk"]
    original = load_efficientnet("efficientnet-lite0").state_dict()
    last = [k for k in state if k.startswith("net._blocks.15.")]
    first = [k for k in state if k.startswith("net._blocks.0.")]
    assert any(not torch.equal(state[k], original[k]) for k in last)  # the tail trained
    assert all(torch.equal(state[k], original[k]) for k in first)  # the rest did not


def test_bad_configs(tmp_path, grocery_manifest):
    with pytest.raises(ConfigError, match="--task"):
        train(TrainConfig(manifests=[str(grocery_manifest)], tasks=[], out=str(tmp_path / "x")))
    from viscover.errors import BadManifestError

    with pytest.raises(BadManifestError, match="colour"):
        train(TrainConfig(manifests=[str(grocery_manifest)], tasks=["colour"], out=str(tmp_path / "x")))


def test_train_command(tmp_path, grocery_manifest):
    from typer.testing import CliRunner

    from viscover.cli.app import app

    out = tmp_path / "cli-model"
    result = CliRunner().invoke(app, ["train", str(grocery_manifest), "--task", "product", "--out", str(out),
                                      "--epochs", "1", "--dim", "8", "--views", "1", "--batch-size", "20",
                                      "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "epoch 1/1" in result.output and "val R@1" in result.output and (out / "model.onnx").is_file()
    bad = CliRunner().invoke(app, ["train", str(grocery_manifest), "--task", "colour", "--out", str(out)])
    assert bad.exit_code == 1 and "colour" in bad.output
