"""Commands that fill and describe a catalogue: ingest, index, remove, info, engagement logs, dataset manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from viscover.cli.hints import cli_hint
from viscover.cli.common import DEFAULT_HOME, DbOpt, HomeOpt, ModelOpt, fail, handle_errors, open_engine

commands = typer.Typer()
engagement = typer.Typer(help="Engagement logs: impressions of related items with clicks and saves.",
                         no_args_is_help=True)
datasets = typer.Typer(help="Write manifests for the public datasets used by the demo and benchmarks.",
                       no_args_is_help=True)


@commands.command()
@handle_errors
def ingest(
    sources: Annotated[list[Path], typer.Argument(help="Folders of images and/or manifest files "
                                                  "(.csv, .tsv, .jsonl, .parquet).")],
    label_from_dirs: Annotated[Optional[str], typer.Option(help="For folders: use each image's parent folder "
                                                           "name as its label for this TASK.", metavar="TASK")] = None,
    domain: Annotated[Optional[str], typer.Option(help="Domain for items that have none (e.g. photo, "
                                                  "catalog).")] = None,
    board: Annotated[Optional[str], typer.Option(help="For folders: put every image on this board.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="Reader/downloader threads.")] = None,
    image_root: Annotated[Optional[list[Path]], typer.Option(
        "--image-root", metavar="DIR", help="A folder outside the manifest's own that its paths may point into "
        "(repeatable; adds to the image_roots setting).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Add or update items from folders or manifests. Idempotent: re-running changes nothing.

    A manifest has a [bold]path[/] column (relative to the manifest, absolute, or an http(s) URL) and optional
    [bold]id, title, description, domain, split, boards[/] (';'-separated) and [bold]label.<task>[/] columns.
    A manifest with an [bold]id[/] column and no path column lists items without images (their vectors come
    from [bold]viscover ingest-vectors[/]).
    Local paths must lie inside the manifest's folder or an [bold]--image-root[/]; URLs must reach public
    addresses unless allowed by the url_allow_hosts setting. Bad rows and images are reported and skipped; the
    rest is ingested.
    """
    from viscover import BadManifestError
    from viscover.cli.render import print_ingest_report, rich_progress

    for s in sources:  # before the home is created: a mistyped folder must not leave an empty home behind
        if not s.expanduser().exists():
            raise BadManifestError(f"{s}: no such file or folder")
    with open_engine(home, db, create=True, ingest_threads=threads) as engine:
        reports = [engine.ingest(s, label_from_dirs=label_from_dirs, domain=domain, board=board,
                                 image_roots=image_root or [], progress=rich_progress) for s in sources]
    if json_out:
        print(json.dumps([r.to_dict(hint=cli_hint) for r in reports], indent=2))
    else:
        for r in reports:
            print_ingest_report(r)
    if all(r.rows == 0 for r in reports):
        fail("nothing to ingest: " + "; ".join(f"{r.source}: {r.note}" for r in reports))


@commands.command("ingest-vectors")
@handle_errors
def ingest_vectors(
    source: Annotated[Path, typer.Argument(help="A .parquet file (columns id, vector, optional model) or an .npy "
                                           "of vectors (N x dim) with --ids.")],
    ids: Annotated[Optional[Path], typer.Option(help="For an .npy: the item id of each row (.npy, .txt one id a "
                                                "line, or .csv with an id column).", metavar="FILE")] = None,
    model: ModelOpt = None,
    dim: Annotated[Optional[int], typer.Option(min=1, help="For a model viscover cannot run here (e.g. one run "
                                               "on a GPU cluster): the width of its vectors, given on its first "
                                               "import, which declares it.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Import embeddings computed elsewhere (e.g. on a GPU cluster) for items already in the catalogue.

    Each vector becomes the model's embedding of its item's image, as if `index` had computed it: run
    [bold]viscover index[/] next to index them (nothing is embedded again). Vectors must have the model's width;
    a [bold]model[/] column, when present, must name the same model. Rows with unknown ids, other widths,
    NaN/infinite values or no vector are reported and skipped; the rest is imported, a batch at a time.

    A [bold]--model[/] name viscover cannot run is declared by its first import with [bold]--dim[/]: `index
    --model NAME` and searches by item id then work without an encoder (searching by an image needs one).
    Items ingested from a manifest without a path column (ids alone) get their vectors this way.
    """
    from viscover.cli.render import print_vector_import_report, rich_progress

    with open_engine(home, db) as engine:
        report = engine.import_vectors(source, ids=ids, model=model, dim=dim, progress=rich_progress)
    if json_out:
        print(json.dumps(report.to_dict(hint=cli_hint), indent=2))
    else:
        print_vector_import_report(report)
    if report.rows and not report.imported:
        fail(f"{source}: no vector imported (every row was skipped)")


@commands.command()
@handle_errors
def index(
    model: ModelOpt = None,
    rebuild: Annotated[bool, typer.Option(help="Rebuild the vector index from stored embeddings.")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Embedding worker processes (default: one per core).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Images per inference call.")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Only show the index kind the catalogue gets (by size and "
                                       "memory_budget), with estimated RAM and disk; build nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Embed every image not yet embedded by the model, then update its vector index (float and binary).

    Resumable: embeddings are saved in shards as they are computed, so an interrupted run continues where it
    stopped. Items added or removed since the last run are added to or removed from the index without a rebuild.
    """
    from viscover.cli.render import print_index_report, rich_progress

    if plan:
        from viscover.cli.render import print_index_plan

        with open_engine(home, db) as engine:
            chosen = engine.index_plan(model)
        print(json.dumps(chosen.to_dict(), indent=2)) if json_out else print_index_plan(chosen)
        return
    with open_engine(home, db, workers=workers, batch_size=batch_size) as engine:
        report = engine.index(model, rebuild=rebuild, progress=rich_progress)
    if json_out:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print_index_report(report)


@commands.command()
@handle_errors
def remove(
    ids: Annotated[list[str], typer.Argument(help="Item ids to delete.")],
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Delete items from the catalogue and from every vector index (no rebuild needed)."""
    with open_engine(home, db) as engine:
        unknown = engine.remove(ids)
    removed = len(ids) - len(unknown)
    print(f"removed {removed} item(s)")
    if unknown:
        fail(f"unknown item id(s): {', '.join(unknown[:10])}")


@commands.command()
@handle_errors
def items(
    text: Annotated[Optional[str], typer.Argument(help="Only items whose id or title contains TEXT "
                                                  "(case-insensitive).")] = None,
    label: Annotated[Optional[list[str]], typer.Option(help="Only items with this label: TASK=LABEL "
                                                       "(repeatable).")] = None,
    domain: Annotated[Optional[str], typer.Option(help="Only items of this domain.")] = None,
    board: Annotated[Optional[str], typer.Option(help="Only items on this board.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="Items to show.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Items to skip (for the next page).")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the items as JSON.")] = False,
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """List item ids with their titles and labels, in ingest order: all, or those matching TEXT and the filters."""
    from viscover import Filters
    from viscover.cli.render import print_items

    filters = Filters.parse(label or [], domain, board, text)
    with open_engine(home, db) as engine:
        found, total = engine.items(filters, offset=offset, limit=limit)
    if json_out:
        print(json.dumps({"total": total, "offset": offset, "items": [i.to_dict() for i in found]}, indent=2))
    else:
        print_items(found, total, offset)


@commands.command()
@handle_errors
def info(
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    settings: Annotated[bool, typer.Option("--settings", help="List every setting with its default and "
                                           "meaning.")] = False,
    models: Annotated[bool, typer.Option("--models", help="List the embedding model names accepted.")] = False,
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Show what the catalogue holds: items, labels per task, domains, boards, embeddings and indexes."""
    from viscover.cli.render import print_info, print_models, print_settings

    if settings or models:
        if settings:
            print_settings()
        if models:
            print_models()
        return
    with open_engine(home, db) as engine:
        data = engine.info()
    if json_out:
        print(json.dumps(data, indent=2, default=str))
    else:
        print_info(data)


@engagement.command("ingest")
@handle_errors
def engagement_ingest(
    log: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet with columns query, item, position and "
                                        "optional clicked, saved, user, timestamp, source ('random' marks "
                                        "randomly ordered traffic).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Add an engagement log to the catalogue; bad rows are reported and skipped."""
    from viscover.cli.render import problems, console

    with open_engine(home, db) as engine:
        report = engine.ingest_engagement(log)
    data = report.to_dict()
    if json_out:
        print(json.dumps(data, indent=2))
        return
    console.print(f"{log}: {data.get('rows', 0)} rows, {data.get('added', 0)} impressions added, "
                  f"{len(report.skipped)} skipped", highlight=False)
    problems(report.skipped, "rows")


@datasets.command("grocery")
@handle_errors
def datasets_grocery(
    root: Annotated[Path, typer.Argument(help="The Grocery Store Dataset folder (with train.txt, classes.csv).")],
    out: Annotated[Path, typer.Argument(help="Manifest to write (.csv, .jsonl or .parquet).")],
) -> None:
    """Grocery photos (domain photo, split train/val) and one catalogue image per product (domain catalog),
    with label.product and label.category."""
    from viscover import grocery_rows, write_manifest

    n = write_manifest(grocery_rows(root), out)
    print(f"wrote {n} rows to {out}")


@datasets.command("clothing")
@handle_errors
def datasets_clothing(
    root: Annotated[Path, typer.Argument(help="The clothing dataset folder (with images.csv, images/).")],
    out: Annotated[Path, typer.Argument(help="Manifest to write (.csv, .jsonl or .parquet).")],
) -> None:
    """Clothing photos with label.category, each contributor's images as one board, and a fixed split holding
    out 20% of contributors (split val)."""
    from viscover import clothing_rows, write_manifest

    n = write_manifest(clothing_rows(root), out)
    print(f"wrote {n} rows to {out}")
