"""Run any ONNX image model with ONNX Runtime, and read/write viscover model folders (model.onnx + model.json).

Conventions for a bare `onnx:PATH` model (override any of them in a sidecar `PATH` with `.json` suffix holding
an InputSpec such as {"size": 224, "resize": 256, "layout": "NCHW", "dtype": "float32", "mean": [...], "std": [...]}):
- input: the first graph input, RGB, NCHW or NHWC (inferred from which axis has 3 channels), float32 normalised by
  ImageNet mean/std in 0-255 units, or uint8 raw pixels when the input type is uint8; square side from the
  input's static shape, else 224;
- output: the first graph output; (N, C, H, W) maps are average-pooled, (N, T, C) token sequences give token 0,
  (N, C) is used as is.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from viscover.embed.base import InputSpec, slug
from viscover.errors import ModelError

MODEL_JSON = "model.json"
MODEL_ONNX = "model.onnx"


class OnnxEmbedder:
    """An Embedder backed by an ONNX Runtime session."""

    def __init__(self, path: Path, *, name: str, key: str, spec: InputSpec | None = None, threads: int = 0,
                 centered: bool = False):
        self.session = open_session(path, threads)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_name = self.session.get_outputs()[0].name
        self.spec = spec or infer_spec(inp.shape, inp.type)
        self.name, self.key, self.path, self.centered = name, key, Path(path), centered
        probe = np.zeros((1, self.spec.size, self.spec.size, 3), np.uint8)
        try:
            self.dim = int(self.embed(probe).shape[1])
        except Exception as e:
            raise ModelError(f"{path}: running the model on a {self.spec.size}px image failed ({e}); give its input "
                             "convention (size, resize, layout, dtype, mean, std) in a sidecar .json beside the "
                             "ONNX file, or as \"input\" in a model folder's model.json") from None

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """(N, size, size, 3) uint8 pixels -> (N, dim) float32 (see viscover.embed.base.Embedder)."""
        out = self.session.run([self.output_name], {self.input_name: self.spec.to_tensor(pixels)})[0]
        return pool_output(np.asarray(out, dtype=np.float32))


def open_session(path: Path, threads: int = 0, hint: str = ""):
    """An ONNX Runtime CPU session with `threads` intra-op threads (0: one per core); ModelError if it won't load."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads if threads > 0 else (os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelError(f"{path}: ONNX Runtime cannot load this model ({e}){hint}") from None


def pool_output(out: np.ndarray) -> np.ndarray:
    """Reduce a model output to one vector per image (see the module docstring)."""
    if out.ndim == 4:
        return out.mean(axis=(2, 3))
    if out.ndim == 3:
        return out[:, 0]
    if out.ndim == 2:
        return out
    raise ModelError(f"model output has shape {out.shape}; expected (N, C), (N, T, C) or (N, C, H, W)")


def infer_spec(shape: list, type_name: str) -> InputSpec:
    dtype = "uint8" if "uint8" in type_name else "float32"
    layout = "NHWC" if len(shape) == 4 and shape[3] == 3 and shape[1] != 3 else "NCHW"
    spatial = shape[2] if layout == "NCHW" else shape[1]
    size = spatial if isinstance(spatial, int) and spatial > 0 else 224
    return InputSpec(size=size, resize=size, layout=layout, dtype=dtype)


def file_digest(path: Path, length: int = 10) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:length]


def load_onnx_file(path: Path, threads: int = 0) -> OnnxEmbedder:
    """`onnx:PATH`: a bare ONNX file, with an optional sidecar JSON input spec."""
    if not path.is_file():
        raise ModelError(f"onnx:{path}: no such file")
    sidecar = path.with_suffix(".json")
    spec = None
    if sidecar.is_file():
        try:
            data = json.loads(sidecar.read_text())
            spec = InputSpec.from_dict(data.get("input", data))
        except (ValueError, TypeError) as e:
            raise ModelError(f"{sidecar}: not a valid input spec ({e})") from None
    key = f"onnx-{slug(path.stem)}-{file_digest(path)}"
    if spec is not None:  # the sidecar changes the embeddings, so it must change where they are stored too
        key += "-" + hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:6]
    return OnnxEmbedder(path, name=f"onnx:{path}", key=key, spec=spec, threads=threads)


def is_model_dir(path: Path) -> bool:
    return (path / MODEL_JSON).is_file() and (path / MODEL_ONNX).is_file()


def read_model_json(folder: Path) -> dict:
    try:
        return json.loads((folder / MODEL_JSON).read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{folder / MODEL_JSON}: unreadable model description ({e})") from None


def load_model_dir(folder: Path, threads: int = 0, name: str | None = None) -> OnnxEmbedder:
    """A viscover model folder: model.onnx plus model.json (input spec, key, dimension)."""
    meta = read_model_json(folder)
    spec = InputSpec.from_dict(meta.get("input", {}))
    key = meta.get("key") or f"model-{slug(folder.name)}-{file_digest(folder / MODEL_ONNX)}"
    return OnnxEmbedder(folder / MODEL_ONNX, name=name or str(folder), key=key, spec=spec, threads=threads,
                        centered=bool(meta.get("centered", False)))
