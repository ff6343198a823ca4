"""The `viscover` command: a thin shell over `viscover.Engine`. It parses options, shows progress and tables,
and turns errors a user can cause into a one-line message (with what to run) and a non-zero exit status.
The commands live in modules by what they do: catalogue, discover, measure, server."""

from __future__ import annotations

import sys

import typer

from viscover.cli import catalogue, discover, measure, server

app = typer.Typer(
    name="viscover",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        from viscover import __version__

        typer.echo(f"viscover {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Show the version and exit.")) -> None:
    """Visual discovery engine: ingest a catalogue of images, index it, search it by image, item or crop, and
    measure retrieval quality."""


app.add_typer(catalogue.commands)
app.add_typer(discover.commands)
app.add_typer(measure.commands)
app.add_typer(server.commands)
app.add_typer(catalogue.engagement, name="engagement")
app.add_typer(measure.rank, name="rank")
app.add_typer(catalogue.datasets, name="datasets")


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # e.g. `viscover search ... | head`
        sys.stderr.close()


if __name__ == "__main__":
    main()
