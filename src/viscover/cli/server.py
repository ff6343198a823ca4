"""`viscover serve`: the web UI and JSON API over one catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from viscover import BadRequestError
from viscover.cli.common import DEFAULT_HOME, DbOpt, HomeOpt, handle_errors, open_engine

commands = typer.Typer()


@commands.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[Optional[str], typer.Option(help="Key that write requests must send in X-API-Key "
                                                   "(default: the api_key setting or VISCOVER_API_KEY, else a "
                                                   "new random key, printed). A key given here is visible to "
                                                   "other users in ps: prefer --api-key-file or "
                                                   "VISCOVER_API_KEY.")] = None,
    api_key_file: Annotated[Optional[Path], typer.Option(help="Read the write key from this file (its first "
                                                         "line), keeping it out of the process list.")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Accept writes without a key (local use "
                                          "only).")] = False,
    detector: Annotated[Optional[str], typer.Option(help="Object detector ONNX file for shop-the-look "
                                                    "(default: the detector setting).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Server processes on the port (default: the serve_workers "
                                                   "setting; 0: one per usable core; 1: one process).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Serve the web UI and the JSON API (documented at /docs) over the catalogue."""
    from viscover.serve.run import limit_threads

    limit_threads()  # before FAISS and ONNX Runtime load
    from viscover.cli.render import console
    from viscover.serve.run import options_from, serving_settings
    from viscover.serve.run import serve as run_server

    if api_key_file is not None:
        if api_key is not None:
            raise BadRequestError("give --api-key or --api-key-file, not both")
        api_key = read_key_file(api_key_file)
    engine = open_engine(home, db, detector=detector, adjust=serving_settings)
    options = options_from(engine.settings, api_key=api_key, no_auth=no_auth or None, workers=workers)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    processes = f", {options.workers} processes" if options.workers > 1 else ""
    console.print(f"viscover serving [bold]{engine.home.root}[/] at [bold]http://{shown}:{port}/[/] "
                  f"(API docs: http://{shown}:{port}/docs{processes})", highlight=False)
    if options.no_auth:
        console.print("[yellow]writes are open to anyone who can reach this address (--no-auth)[/]")
    elif not (api_key or engine.settings.api_key):
        console.print(f"API key for writes (X-API-Key header): [bold]{options.api_key}[/] "
                      "(set api_key in viscover.toml to keep one)", highlight=False)
    try:
        run_server(engine, options, host=host, port=port, log_level=log_level, db=db)
    finally:
        engine.close()


def read_key_file(path: Path) -> str:
    """The key in the first line of `path`, without surrounding spaces or the newline `echo KEY > file` adds."""
    try:
        with open(path, encoding="utf-8") as f:
            key = f.readline().strip()
    except FileNotFoundError:
        raise BadRequestError(f"--api-key-file {path}: file not found; write the key into it first") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadRequestError(f"--api-key-file {path}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
    if not key:
        raise BadRequestError(f"--api-key-file {path}: the file is empty; its first line must be the key")
    return key
