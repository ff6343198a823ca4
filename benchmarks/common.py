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


def environment(software: dict | None = None) -> dict:
    """Hardware (CPU, cores, memory, load) and software (Python, numpy, platform, git commit) for a benchmark's
    JSON, plus the script's own `software` entries."""
    import subprocess

    import numpy

    cpu, mem_gb = "unknown", None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"hardware": {"cpu_model": cpu, "logical_cores": os.cpu_count(), "usable_cores": usable,
                         "memory_gb": mem_gb, "machine": platform.machine(),
                         "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
            "software": {"python": platform.python_version(), "numpy": numpy.__version__,
                         "platform": platform.platform(), "viscover_git_commit": commit, **(software or {})}}


def emit(result: dict, json_path: str | None) -> None:
    text = json.dumps(result, indent=2)
    print(text)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(text + "\n")
        print(f"wrote {json_path}", file=sys.stderr)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int, *args: str, env: dict | None = None, timeout: float = 120.0):
    """Start `viscover serve` on 127.0.0.1:`port` as a subprocess and wait until /api/ready answers 200."""
    return start_python(["-m", "viscover.cli.app", "serve", "--home", str(home), "--port", str(port),
                         "--log-level", "warning", *args], port, env=env, timeout=timeout)


def start_python(argv: list[str], port: int, *, env: dict | None = None, timeout: float = 120.0):
    """Start `python ARGV` (a server listening on 127.0.0.1:`port`) and wait until its /api/ready answers 200; its
    output goes to `proc.log`, shown if it exits first."""
    import subprocess
    import tempfile
    import time

    import httpx

    log = tempfile.TemporaryFile()  # not a pipe: a chatty server must never block on a full pipe
    proc = subprocess.Popen([sys.executable, *argv], env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                            stdout=log, stderr=subprocess.STDOUT)
    proc.log = log
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited: {log.read().decode(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/ready", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"server did not become ready in {timeout:g} s")
