"""Writing a trained model folder: model.onnx (trunk + head, uint8 pixels in, pre-normalisation embedding out),
model.json (input convention, dimension, binarise-at-zero), labels.json, report.json and curves.png.

The folder is what `--model DIR` takes everywhere (index, search, eval); its storage key is derived from the ONNX
file's digest, so a retrained model never mixes its vectors with an older one's.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import torch

from viscover.embed.efficientnet import SIDES, spec_for
from viscover.embed.onnx_model import MODEL_JSON, MODEL_ONNX, load_model_dir
from viscover.fsutil import atomic_path, atomic_write_bytes
from viscover.train.config import TrainConfig
from viscover.train.data import TrainData
from viscover.train.model import ExportModel, UnifiedModel


def export_model(model: UnifiedModel, trunk, config: TrainConfig, data: TrainData, history: list[dict],
                 out: Path, final: dict) -> None:
    from viscover.embed.torch_models import export_pixel_model, load_efficientnet

    model.eval()
    trunk = (trunk or load_efficientnet(config.backbone)).eval()
    full = ExportModel(trunk, model.head).eval()
    with atomic_path(out / MODEL_ONNX) as tmp:
        dim = export_pixel_model(full, SIDES[config.backbone], tmp, "embedding")
    meta = {"format": "viscover-model/1", "name": out.name, "dim": dim, "input": spec_for(config.backbone).to_dict(),
            "centered": True, "backbone": config.backbone,
            "tasks": {t: len(c) for t, c in data.classes.items()},
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "training": config.to_dict()}
    atomic_write_bytes(out / MODEL_JSON, json.dumps(meta, indent=2).encode())
    atomic_write_bytes(out / "labels.json", json.dumps(data.classes, indent=1).encode())
    check = _check_export(full, out)
    report = {"history": history, "final": final, "export_check": check,
              "streams": {s.name: {"train": int(len(s.train_rows)), "val": int(len(s.val_rows))}
                          for s in data.streams}}
    atomic_write_bytes(out / "report.json", json.dumps(report, indent=2).encode())
    plot_curves(history, out / "curves.png", final)


@torch.no_grad()
def _check_export(full: ExportModel, out: Path) -> dict:
    """The ONNX graph must agree with the PyTorch model it came from (on a fixed pseudo-random picture)."""
    side = SIDES[json.loads((out / MODEL_JSON).read_text())["backbone"]]
    pixels = np.random.default_rng(0).integers(0, 256, (2, side, side, 3), dtype=np.uint8)
    ours = load_model_dir(out, threads=1).embed(pixels)
    reference = full(torch.from_numpy(pixels)).numpy()
    diff = float(np.abs(ours - reference).max())
    if diff > 1e-2 * max(1.0, float(np.abs(reference).max())):
        raise RuntimeError(f"exported ONNX model disagrees with PyTorch (max difference {diff})")
    return {"max_abs_difference": diff}


def plot_curves(history: list[dict], path: Path, final: dict | None = None) -> None:
    """Training loss per task and validation Recall@1 per stream (float solid, binary dashed) by epoch; crosses
    mark the exported model's binary Recall@1 (after the bit rotation)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for task in sorted({t for h in history for t in h["loss"]}):
        left.plot(epochs, [h["loss"].get(task, np.nan) for h in history], label=task)
    left.set(title="training loss (NormSoftmax)", xlabel="epoch", ylabel="loss")
    left.legend()
    for name in sorted({n for h in history for n in h["val"]}):
        line, = right.plot(epochs, [h["val"].get(name, {}).get("recall@1", np.nan) for h in history], label=name)
        right.plot(epochs, [h["val"].get(name, {}).get("binary_recall@1", np.nan) for h in history], "--",
                   color=line.get_color())
        if final and name in final and epochs:
            right.plot([epochs[-1]], [final[name]["binary_recall@1"]], "x", color=line.get_color(), markersize=9)
    right.set(title="validation Recall@1 (dashed: binary; x: exported bits)", xlabel="epoch", ylabel="Recall@1")
    right.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
