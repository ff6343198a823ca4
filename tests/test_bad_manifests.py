"""Bad manifests never crash an ingest: missing columns, bad encodings, duplicate ids, paths escaping the manifest's
folder, URLs into private networks (SSRF guard), and enormous files (streamed, memory bounded)."""

from __future__ import annotations

import codecs
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from typer.testing import CliRunner

from conftest import GROCERY, SHARED, needs_data, write_csv
from viscover import Engine, Settings
from viscover.catalog.ingest import MAX_PROBLEMS
from viscover.catalog.sources import open_source
from viscover.cli.app import app
from viscover.cli.hints import cli_hint
from viscover.datasets import write_manifest
from viscover.errors import BadImageError, BadManifestError, Remedy
from viscover.imaging import read_image_bytes
from viscover.imaging.netguard import parse_allow_list

pytestmark = needs_data
BANANA = sorted((GROCERY / "train/Fruit/Banana").glob("*.jpg"))
LIME = sorted((GROCERY / "train/Fruit/Lime").glob("*.jpg"))


@pytest.fixture()
def home(tmp_path):
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        yield engine


def local_copies(folder: Path, files: list[Path]) -> list[Path]:
    """Copies of real photos inside a manifest's folder (the default: paths must stay inside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(f, folder / f.name)) for f in files]


def reasons(report) -> dict[str, str]:
    return {p.where: p.reason for p in report.skipped}


# ---- missing and repeated columns ------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_a_missing_path_column_is_one_clear_error(tmp_path, suffix):
    path = tmp_path / f"m{suffix}"
    rows = [{"file": "a.jpg", "label.product": "x"}, {"file": "b.jpg", "label.product": "y"}]
    if suffix == ".tsv":
        path.write_text("file\tlabel.product\na.jpg\tx\n")
    else:
        write_manifest(rows, path)
    with pytest.raises(BadManifestError) as error:
        open_source(path)
    message = str(error.value)
    assert str(path) in message and "no 'path' column" in message and "'file'" in message


def test_repeated_header_columns_are_refused(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("path,title,title\na.jpg,x,y\n")
    with pytest.raises(BadManifestError, match=r"m.csv: column\(s\) 'title' appear more than once"):
        open_source(path)


# ---- encodings -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_bom_and_utf16_utf32_manifests_are_read(home, tmp_path, encoding, suffix):
    files = local_copies(tmp_path / "imgs", BANANA[:2])
    rows = [{"path": f"imgs/{f.name}", "id": f.stem, "title": "café crème"} for f in files]
    if suffix == ".csv":
        text = "path,id,title\n" + "".join(f"{r['path']},{r['id']},{r['title']}\n" for r in rows)
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    bom = codecs.BOM_UTF16_BE if encoding == "utf-16-be" else b""  # the other codecs write their own BOM
    path = tmp_path / f"m{suffix}"
    path.write_bytes(bom + text.encode(encoding))
    report = home.ingest(path)
    assert report.counts.added == 2 and not report.skipped, report.skipped
    assert home.store.item(files[0].stem).title == "café crème"


def test_utf16_without_a_bom_is_refused_with_advice(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes("path\na.jpg\n".encode("utf-16-le"))
    with pytest.raises(BadManifestError, match=r"m.csv: contains NUL bytes.*UTF-16 without a byte-order mark.*UTF-8"):
        open_source(path)


def test_latin1_bytes_are_reported_by_line_and_column_and_the_rest_is_ingested(home, tmp_path):
    files = local_copies(tmp_path / "imgs", BANANA[:3])
    latin1 = tmp_path / "imgs" / "caf\xe9.jpg".encode("latin-1").decode("utf-8", "surrogateescape")
    shutil.copy(LIME[0], latin1)  # a file whose name is not UTF-8: it exists, but cannot be catalogued
    path = tmp_path / "m.csv"
    path.write_bytes(b"path,id,title\n"
                     + f"imgs/{files[0].name},a,ok\n".encode()
                     + f"imgs/{files[1].name},b,caf".encode() + b"\xe9\n"
                     + b"imgs/caf\xe9.jpg,c,ok\n"
                     + f"imgs/{files[2].name},d,fine\n".encode())
    report = home.ingest(path)
    assert report.counts.added == 2 and {home.store.item(k).title for k in "ad"} == {"ok", "fine"}
    found = reasons(report)
    assert found.keys() == {"m.csv line 3", "m.csv line 4"}
    assert "'title' is not valid UTF-8" in found["m.csv line 3"]
    assert "'path' is not valid UTF-8" in found["m.csv line 4"]


def test_undecodable_jsonl_lines_are_reported_by_line(home, tmp_path):
    files = local_copies(tmp_path / "imgs", BANANA[:2])
    path = tmp_path / "m.jsonl"
    path.write_bytes(json.dumps({"path": f"imgs/{files[0].name}"}).encode() + b"\n"
                     + b'{"path": "imgs/x.jpg", "title": "caf\xe9"}\n'
                     + b"\xff\xfe not json at all\n"
                     + json.dumps({"path": f"imgs/{files[1].name}"}).encode() + b"\n")
    report = home.ingest(path)
    assert report.counts.added == 2
    found = reasons(report)
    assert "'title' is not valid UTF-8" in found["m.jsonl line 2"] and "not valid JSON" in found["m.jsonl line 3"]


def test_a_damaged_utf16_file_keeps_the_rows_before_the_damage(home, tmp_path):
    files = local_copies(tmp_path / "imgs", BANANA[:2])
    text = "path\n" + "".join(f"imgs/{f.name}\n" for f in files)
    path = tmp_path / "m.csv"
    path.write_bytes(text.encode("utf-16") + "imgs/x.jpg\n".encode("utf-16-le")[:-1])  # a cut-off last character
    report = home.ingest(path)
    assert report.counts.added == 2
    (problem,) = report.skipped
    assert problem.where == "m.csv after line 3" and "not valid utf-16 text" in problem.reason


def test_overlong_jsonl_lines_are_skipped_without_reading_them_whole(home, tmp_path, monkeypatch):
    import viscover.catalog.tables as tables

    monkeypatch.setattr(tables, "MAX_LINE_CHARS", 1000)
    files = local_copies(tmp_path / "imgs", BANANA[:2])
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"path": f"imgs/{files[0].name}", "description": "x" * 5000}) + "\n"
                    + json.dumps({"path": f"imgs/{files[1].name}"}) + "\n")
    report = home.ingest(path)
    assert report.counts.added == 1 and home.store.item(f"imgs/{files[1].name}")
    assert reasons(report) == {"m.jsonl line 1": "line longer than 1,000 characters"}


# ---- duplicate ids ---------------------------------------------------------------------------------------------
def test_duplicate_ids_keep_the_first_row_and_name_both_lines(home, tmp_path):
    a, b, c = local_copies(tmp_path / "imgs", BANANA[:3])
    rows = [{"path": f"imgs/{a.name}", "id": "x"}, {"path": f"imgs/{b.name}", "id": "y"},
            {"path": f"imgs/{a.name}", "id": "x"},  # the same image again: silently fine
            {"path": f"imgs/{c.name}", "id": "x"}, {"path": f"imgs/{b.name}", "id": "x"}]
    report = home.ingest(write_csv(rows, tmp_path / "m.csv"))
    assert (report.counts.added, report.repeated) == (2, 1)
    found = reasons(report)
    assert found.keys() == {"m.csv line 5", "m.csv line 6"}
    for reason in found.values():
        assert "id 'x' was already used by m.csv line 2 for a different image (the first one is kept)" in reason
    assert home.store.item("x").source == str(a)


# ---- ids the API could not address ----------------------------------------------------------------------------
CONTROL = "contains a control character ({}); ids are used in URLs: give one without line breaks, tabs or other " \
          "control characters"
TOO_LONG = "characters long, over the limit of 2,000 (ids are used in URLs); give a shorter id"


def test_ids_with_control_characters_or_over_2000_characters_are_refused_per_row(home, tmp_path):
    """Such ids could be ingested but then not fetched, searched or deleted through /api/items/{id} or ?item=:
    each row is skipped with the reason and the rest are ingested."""
    imgs = local_copies(tmp_path / "imgs", BANANA[:6])
    ids = ["two\nlines", "tab\there", "bell\x07", "del\x7f", "x" * 2001, "y" * 2000]
    rows = [{"path": f"imgs/{img.name}", "id": key} for img, key in zip(imgs, ids)]
    report = home.ingest(write_csv(rows, tmp_path / "m.csv"))
    assert report.counts.added == 1 and home.store.item("y" * 2000)  # exactly 2,000 characters is fine
    found = sorted(p.reason for p in report.skipped)
    assert len(found) == 5, found
    for key, char in [("two\nlines", "U+000A"), ("tab\there", "U+0009"), ("bell\x07", "U+0007"),
                      ("del\x7f", "U+007F")]:
        assert f"id {key!r} " + CONTROL.format(char) in found, found
    assert any(r.startswith(f"id {'x' * 40!r}... is 2,001 " + TOO_LONG) for r in found), found


def test_a_folder_file_whose_name_makes_an_unusable_id_is_skipped(home, tmp_path):
    folder = tmp_path / "photos"
    good, bad = local_copies(folder, BANANA[:2])
    bad.rename(folder / "line\nbreak.jpg")
    report = home.ingest(folder)
    assert report.counts.added == 1 and home.store.item(good.name)
    assert [p.reason for p in report.skipped] == [f"id {'line' + chr(10) + 'break.jpg'!r} " + CONTROL.format("U+000A")]


# ---- paths escaping the manifest's folder ----------------------------------------------------------------------
@pytest.fixture()
def escaping(tmp_path) -> Path:
    """A manifest in tmp/manifests with one path inside its folder and four leading out of it."""
    folder = tmp_path / "manifests"
    inside, = local_copies(folder / "imgs", BANANA[:1])
    outside, = local_copies(tmp_path / "elsewhere", BANANA[1:2])
    (folder / "imgs" / "link.jpg").symlink_to(LIME[0])
    rows = [{"path": f"imgs/{inside.name}", "id": "inside"},
            {"path": f"../elsewhere/{outside.name}", "id": "dotdot"},
            {"path": str(LIME[1]), "id": "absolute"},
            {"path": "imgs/link.jpg", "id": "symlink"},
            {"path": "imgs/../../elsewhere/" + outside.name, "id": "sneaky"}]
    return write_csv(rows, folder / "m.csv")


def test_paths_leading_out_of_the_manifest_folder_are_refused(home, escaping):
    report = home.ingest(escaping)
    assert report.counts.added == 1 and home.store.item("inside")
    found = reasons(report)
    assert found.keys() == {f"m.csv line {n}" for n in (3, 4, 5, 6)}
    folder = escaping.parent.resolve()
    for reason in found.values():
        assert f"outside the manifest folder {folder}" in reason
        assert "--image-root" not in reason  # a CLI option: the CLI adds it, a Python caller or the server does not
    assert {p.remedy for p in report.skipped} == {Remedy("allow-image-root")}
    shown = report.to_dict(hint=cli_hint)["problems"]
    assert all(p.endswith("; allow it with --image-root DIR or the image_roots setting") for p in shown)
    assert f"leads to {LIME[1].resolve()}" in found["m.csv line 4"]
    assert f"leads through a symbolic link to {LIME[0].resolve()}" in found["m.csv line 5"]


@pytest.mark.parametrize("how", ["argument", "setting", "cli"])
def test_allowed_roots_let_those_paths_in(tmp_path, escaping, how):
    roots = [SHARED, tmp_path / "elsewhere"]
    if how == "cli":
        args = ["ingest", str(escaping), "--home", str(tmp_path / "home"), "--json"]
        result = CliRunner().invoke(app, args + [a for r in roots for a in ("--image-root", str(r))])
        assert result.exit_code == 0, result.output
        (out,) = json.loads(result.stdout)
        assert (out["added"], out["skipped"]) == (5, 0), out
        return
    settings = Settings(workers=1, image_roots=",".join(map(str, roots)) if how == "setting" else "")
    with Engine(tmp_path / "home", settings) as engine:
        report = engine.ingest(escaping, image_roots=roots if how == "argument" else [])
    assert report.counts.added == 5 and not report.skipped, report.skipped


def test_an_allowed_root_does_not_open_everything(home, tmp_path, escaping):
    report = home.ingest(escaping, image_roots=[tmp_path / "elsewhere"])
    assert report.counts.added == 3  # inside, dotdot, sneaky
    assert {p.where for p in report.skipped} == {"m.csv line 4", "m.csv line 5"}  # the shared photos
    assert all("or the allowed roots" in p.reason for p in report.skipped)


def test_folders_do_not_follow_links_out_of_themselves(home, tmp_path):
    folder = tmp_path / "photos"
    kept, = local_copies(folder, BANANA[:1])
    (folder / "inner-link.jpg").symlink_to(kept)  # stays inside: fine
    (folder / "outer-link.jpg").symlink_to(LIME[0])  # leads out: refused
    (folder / "linked-folder").symlink_to(GROCERY / "train/Fruit/Lime", target_is_directory=True)  # not entered
    report = home.ingest(folder)
    assert report.rows == 3 and report.counts.added == 2
    (problem,) = report.skipped
    assert problem.where.endswith("outer-link.jpg") and "symbolic link to" in problem.reason
    assert f"outside the folder {folder.resolve()}" in problem.reason


# ---- enormous manifests ----------------------------------------------------------------------------------------
MEMORY_PROBE = r"""
import json, resource, sys
from pathlib import Path
from viscover import Engine, Settings

work, real = Path(sys.argv[1]), sys.argv[2].split(",")

def manifest(name, n):
    path = work / name
    with open(path, "w") as f:  # written line by line: the test itself never holds the rows either
        f.write("path,id,title\n")
        for r in real:
            f.write(f"{r},{Path(r).stem},real photo\n")
        for i in range(n):
            f.write(f"missing/{i}.jpg,row-{i},a title long enough to take some memory {i}\n")
    return path

peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with Engine(work / "home", Settings(workers=1, image_roots=str(Path(real[0]).parent))) as engine:
    added = engine.ingest(manifest("small.csv", int(sys.argv[3]))).counts.added  # the report is dropped
    after_small = peak()
    big = engine.ingest(manifest("big.csv", int(sys.argv[4])))
    after_big = peak()
print(json.dumps({"growth": after_big - after_small, "peak": after_big, "rows": big.rows,
                  "skipped": big.skipped_total, "listed": len(big.skipped), "added": added,
                  "unchanged": big.counts.unchanged, "size": (work / "big.csv").stat().st_size}))
"""


def test_an_enormous_manifest_is_streamed_in_bounded_memory(tmp_path):
    """Ingesting 10x more rows barely raises the process's peak memory: rows are streamed and problems past
    MAX_PROBLEMS are only counted. Measured: about 6 MB growth; keeping every problem instead grows it by about
    60 MB, and holding the rows themselves would cost more still."""
    small, big = 20_000, 200_000
    real = [str(f) for f in BANANA[:3]]
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tmp_path), ",".join(real), str(small), str(big)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["rows"], out["skipped"], out["listed"]) == (big + 3, big, MAX_PROBLEMS)
    assert out["added"] == 3 and out["unchanged"] == 3  # the real photos in both
    mb = 1024 * 1024
    assert out["growth"] < 20 * mb, f"peak memory grew {out['growth'] / mb:.1f} MB for {big:,} rows"


# ---- URLs: the SSRF guard --------------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    """/img/N: a real photo; /to?url=U: a redirect to U; /loop: a redirect to itself."""

    def do_GET(self):  # noqa: N802 (the http.server API)
        url = urlparse(self.path)
        if url.path.startswith("/img/"):
            data = BANANA[int(url.path.rsplit("/", 1)[1])].read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        target = {"/to": (parse_qs(url.query).get("url") or [""])[0], "/loop": "/loop"}.get(url.path)
        if target is None:
            self.send_error(404)
            return
        self.send_response(302)
        self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def fetch(url: str, allow: str = "") -> bytes:
    return read_image_bytes(url, max_bytes=10_000_000, timeout=3, url_allow_hosts=allow)


@pytest.mark.parametrize("url,kind", [
    ("http://127.0.0.1/a.jpg", "loopback"),
    ("http://10.20.30.40/a.jpg", "private"),
    ("http://192.168.1.1/a.jpg", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]/a.jpg", "loopback"),
    ("http://[fe80::1]/a.jpg", "link-local"),
    ("http://0.0.0.0/a.jpg", "unspecified"),
    ("http://224.0.0.1/a.jpg", "multicast"),
    ("http://localhost/a.jpg", "loopback"),  # a host name resolving to a loopback address
    ("http://2130706433/a.jpg", "loopback"),  # 127.0.0.1 spelled as one number
    ("http://[::ffff:10.0.0.1]/a.jpg", "private: it embeds IPv4 10.0.0.1"),  # IPv4-mapped
])
def test_urls_to_non_public_addresses_are_refused_by_default(url, kind):
    with pytest.raises(BadImageError) as error:
        fetch(url)
    message = str(error.value)
    assert message.startswith(f"{url}: refused: host ") and f"is not a public internet address ({kind})" in message
    assert "url_allow_hosts" in message


def test_only_http_and_https_are_fetched():
    for url in ("file:///etc/passwd", "ftp://example.com/a.jpg", "gopher://127.0.0.1:70/"):
        with pytest.raises(BadImageError, match="only http and https"):
            fetch(url)


@pytest.mark.parametrize("allow", ["127.0.0.1", "127.0.0.0/8", "localhost, 10.0.0.0/8", "*"])
def test_the_allow_list_lets_a_loopback_server_through(server, allow):
    url = server.replace("127.0.0.1", "localhost") if "localhost" in allow else server
    assert fetch(f"{url}/img/0", allow) == BANANA[0].read_bytes()


def test_allow_list_parsing():
    allow = parse_allow_list(" Example.COM., 10.1.0.0/16 ,::1, 192.168.0.7 ")
    assert allow.hosts == {"example.com"} and not allow.everything
    assert [str(n) for n in allow.networks] == ["10.1.0.0/16", "::1/128", "192.168.0.7/32"]
    assert parse_allow_list("").networks == () and parse_allow_list("a,*").everything


def test_every_redirect_hop_is_checked(server):
    allow = "127.0.0.1"  # the test server is allowed; where it redirects to must be checked again
    port = server.rsplit(":", 1)[1]
    assert fetch(f"{server}/to?url=/to%3Furl%3D/img/1", allow) == BANANA[1].read_bytes()  # two allowed hops
    for target, reason in [("http://169.254.169.254/latest/meta-data/", "(link-local)"),
                           ("http://10.9.8.7/a.jpg", "(private)"),
                           (f"http://[::1]:{port}/img/0", "(loopback)"),
                           (f"http://localhost:{port}/img/0", None),  # resolves to the allowed 127.0.0.1
                           ("file:///etc/passwd", "only http and https")]:
        url = f"{server}/to?url={target}"
        if reason is None:
            assert fetch(url, allow) == BANANA[0].read_bytes()
            continue
        with pytest.raises(BadImageError) as error:
            fetch(url, allow)
        assert str(error.value).startswith(f"{url} (redirected to ") and reason in str(error.value)
    with pytest.raises(BadImageError, match=r"/loop: more than 5 redirects"):
        fetch(f"{server}/loop", allow)


def test_ingest_refuses_private_urls_unless_allowed(tmp_path, server):
    rows = [{"path": f"{server}/img/{i}", "id": f"u{i}"} for i in range(2)]
    manifest = write_csv(rows, tmp_path / "m.csv")
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        report = engine.ingest(manifest)
        assert report.counts.added == 0 and len(report.skipped) == 2
        assert all("refused: host 127.0.0.1 is not a public internet address" in p.reason for p in report.skipped)
    with Engine(tmp_path / "home", Settings(workers=1, url_allow_hosts="127.0.0.1")) as engine:
        assert engine.ingest(manifest).counts.added == 2
        engine.index()
        assert engine.search_image(f"{server}/img/0", k=1)[0].item.key == "u0"
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:  # search by URL is guarded too
        with pytest.raises(BadImageError, match="refused: host 127.0.0.1"):
            engine.search_image(f"{server}/img/0")
