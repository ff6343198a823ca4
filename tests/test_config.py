"""Settings: defaults, the home's viscover.toml, VISCOVER_* variables, overrides; typos are errors."""

from __future__ import annotations

import pytest

from viscover import Settings
from viscover.errors import ConfigError


def test_precedence(tmp_path):
    (tmp_path / "viscover.toml").write_text('batch_size = 8\nmodel = "efficientnet-lite1"\nhnsw_m = 48\n')
    s = Settings.load(tmp_path, overrides={"batch_size": 2, "workers": None},
                      environ={"VISCOVER_MODEL": "onnx:/x.onnx", "VISCOVER_DEDUP_THRESHOLD": "0.1"})
    assert (s.batch_size, s.model, s.hnsw_m, s.dedup_threshold, s.workers) == (2, "onnx:/x.onnx", 48, 0.1, 0)


def test_unknown_and_malformed_settings_are_errors(tmp_path):
    (tmp_path / "viscover.toml").write_text("bach_size = 8\n")
    with pytest.raises(ConfigError, match="unknown setting.*bach_size"):
        Settings.load(tmp_path, environ={})
    with pytest.raises(ConfigError, match="expected int"):
        Settings.load(None, overrides={"batch_size": "many"}, environ={})
    (tmp_path / "viscover.toml").write_text("batch_size = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(tmp_path, environ={})


def test_every_setting_has_help():
    for name, (_, text) in Settings.help().items():
        assert text and text.endswith("."), name
