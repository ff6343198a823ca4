"""`viscover serve`: the web UI and JSON API over one catalogue."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from viscover.cli.common import DEFAULT_HOME, DbOpt, HomeOpt, handle_errors, open_engine

commands = typer.Typer()


@commands.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[Optional[str], typer.Option(help="Key that write requests must send in X-API-Key "
                                                   "(default: the api_key setting, else a new random key, "
                                                   "printed).")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Accept writes without a key (local use "
                                          "only).")] = False,
    detector: Annotated[Optional[str], typer.Option(help="Object detector ONNX file for shop-the-look "
                                                    "(default: the detector setting).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Serve the web UI and the JSON API (documented at /docs) over the catalogue."""
    from viscover.serve.run import limit_threads

    limit_threads()  # before FAISS and ONNX Runtime load
    from viscover.cli.render import console
    from viscover.serve.run import options_from
    from viscover.serve.run import serve as run_server

    engine = open_engine(home, db, detector=detector)
    options = options_from(engine.settings, api_key=api_key, no_auth=no_auth or None)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    console.print(f"viscover serving [bold]{engine.home.root}[/] at [bold]http://{shown}:{port}/[/] "
                  f"(API docs: http://{shown}:{port}/docs)", highlight=False)
    if options.no_auth:
        console.print("[yellow]writes are open to anyone who can reach this address (--no-auth)[/]")
    elif not (api_key or engine.settings.api_key):
        console.print(f"API key for writes (X-API-Key header): [bold]{options.api_key}[/] "
                      "(set api_key in viscover.toml to keep one)", highlight=False)
    try:
        run_server(engine, options, host=host, port=port, log_level=log_level)
    finally:
        engine.close()
