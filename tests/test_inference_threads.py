"""The server runs one ONNX Runtime thread per request by default (benchmarks/inference_threads.py: at 2 and 4
concurrent callers, one thread served 1.2-1.5x more detections and searches by image than one per core), while a
setting given by the user is kept; other commands keep one per core."""

from __future__ import annotations

from typer.testing import CliRunner

from viscover import Settings
from viscover.cli.app import app


def _served_settings(monkeypatch, tmp_path, *args: str, env: dict | None = None) -> Settings:
    import viscover.serve.run as run
    from viscover import Engine

    Engine(tmp_path / "home").close()  # an empty catalogue
    seen = {}

    def fake_serve(engine, options, **kwargs):
        seen["settings"] = engine.settings

    monkeypatch.setattr(run, "serve", fake_serve)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["serve", "--home", str(tmp_path / "home"), "--no-auth", *args])
    assert result.exit_code == 0, result.output
    return seen["settings"]


def test_the_server_runs_one_inference_thread_per_request_by_default(monkeypatch, tmp_path):
    assert Settings().inference_threads == 0  # elsewhere: one per core
    assert _served_settings(monkeypatch, tmp_path).inference_threads == 1


def test_an_inference_threads_setting_is_kept_by_the_server(monkeypatch, tmp_path):
    served = _served_settings(monkeypatch, tmp_path, env={"VISCOVER_INFERENCE_THREADS": "2"})
    assert served.inference_threads == 2
