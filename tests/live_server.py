"""viscover's app under a real uvicorn in a thread: for what only a real server shows (request threads,
chunked uploads over a socket, slow clients)."""

from __future__ import annotations

import threading
import time


class LiveServer:
    """The app over an Engine on `home`, its options made from the settings as `viscover serve` makes them."""

    def __init__(self, home, api_key: str = "live-key", **settings):
        import uvicorn

        from viscover import Engine, Settings
        from viscover.serve import create_app
        from viscover.serve.run import options_from

        self.engine = Engine(home, Settings(workers=1, **settings))
        self.app = create_app(self.engine, options_from(self.engine.settings, api_key=api_key, workers=1))
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        end = time.monotonic() + 60
        while not self.server.started and time.monotonic() < end:
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start"
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.engine.close()

    def __enter__(self) -> "LiveServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
