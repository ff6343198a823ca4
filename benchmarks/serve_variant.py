"""Serve a home like `viscover serve --no-auth`, but on a chosen uvicorn event loop and HTTP parser: what
benchmarks/serve_load.py measures the server choice with.

    python benchmarks/serve_variant.py --home DIR --port N --loop asyncio|uvloop --http h11|httptools
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--http", default="auto")
    args = parser.parse_args()
    import uvicorn

    from viscover import Engine, Settings
    from viscover.serve.app import create_app
    from viscover.serve.run import limit_threads, options_from, serving_settings

    limit_threads()
    settings = serving_settings(Settings.load(args.home))
    engine = Engine(args.home, settings)
    app = create_app(engine, options_from(settings, no_auth=True))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", timeout_keep_alive=5,
                limit_concurrency=256, server_header=False, loop=args.loop, http=args.http)


if __name__ == "__main__":
    main()
