"""The command line through its public surface: every command, JSON output, and one-line errors with exit 1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import SHARED, needs_data
from viscover.cli.app import app

pytestmark = needs_data
runner = CliRunner()


def run(*args: str, ok: bool = True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_ingest_index_search_info(tmp_path, grocery_manifest):
    home = tmp_path / "home"
    out = json.loads(run("ingest", grocery_manifest, "--image-root", SHARED, "--home", home, "--json").stdout)
    assert out[0]["added"] == 35 and out[0]["skipped"] == 0
    assert "35 unchanged" in run("ingest", grocery_manifest, "--image-root", SHARED, "--home", home).stdout
    report = json.loads(run("index", "--home", home, "--json", "--workers", "1").stdout)
    assert (report["embedded"], report["size"], report["kind"]) == (35, 35, "exact")
    info = json.loads(run("info", "--home", home, "--json").stdout)
    assert info["items"] == 35 and info["tasks"]["product"]["labels"] == 5
    assert info["models"]["efficientnet-lite0"]["index"]["items"] == 35

    item = "val/Fruit/Banana/Banana_001.jpg"
    hits = json.loads(run("search", "--item", item, "-k", "3", "--home", home, "--json").stdout)
    assert len(hits) == 3 and item not in [h["id"] for h in hits]
    assert {"score", "id", "labels", "domain", "boards", "image", "duplicates"} <= set(hits[0])
    filtered = json.loads(run("search", "--item", item, "--label", "category=Banana", "--domain", "photo",
                              "--home", home, "--json").stdout)
    assert filtered and all(h["labels"]["category"] == "Banana" and h["domain"] == "photo" for h in filtered)
    path = hits[0]["image"]["source"]
    by_image = json.loads(run("search", path, "--crop", "0,0,100,100", "-k", "2", "--binary", "--home", home,
                              "--json").stdout)
    assert len(by_image) == 2
    table = run("search", "--item", item, "-k", "2", "--home", home).stdout
    assert "results for" in table and "score" in table
    assert "efficientnet-lite0" in run("info", "--home", home).stdout
    assert "removed 1 item(s)" in run("remove", item, "--home", home).stdout


def test_eval_command_writes_the_specified_json(tmp_path, grocery_manifest):
    """The command's JSON is the Python API's report (itself checked against brute force in test_eval.py), for
    the options given; the table shows the same figures."""
    from viscover import Settings
    from viscover.eval.retrieval import evaluate_manifest

    out = tmp_path / "eval.json"
    result = run("eval", grocery_manifest, "--task", "category", "--query-split", "val", "--gallery-domain", "photo",
                 "--json", out, "--workers", "1")
    data = json.loads(out.read_text())
    assert {"task", "queries", "gallery", "float", "binary"} <= set(data)
    assert (data["task"], data["queries"], data["gallery"]) == ("category", 10, 30)
    for side in ("float", "binary"):
        assert set(data[side]) == {"recall@1", "recall@5", "recall@10", "map@r"}
    api = evaluate_manifest(grocery_manifest, "category", query_split="val", gallery_domain="photo",
                            settings=Settings(workers=1)).to_dict()
    assert {k: data[k] for k in ("float", "binary", "queries", "gallery")} == \
        {k: api[k] for k in ("float", "binary", "queries", "gallery")}
    assert "R@1" in result.stdout and "binary" in result.stdout
    assert f"{data['float']['recall@1']:.3f}" in result.stdout


@pytest.mark.parametrize("args,message", [
    (["search", "--item", "nope"], "unknown item id 'nope'"),
    (["search"], "exactly one query"),
    (["search", "x.jpg", "--item", "y"], "exactly one query"),
    (["search", "--item", "val/Fruit/Banana/Banana_001.jpg", "--crop", "1,2,3"], "crop box"),
    (["search", "--item", "val/Fruit/Banana/Banana_001.jpg", "--label", "category"], "TASK=LABEL"),
    (["search", "--item", "val/Fruit/Banana/Banana_001.jpg", "--model", "no-such-model"], "unknown model"),
    (["search", "/no/such/image.jpg"], "file not found"),
    (["ingest", "/no/such/manifest.csv"], "no such file or folder"),
    (["eval", "/no/such/manifest.csv", "--task", "x"], "no such file"),
])
def test_user_errors_exit_1_with_one_line(args, message, indexed_home):
    result = run(*args, "--home", indexed_home, ok=False) if args[0] != "eval" else run(*args, ok=False)
    assert result.exit_code == 1, result.output
    assert "error:" in result.output and message in result.output
    assert "Traceback" not in result.output


def test_eval_errors(tmp_path, grocery_manifest):
    result = run("eval", grocery_manifest, "--task", "colour", ok=False)
    assert result.exit_code == 1 and "no row has a label for task 'colour'" in result.output
    result = run("eval", grocery_manifest, "--task", "product", "--query-domain", "studio", ok=False)
    assert result.exit_code == 1 and "domain 'studio'" in result.output


def test_settings_and_models_are_documented():
    from viscover.config import Settings

    out = run("info", "--settings").stdout
    for name in Settings.names():
        assert name in out
    assert "onnx:PATH" in run("info", "--models").stdout


def test_console_script_runs_as_a_module(indexed_home):
    proc = subprocess.run([sys.executable, "-m", "viscover", "info", "--json", "--home", str(indexed_home)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["items"] == 59


def test_commands_on_a_missing_home_say_so(tmp_path):
    for args in (["search", "--item", "x"], ["index"], ["info"], ["remove", "x"]):
        result = run(*args, "--home", tmp_path / "nowhere", ok=False)
        assert result.exit_code == 1 and "no catalogue at" in result.output, args
    assert not (tmp_path / "nowhere").exists()


def test_version_is_one_number_for_the_cli_the_api_and_the_package():
    """There was no --version; the number now comes from viscover.__version__ alone (pyproject reads it)."""
    from importlib.metadata import version

    import viscover

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"viscover {viscover.__version__}\n"
    assert version("viscover") == viscover.__version__


def test_the_declared_licence_ships_with_the_code():
    """pyproject.toml declared Apache-2.0 but the repository had no LICENSE file."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert tomllib.loads((root / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"
    text = (root / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


def test_an_empty_or_missing_source_is_said_not_counted(tmp_path):
    """`viscover ingest <empty folder>` said "0 rows" and exited 0; a missing folder left an empty home behind;
    a search of the empty catalogue then said "check the filters" when no filter was given."""
    empty = tmp_path / "empty"
    (empty / ".hidden").mkdir(parents=True)
    (empty / "notes.txt").write_text("not an image")
    home = tmp_path / "home"
    result = run("ingest", empty, "--home", home, ok=False)
    assert result.exit_code == 1, result.output
    assert "no image files" in result.output and ".jpg" in result.output and "Traceback" not in result.output
    missing = run("ingest", tmp_path / "nowhere", "--home", tmp_path / "home2", ok=False)
    assert missing.exit_code == 1 and "no such file or folder" in missing.output
    assert not (tmp_path / "home2").exists()
    run("index", "--home", home)
    found = run("search", "--item", "x", "--home", home, ok=False)
    assert "unknown item id 'x'" in found.output and "catalogue is empty" in found.output, found.output
    photo = next((SHARED / "grocery" / "train" / "Fruit" / "Banana").glob("*.jpg"))
    out = run("search", photo, "--home", home).output
    assert "the catalogue is empty" in out and "filters" not in out, out


def test_items_are_listed_and_found_and_an_unknown_id_suggests_near_ones(indexed_home):
    """`unknown item id '1.jpg'; list items with viscover info` named no id, and no command listed them."""
    listing = run("items", "--limit", "5", "--home", indexed_home).output
    assert "items 1-5 of 59" in listing and "more with --offset 5" in listing
    found = json.loads(run("items", "BANANA", "--json", "--home", indexed_home).output)
    assert found["total"] >= 2 and all("banana" in (i["id"] + (i["title"] or "")).lower() for i in found["items"])
    key = next(i["id"] for i in found["items"] if "/" in i["id"])
    name = key.rsplit("/", 1)[-1]
    for asked in (name, name.upper(), name.rsplit(".", 1)[0]):  # the file name alone, its case, no extension
        result = run("search", "--item", asked, "--home", indexed_home, ok=False)
        assert result.exit_code == 1 and "did you mean" in result.output and repr(key) in result.output, result.output
        assert "viscover items TEXT" in result.output
    typo = run("search", "--item", name.replace("Banana", "Bananna"), "--home", indexed_home, ok=False)
    assert "did you mean" in typo.output and "Banana" in typo.output, typo.output
    for unlike in ("zzzz-nothing-like-it", "1.jpg"):  # '1.jpg' is inside 'Banana_001.jpg', but not its name
        none = run("search", "--item", unlike, "--home", indexed_home, ok=False)
        assert "did you mean" not in none.output and "unknown item id" in none.output, none.output


def test_detection_without_a_detector_names_the_option_and_the_setting(indexed_home, tmp_path):
    """`viscover detect` said "set the detector setting..." without naming --detector; a saved setting now
    persists it for every later command (the demo saves its detector this way)."""
    from viscover import Settings, save_settings

    key = json.loads(run("items", "--limit", "1", "--json", "--home", indexed_home).output)["items"][0]["id"]
    result = run("detect", "--item", key, "--home", indexed_home, ok=False)
    assert result.exit_code == 1 and "--detector MODEL.onnx" in result.output, result.output
    assert "viscover.toml" in result.output
    home = tmp_path / "home"
    home.mkdir()
    save_settings(home, {"detector": "/models/d.onnx", "default_k": 7})
    save_settings(home, {"detector": 'C:\\odd "name".onnx'})  # a later save keeps the other values
    settings = Settings.load(home, environ={})
    assert (settings.detector, settings.default_k) == ('C:\\odd "name".onnx', 7)

# ---- serve: the API key without putting it on the command line ---------------------------------------------
def _serve_with(home, args: list[str], env: dict, key: str) -> str:
    """Start `viscover serve` with `args`/`env`; check that writes need `key` and that no process argument shows
    it (what `ps` prints); return what the server printed."""
    import httpx

    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    from common import free_port, start_server

    port = free_port()
    proc = start_server(home, port, *args, env=env)
    try:
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            assert key.encode() not in f.read()
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/jobs", timeout=10).status_code == 401
        assert httpx.get(f"{base}/api/jobs", headers={"X-API-Key": key}, timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
    proc.log.seek(0)
    return proc.log.read().decode(errors="replace")


def test_serve_takes_its_api_key_from_a_file_or_the_environment(indexed_home, tmp_path):
    key_file = tmp_path / "key.txt"
    key_file.write_text("from-a-file-0123456789\n")  # the trailing newline of `echo KEY > file` is not part of it
    printed = _serve_with(indexed_home, ["--api-key-file", str(key_file)], {}, "from-a-file-0123456789")
    assert "from-a-file" not in printed  # a key the operator gave is never printed
    printed = _serve_with(indexed_home, [], {"VISCOVER_API_KEY": "from-the-env-0123456789"},
                          "from-the-env-0123456789")
    assert "from-the-env" not in printed


def test_serve_api_key_file_errors_and_help(tmp_path):
    missing = tmp_path / "nokey.txt"
    result = run("serve", "--api-key-file", missing, "--home", tmp_path / "home", ok=False)
    assert result.exit_code == 1
    assert f"--api-key-file {missing}: file not found" in result.output, result.output
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    result = run("serve", "--api-key-file", empty, "--home", tmp_path / "home", ok=False)
    assert result.exit_code == 1 and f"--api-key-file {empty}: the file is empty" in result.output, result.output
    result = run("serve", "--api-key", "k", "--api-key-file", empty, "--home", tmp_path / "home", ok=False)
    assert result.exit_code == 1 and "give --api-key or --api-key-file, not both" in result.output, result.output
    help_text = " ".join(run("serve", "--help").output.replace("│", " ").split())  # unwrapped from its box
    for words in ("--api-key-file", "visible to other users in ps", "VISCOVER_API_KEY"):
        assert words in help_text, help_text
