"""Image URLs served one byte at a time: each download is cut off at url_timeout (the whole download, not each
read), the server downloads only url_downloads at once (more are answered 503 at once), and health, readiness
and searches by id keep answering while slow downloads wait. A real uvicorn server with 2 request threads."""

from __future__ import annotations

import http.server
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import needs_data
from live_server import LiveServer

pytestmark = needs_data
PROMPT = 10.0  # generous: these answers must not wait for the slow downloads (which would take for ever)


class Trickle:
    """An HTTP server on loopback that answers every GET with one byte every 0.3 s, until stopped."""

    def __init__(self):
        self.stop, self.connections = threading.Event(), 0
        trickle = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                trickle.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    while not trickle.stop.is_set():
                        self.wfile.write(b"\xff")
                        trickle.stop.wait(0.3)
                except OSError:  # the client gave up: what the test wants
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/slow.jpg"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, connections: int, timeout: float = PROMPT) -> None:
        end = time.monotonic() + timeout
        while self.connections < connections and time.monotonic() < end:
            time.sleep(0.05)
        assert self.connections >= connections, f"only {self.connections} downloads started"

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def trickle():
    server = Trickle()
    yield server
    server.close()


def _slow_searches(server: LiveServer, url: str, n: int) -> tuple[ThreadPoolExecutor, list]:
    import httpx

    pool = ThreadPoolExecutor(n)
    futures = [pool.submit(httpx.get, f"{server.base}/api/search", params={"url": url, "k": 3}, timeout=60)
               for _ in range(n)]
    return pool, futures


def test_slow_downloads_leave_health_readiness_and_searches_by_id_answering(indexed_home, trickle):
    import httpx

    server = LiveServer(indexed_home, request_threads=2, url_timeout=3.0, url_allow_hosts="127.0.0.1")
    try:
        first = httpx.get(f"{server.base}/api/items", params={"limit": 1}, timeout=PROMPT).json()["items"][0]
        pool, slow = _slow_searches(server, trickle.url, 4)  # twice as many as there are request threads
        trickle.wait_for(4)
        assert httpx.get(f"{server.base}/api/health", timeout=PROMPT).json() == {"status": "ok"}
        assert httpx.get(f"{server.base}/api/ready", timeout=PROMPT).json()["ready"] is True
        by_id = httpx.get(f"{server.base}/api/search", params={"item": first["id"], "k": 3}, timeout=PROMPT)
        assert by_id.status_code == 200 and by_id.json()["results"], by_id.text
        assert httpx.get(f"{server.base}/metrics", timeout=PROMPT).status_code == 200
        for future in slow:  # each download was cut off at url_timeout, the whole download's deadline
            response = future.result(timeout=60)
            assert response.status_code == 422, response.text
            body = response.json()
            assert body["error"] == "bad_image", body
            assert body["detail"] == (f"{trickle.url}: the download took longer than 3 s (url_timeout); "
                                      "give a faster image URL or raise url_timeout"), body
        pool.shutdown()
    finally:
        server.close()


def test_downloads_beyond_url_downloads_are_refused_at_once(indexed_home, trickle):
    server = LiveServer(indexed_home, request_threads=2, url_timeout=3.0, url_downloads=2,
                    url_allow_hosts="127.0.0.1")
    try:
        pool, slow = _slow_searches(server, trickle.url, 5)
        responses = [f.result(timeout=60) for f in slow]
        pool.shutdown()
        refused = [r for r in responses if r.status_code == 503]
        assert sorted(r.status_code for r in responses) == [422, 422, 503, 503, 503], [r.text for r in responses]
        assert trickle.connections == 2  # the refused ones never reached the image's server
        for r in refused:
            assert r.json() == {"error": "busy", "detail": "2 image downloads are in progress, the most this "
                                "server makes at once (url_downloads); retry in a few seconds"}
            assert r.headers["retry-after"] == "3"
    finally:
        server.close()


def test_a_trickling_url_is_cut_off_at_url_timeout_in_ingest_too(tmp_path, trickle):
    """Ingest (and the CLI and library) read URLs without the server: the same deadline holds there, and the row
    is skipped with the reason."""
    from conftest import write_csv
    from viscover import Engine, Settings

    manifest = write_csv([{"path": trickle.url, "id": "slow"}], tmp_path / "slow.csv")
    with Engine(tmp_path / "home", Settings(workers=1, url_timeout=2.0, url_allow_hosts="127.0.0.1"),
                create=True) as engine:
        reports: list = []
        thread = threading.Thread(target=lambda: reports.append(engine.ingest(manifest)), daemon=True)
        thread.start()
        thread.join(30)  # without a deadline it would trickle on until the test server stops
        assert not thread.is_alive(), "the download was not cut off"
        assert [p.reason for p in reports[0].skipped] == [
            f"{trickle.url}: the download took longer than 2 s (url_timeout); give a faster image URL or raise "
            "url_timeout"]
