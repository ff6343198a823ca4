"""What every command shares: the home/db/model options, opening the Engine, one-line errors with the CLI's hint
of what to run, and JSON reports."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer

from viscover import DiskFullError, Settings, ViscoverError
from viscover.cli.hints import with_hint

if TYPE_CHECKING:
    from viscover import Engine

HomeOpt = Annotated[Path, typer.Option("--home", envvar="VISCOVER_HOME",
                                       help="Catalogue home folder (database, embeddings, indexes).")]
DbOpt = Annotated[Optional[str], typer.Option("--db", envvar="VISCOVER_DB", help="Database URL instead of "
                                              "SQLite in the home, e.g. postgresql+psycopg://user@host/db.")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="Embedding model: efficientnet-lite0 "
                                                 "(default), efficientnet-lite1/2, onnx:PATH, hf:NAME_OR_DIR, "
                                                 "or a model folder.")]
DEFAULT_HOME = Path("viscover-home")


def fail(message: str, code: int = 1) -> None:
    """Print one error line on stderr and exit with `code`."""
    from viscover.cli.render import err_console

    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def show_report(data: dict, json_path: Path | None, show: Callable[[], None]) -> None:
    """Evaluation output: JSON on stdout for `--json -`; else the table, and the JSON file when asked."""
    if json_path is not None and str(json_path) == "-":
        print(json.dumps(data, indent=2))
        return
    show()
    if json_path is not None:
        from viscover.cli.render import err_console

        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(data, indent=2) + "\n")
        err_console.print(f"wrote {json_path}")


def handle_errors(fn: Callable) -> Callable:
    """Show user-caused errors as one line with what to run (exit 1), a full disk among them (the Engine names
    the home; a file the command writes itself, e.g. a report, is named by the OSError); an interrupt exits 130
    keeping what was committed."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ViscoverError as e:
            fail(with_hint(e))
        except OSError as e:
            if (full := DiskFullError.from_os_error(e)) is None:
                raise
            fail(with_hint(full))
        except KeyboardInterrupt:
            fail("interrupted; everything finished so far is saved, run the command again to resume", 130)

    return wrapper


def open_engine(home: Path, db: str | None, create: bool = False,
                adjust: Callable[[Settings], Settings] | None = None, **overrides) -> "Engine":
    """The Engine of a home, with settings from its viscover.toml, the environment and the given options, then
    `adjust`ed (e.g. the server's defaults). Imported here, not at the top: `viscover --help` stays quick."""
    from viscover import Engine

    settings = Settings.load(home, overrides=overrides)
    if adjust is not None:
        settings = adjust(settings)
    return Engine(home, settings, db=db, create=create)
