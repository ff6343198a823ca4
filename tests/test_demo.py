"""`make demo` (scripts/demo.py): each feature shown once on an example where it works; an empty or missing
folder is one clear line, never a traceback, and leaves no home behind; the detector it is given stays set for
later commands on the home."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from conftest import DETECTOR, SHARED, needs_data, needs_detector

ROOT = Path(__file__).resolve().parents[1]


def demo(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)


def test_an_empty_or_missing_folder_is_one_line_and_leaves_no_home(tmp_path):
    """Once a StopIteration traceback (empty folder) and an empty home left behind (missing folder)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    for folder, words in ((empty, "no image files"), (tmp_path / "nowhere", "no such folder")):
        home = tmp_path / f"home-{folder.name}"
        proc = demo("--home", home, "--images", folder)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1 and words in out and "Traceback" not in out, out
        assert not home.exists()


@needs_data
@needs_detector
def test_the_demo_shows_every_feature_and_keeps_its_detector(tmp_path):
    from viscover.cli.app import app

    home = tmp_path / "home"
    proc = demo("--home", home, "--data", SHARED, "--detector", DETECTOR, "--sample", 120)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for section in ("more like this", "search by a crop", "photo -> catalogue", "related items (boards + looks)",
                    "shop the look"):
        assert section in out, section
    assert "T-Shirt" not in out.split("photo -> catalogue")[1].split("related items")[0]  # grocery photos only
    listed = CliRunner().invoke(app, ["items", "--limit", "1", "--json", "--home", str(home)])
    key = json.loads(listed.output)["items"][0]["id"]
    result = CliRunner().invoke(app, ["detect", "--item", key, "--home", str(home)])
    assert result.exit_code == 0, result.output  # the detector was saved in the home's settings
