"""Errors from lower layers say what is wrong and name their fix as a Remedy; each shell phrases it: the CLI as a
command to run, the server as a request to send (never a server path, never a CLI flag the client cannot use)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import needs_data
from viscover import NotFoundError, Remedy
from viscover.cli.hints import cli_hint, with_hint
from viscover.serve.hints import detail, http_hint

SRC = Path(__file__).resolve().parents[1] / "src" / "viscover"


def _remedy_actions() -> set[str]:
    """Every action named by a `Remedy("...")` anywhere in the package."""
    actions = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Remedy" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                actions.add(node.args[0].value)
    return actions


def test_every_remedy_raised_has_a_cli_phrasing():
    actions = _remedy_actions()
    assert {"index", "rebuild-index", "create-home", "list-items"} <= actions  # the scan finds them
    missing = {a for a in actions if cli_hint(Remedy(a)) is None and a != "image-url"}  # image-url: HTTP only
    assert not missing, f"remedies without a CLI hint: {missing}"


def test_cli_and_http_phrase_the_same_remedy_for_their_users():
    error = NotFoundError("no index for model efficientnet-lite0", remedy=Remedy("index", model="hf:x"))
    assert with_hint(error) == "no index for model efficientnet-lite0; run `viscover index --model hf:x`"
    assert detail(error).startswith("no index for model efficientnet-lite0; ")
    assert "--model" not in detail(error)
    secret = NotFoundError("ranker unreadable", remedy=Remedy("train-ranker", path="/srv/home/rank"))
    assert "/srv/home/rank" in with_hint(secret) and "/srv/home/rank" not in detail(secret)
    for action in ("force-save", "ingest-engagement", "create-home"):  # operations only a local user can do
        assert http_hint(Remedy(action)) is None
    assert with_hint(NotFoundError("plain")) == detail(NotFoundError("plain")) == "plain"


@needs_data
def test_an_unknown_item_gets_each_shells_hint(indexed_home):
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from viscover import Engine, Settings
    from viscover.cli.app import app
    from viscover.serve import ServeOptions, create_app

    result = CliRunner().invoke(app, ["search", "--item", "nope", "--home", str(indexed_home)])
    assert result.exit_code == 1
    assert "unknown item id 'nope'; find ids with `viscover items TEXT`" in result.output
    with Engine(indexed_home, Settings(workers=1)) as engine:
        with TestClient(create_app(engine, ServeOptions(no_auth=True))) as client:
            body = client.get("/api/items/nope").json()
            assert body["detail"] == "unknown item id 'nope'; find ids with GET /api/items?q=TEXT"
            body = client.get("/api/boards/nope").json()
            assert body["detail"] == "unknown board 'nope'; list boards with GET /api/boards"
            body = client.get("/images/" + "0" * 64).json()
            assert body["detail"] == f"no catalogue item has the image {'0' * 64}"
            body = client.get("/thumbs/xyz").json()
            assert body["detail"] == "'xyz' is not an image hash (64 lowercase hex digits); use an item's image_url"


@pytest.mark.parametrize("action", ["index", "rebuild-index", "list-items", "list-boards", "ingest",
                                    "allow-image-root"])
def test_http_hints_never_name_cli_options(action):
    hint = http_hint(Remedy(action, model="m", path="/p"))
    assert hint and "--" not in hint and "/p" not in hint


@pytest.mark.parametrize(("text", "sent"), [
    ("/work/shared/data/x.jpg: file not found", ".../x.jpg: file not found"),
    ("path '/tmp/a/b c.jpg' leads to /tmp/a/b", "path '.../b c.jpg' leads to .../b"),
    ("allowed roots (/tmp/p/private-photos); ask", "allowed roots (.../private-photos); ask"),
    ("ranker in /tmp/home/rank/.", "ranker in .../rank."),
    ("no such endpoint: /api/foo (see /docs)", "no such endpoint: /api/foo (see /docs)"),  # a request path
    ("url 'http://127.0.0.1:9/tmp/x.jpg' failed", "url 'http://127.0.0.1:9/tmp/x.jpg' failed"),  # a URL's path
    ("file:///etc/passwd: only http", "file:///etc/passwd: only http"),
    ("the folder /tmp itself", "the folder /tmp itself"),
])
def test_http_messages_carry_no_server_path(text, sent):
    from viscover.serve.hints import redact_all, redact_paths

    assert redact_paths(text) == sent
    assert redact_all({"problems": [text], "n": 3}) == {"problems": [sent], "n": 3}
