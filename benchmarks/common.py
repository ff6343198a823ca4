"""Shared helpers for the benchmarks: machine description and JSON output."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

DATA = Path(os.environ.get("VISCOVER_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy
    import onnxruntime

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": numpy.__version__,
            "onnxruntime": onnxruntime.__version__}


def emit(result: dict, json_path: str | None) -> None:
    text = json.dumps(result, indent=2)
    print(text)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(text + "\n")
        print(f"wrote {json_path}", file=sys.stderr)
