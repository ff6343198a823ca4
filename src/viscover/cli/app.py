"""The `viscover` command: a thin shell over `viscover.Engine`. It parses options, shows progress and tables,
and turns errors a user can cause into a one-line message and a non-zero exit status."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from viscover.errors import BadRequestError, ViscoverError

app = typer.Typer(
    name="viscover",
    help="Visual discovery engine: ingest a catalogue of images, index it, search it by image, item or crop, "
         "and measure retrieval quality.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

HomeOpt = Annotated[Path, typer.Option("--home", envvar="VISCOVER_HOME",
                                       help="Catalogue home folder (database, embeddings, indexes).")]
DbOpt = Annotated[Optional[str], typer.Option("--db", envvar="VISCOVER_DB", help="Database URL instead of "
                                              "SQLite in the home, e.g. postgresql+psycopg://user@host/db.")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="Embedding model: efficientnet-lite0 "
                                                 "(default), efficientnet-lite1/2, onnx:PATH, hf:NAME_OR_DIR, "
                                                 "or a model folder.")]
DEFAULT_HOME = Path("viscover-home")


def _fail(message: str, code: int = 1) -> None:
    from viscover.cli.render import err_console

    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _report(data: dict, json_path: Path | None, show: Callable[[], None]) -> None:
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
    """Show user-caused errors as one line (exit 1); an interrupt exits 130 keeping what was committed."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ViscoverError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted; everything finished so far is saved, run the command again to resume", 130)

    return wrapper


def _engine(home: Path, db: str | None, create: bool = False, **overrides):
    from viscover.config import Settings
    from viscover.engine import Engine

    settings = Settings.load(home, overrides=overrides)
    return Engine(home, settings, db=db, create=create)


@app.command()
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
    Local paths must lie inside the manifest's folder or an [bold]--image-root[/]; URLs must reach public
    addresses unless allowed by the url_allow_hosts setting. Bad rows and images are reported and skipped; the
    rest is ingested.
    """
    from viscover.cli.render import print_ingest_report, rich_progress

    with _engine(home, db, create=True, ingest_threads=threads) as engine:
        reports = [engine.ingest(s, label_from_dirs=label_from_dirs, domain=domain, board=board,
                                 image_roots=image_root or [], progress=rich_progress) for s in sources]
    if json_out:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        for r in reports:
            print_ingest_report(r)


@app.command()
@handle_errors
def index(
    model: ModelOpt = None,
    rebuild: Annotated[bool, typer.Option(help="Rebuild the vector index from stored embeddings.")] = False,
    workers: Annotated[Optional[int], typer.Option(help="Embedding worker processes (default: one per core).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Images per inference call.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Embed every image not yet embedded by the model, then update its vector index (float and binary).

    Resumable: embeddings are saved in shards as they are computed, so an interrupted run continues where it
    stopped. Items added or removed since the last run are added to or removed from the index without a rebuild.
    """
    from viscover.cli.render import print_index_report, rich_progress

    with _engine(home, db, workers=workers, batch_size=batch_size) as engine:
        report = engine.index(model, rebuild=rebuild, progress=rich_progress)
    if json_out:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print_index_report(report)


@app.command()
@handle_errors
def search(
    image: Annotated[Optional[str], typer.Argument(help="Query image: a file path or an http(s) URL.")] = None,
    item: Annotated[Optional[str], typer.Option("--item", "-i", help="Query by a catalogue item id instead "
                                                "(\"more like this\").")] = None,
    crop: Annotated[Optional[str], typer.Option(help="Search by a region x,y,w,h (pixels) of the query image.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="Number of results.")] = 10,
    label: Annotated[Optional[list[str]], typer.Option(help="Only items with this label: TASK=LABEL "
                                                       "(repeatable).")] = None,
    domain: Annotated[Optional[str], typer.Option(help="Only items of this domain.")] = None,
    board: Annotated[Optional[str], typer.Option(help="Only items on this board.")] = None,
    binary: Annotated[bool, typer.Option(help="Search the binary (sign-bit) index, then re-rank by float.")] = False,
    collapse: Annotated[bool, typer.Option(help="Collapse near-duplicate results.")] = True,
    model: ModelOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Search the catalogue by an image (file or URL), by an item, or by a crop box of either."""
    from viscover.catalog.store import Filters
    from viscover.cli.render import print_hits
    from viscover.imaging import parse_crop

    if (image is None) == (item is None):
        raise BadRequestError("give exactly one query: an image path/URL argument, or --item ID")
    filters = Filters.parse(label or [], domain, board)
    box = parse_crop(crop) if crop else None
    with _engine(home, db) as engine:
        kwargs = dict(crop=box, k=k, filters=filters, binary=binary, collapse=collapse, model=model)
        hits = engine.search_item(item, **kwargs) if item else engine.search_image(image, **kwargs)
    if json_out:
        print(json.dumps([h.to_dict() for h in hits], indent=2))
    else:
        print_hits(hits, query=item or image, crop=box)


@app.command(name="eval")
@handle_errors
def eval_(
    manifest: Annotated[Path, typer.Argument(help="Labelled manifest (CSV, TSV, JSONL or Parquet).")],
    task: Annotated[str, typer.Option(help="Task whose labels define relevance (column label.<task>).")],
    query_domain: Annotated[Optional[str], typer.Option(help="Use only rows of this domain as queries.")] = None,
    gallery_domain: Annotated[Optional[str], typer.Option(help="Search only rows of this domain.")] = None,
    query_split: Annotated[Optional[str], typer.Option(help="Use only rows of this split as queries.")] = None,
    gallery_split: Annotated[Optional[str], typer.Option(help="Search only rows of this split.")] = None,
    model: ModelOpt = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON to this "
                                                      "file ('-' for standard output).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Embedding worker processes.")] = None,
) -> None:
    """Measure retrieval quality on a labelled manifest, for float and binary embeddings (no ingest needed).

    Queries are rows with a label for TASK (and the query domain); the gallery is all labelled rows (or those of
    the gallery domain); a query never retrieves itself. Reports Recall@1/5/10 and MAP@R.
    """
    from viscover.cli.render import print_eval, rich_progress
    from viscover.config import Settings
    from viscover.eval.retrieval import evaluate_manifest

    settings = Settings.load(None, overrides={"workers": workers})
    report = evaluate_manifest(manifest, task, model=model, query_domain=query_domain,
                               gallery_domain=gallery_domain, query_split=query_split, gallery_split=gallery_split,
                               settings=settings, progress=rich_progress)
    _report(report.to_dict(), json_path, lambda: print_eval(report))


@app.command()
@handle_errors
def related(
    item: Annotated[Optional[str], typer.Argument(help="The item to find related items for.")] = None,
    items: Annotated[Optional[str], typer.Option(help="A set of items instead, comma-separated (e.g. a user's "
                                                 "recent saves).")] = None,
    weights: Annotated[Optional[str], typer.Option(help="Comma-separated weights for --items.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="Number of results.")] = 10,
    domain: Annotated[Optional[str], typer.Option(help="Bias the walks toward items of this domain.")] = None,
    explain: Annotated[bool, typer.Option(help="Show each result's sources and key features.")] = False,
    model: ModelOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Items related to an item (or a set of items): Pixie random walks over the item-board graph, board
    co-occurrence and visual neighbours, blended by the learned ranker (or a heuristic without one)."""
    from viscover.cli.render import print_related

    if (item is None) == (items is None):
        raise BadRequestError("give exactly one query: an item id argument, or --items A,B,C")
    keys = [item] if item is not None else [x.strip() for x in items.split(",") if x.strip()]
    parsed = None
    if weights is not None:
        try:
            parsed = [float(x) for x in weights.split(",")]
        except ValueError:
            raise BadRequestError(f"--weights {weights!r}: expected comma-separated numbers") from None
    with _engine(home, db) as engine:
        hits = engine.related(keys, weights=parsed, k=k, domain=domain, model=model)
    if json_out:
        print(json.dumps([h.to_dict(explain) for h in hits], indent=2))
    else:
        print_related(hits, query=", ".join(keys), explain=explain)


@app.command(name="eval-related")
@handle_errors
def eval_related(
    manifest: Annotated[Path, typer.Argument(help="Manifest with a boards column.")],
    queries: Annotated[int, typer.Option(help="Items whose board membership is hidden and recovered.")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed (which items, which boards).")] = 0,
    prune_min_coherence: Annotated[float, typer.Option(help="Evaluate with boards below this coherence "
                                                       "pruned.")] = 0.0,
    prune_max_board: Annotated[int, typer.Option(help="Evaluate with boards above this size pruned.")] = 0,
    learned: Annotated[int, typer.Option(help="Also evaluate a ranker learned from this many other hidden "
                                         "memberships (0: skip).")] = 1000,
    model: ModelOpt = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON to this "
                                                      "file ('-' for standard output).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Embedding worker processes.")] = None,
) -> None:
    """Measure related items on a manifest with boards: hide one board membership per sampled item and check
    whether the item's related items contain its hidden board-mates (hit-rate@10/@50, MRR), for the blend and
    for Pixie, plain co-occurrence and visual similarity alone."""
    from viscover.cli.render import print_related_eval, rich_progress
    from viscover.config import Settings
    from viscover.eval.related_eval import evaluate_related
    from viscover.graph.prune import PruneParams

    settings = Settings.load(None, overrides={"workers": workers})
    result = evaluate_related(manifest, queries=queries, seed=seed, model=model, settings=settings,
                              progress=rich_progress, learned=learned,
                              prune=PruneParams(min_coherence=prune_min_coherence, max_board_size=prune_max_board))
    _report(result, json_path, lambda: print_related_eval(result))


def _train_help(name: str) -> str:
    from viscover.train.config import TrainConfig

    return TrainConfig.help(name)


@app.command()
@handle_errors
def train(
    manifests: Annotated[list[Path], typer.Argument(help="Labelled manifests to train from.")],
    task: Annotated[list[str], typer.Option("--task", "-t", help="A task to train (column label.<task>); "
                                            "repeat for several. Each gets its own NormSoftmax head.")],
    out: Annotated[Optional[Path], typer.Option(help=_train_help("out"))] = None,
    dim: Annotated[Optional[int], typer.Option(help=_train_help("dim"))] = None,
    epochs: Annotated[Optional[int], typer.Option(help=_train_help("epochs"))] = None,
    batch_size: Annotated[Optional[int], typer.Option(help=_train_help("batch_size"))] = None,
    per_class: Annotated[Optional[int], typer.Option(help=_train_help("per_class"))] = None,
    sampled_classes: Annotated[Optional[int], typer.Option(help=_train_help("sampled_classes"))] = None,
    temperature: Annotated[Optional[float], typer.Option(help=_train_help("temperature"))] = None,
    lr: Annotated[Optional[float], typer.Option(help=_train_help("lr"))] = None,
    views: Annotated[Optional[int], typer.Option(help=_train_help("views"))] = None,
    rotate_bits: Annotated[Optional[bool], typer.Option(help=_train_help("rotate_bits"))] = None,
    binary_weight: Annotated[Optional[float], typer.Option(help=_train_help("binary_weight"))] = None,
    finetune_blocks: Annotated[Optional[int], typer.Option(help=_train_help("finetune_blocks"))] = None,
    backbone: Annotated[Optional[str], typer.Option(help=_train_help("backbone"))] = None,
    val_split: Annotated[Optional[str], typer.Option(help=_train_help("val_split"))] = None,
    balance_domains: Annotated[Optional[bool], typer.Option(help=_train_help("balance_domains"))] = None,
    seed: Annotated[Optional[int], typer.Option(help=_train_help("seed"))] = None,
    workers: Annotated[Optional[int], typer.Option(help=_train_help("workers"))] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the checkpoint in --out if there is one.")] = False,
) -> None:
    """Train a unified embedding on labelled manifests: multi-task NormSoftmax, class-balanced batches mixing
    every (manifest, domain, task) stream, binarisable into bits.

    By default the trunk is frozen: its features are computed once per image and augmented view (cached in the
    user cache folder), then the embedding head trains in seconds per epoch. Shows per-epoch validation Recall@1
    (rows whose split is --val-split), saves a checkpoint every epoch, and writes --out as a model folder that
    --model takes everywhere. Unset options take the defaults shown by --help.
    """
    from viscover.cli.render import _problems, console, rich_progress
    from viscover.train.config import TrainConfig
    from viscover.train.loop import train as run_training

    given = {k: v for k, v in dict(out=out, dim=dim, epochs=epochs, batch_size=batch_size, per_class=per_class,
                                   sampled_classes=sampled_classes, temperature=temperature, lr=lr, views=views,
                                   rotate_bits=rotate_bits, binary_weight=binary_weight,
                                   finetune_blocks=finetune_blocks, backbone=backbone, val_split=val_split,
                                   balance_domains=balance_domains, seed=seed, workers=workers).items()
             if v is not None}
    if "out" in given:
        given["out"] = str(given["out"])
    config = TrainConfig.from_dict({"manifests": [str(m) for m in manifests], "tasks": list(task), **given})
    result = run_training(config, resume=resume, progress=rich_progress,
                          log=lambda message: console.print(message, highlight=False))
    _problems(result.problems, "images")
    console.print(f"model written to [bold]{result.out}[/] (report.json, curves.png); use it with "
                  f"--model {result.out}")


@app.command()
@handle_errors
def remove(
    ids: Annotated[list[str], typer.Argument(help="Item ids to delete.")],
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Delete items from the catalogue and from every vector index (no rebuild needed)."""
    with _engine(home, db) as engine:
        unknown = engine.remove(ids)
    removed = len(ids) - len(unknown)
    print(f"removed {removed} item(s)")
    if unknown:
        _fail(f"unknown item id(s): {', '.join(unknown[:10])}")


@app.command()
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
    with _engine(home, db) as engine:
        data = engine.info()
    if json_out:
        print(json.dumps(data, indent=2, default=str))
    else:
        print_info(data)


@app.command()
@handle_errors
def detect(
    image: Annotated[Optional[str], typer.Argument(help="A scene photo: file path or http(s) URL.")] = None,
    item: Annotated[Optional[str], typer.Option("--item", "-i", help="Use a catalogue item's image.")] = None,
    shop: Annotated[bool, typer.Option(help="Shop the look: also search the catalogue for each object.")] = False,
    k: Annotated[int, typer.Option("-k", "--k", help="Results per object with --shop.")] = 5,
    domain: Annotated[Optional[str], typer.Option(help="With --shop: only items of this domain.")] = None,
    min_score: Annotated[Optional[float], typer.Option(help="Keep objects scored at least this (default: the "
                                                       "detect_min_score setting).")] = None,
    detector: Annotated[Optional[str], typer.Option(help="Object detector ONNX file (default: the detector "
                                                    "setting).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Detect objects in a scene photo; with --shop, search the catalogue for each of them (shop the look)."""
    from viscover.catalog.store import Filters
    from viscover.cli.render import console

    if (image is None) == (item is None):
        raise BadRequestError("give exactly one scene: an image path/URL argument, or --item ID")
    with _engine(home, db, detector=detector) as engine:
        source = engine.store.item(item).uri if item else image
        if shop:
            scene = engine.shop_the_look(source, k=k, filters=Filters(domain=domain), min_score=min_score,
                                         exclude_item=item)
        else:
            scene = engine.detect(source, min_score=min_score)
    looks = [{**o.to_dict(), **({"results": [h.to_dict() for h in hits]} if shop else {})}
             for o, hits in zip(scene.objects, scene.hits or [[]] * len(scene.objects))]
    if json_out:
        print(json.dumps({"width": scene.width, "height": scene.height, "objects": looks}, indent=2))
        return
    console.print(f"{len(looks)} object(s) in {item or image} ({scene.width}x{scene.height})", highlight=False)
    for look in looks:
        x, y, w, h = look["box"]
        console.print(f"  [bold]{look['label']}[/] {look['score']:.2f}  box {x},{y},{w},{h}", highlight=False)
        for hit in look.get("results", []):
            console.print(f"      {hit['score']:.3f}  {hit['id']}", highlight=False, soft_wrap=True)


@app.command()
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

    engine = _engine(home, db, detector=detector)
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


engagement_app = typer.Typer(help="Engagement logs: impressions of related items with clicks and saves.",
                             no_args_is_help=True)
rank_app = typer.Typer(help="The learned ranker of related items.", no_args_is_help=True)
app.add_typer(engagement_app, name="engagement")
app.add_typer(rank_app, name="rank")


@engagement_app.command("ingest")
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
    from viscover.cli.render import _problems, console

    with _engine(home, db) as engine:
        report = engine.ingest_engagement(log)
    data = report.to_dict()
    if json_out:
        print(json.dumps(data, indent=2))
        return
    console.print(f"{log}: {data.get('rows', 0)} rows, {data.get('added', 0)} impressions added, "
                  f"{len(report.skipped)} skipped", highlight=False)
    _problems(report.skipped, "rows")


@rank_app.command("train")
@handle_errors
def rank_train(
    from_boards: Annotated[bool, typer.Option(help="Learn from hidden board memberships instead of the "
                                              "engagement log (for catalogues without one).")] = False,
    queries: Annotated[int, typer.Option(help="With --from-boards: memberships to hide and learn from.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    force: Annotated[bool, typer.Option(help="Save the ranker even if it does worse than the heuristic on "
                                        "held-out queries.")] = False,
    model: ModelOpt = None,
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Train the related-items ranker (LightGBM) and, if it beats the heuristic on held-out queries, save it in
    the home: `viscover related` then uses it. Prints the held-out metrics of both."""
    with _engine(home, db) as engine:
        report = engine.train_ranker(from_boards=from_boards, queries=queries, seed=seed, model=model, force=force)
    print(json.dumps(report, indent=2, default=float))


datasets_app = typer.Typer(help="Write manifests for the public datasets used by the demo and benchmarks.",
                           no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")


@datasets_app.command("grocery")
@handle_errors
def datasets_grocery(
    root: Annotated[Path, typer.Argument(help="The Grocery Store Dataset folder (with train.txt, classes.csv).")],
    out: Annotated[Path, typer.Argument(help="Manifest to write (.csv, .jsonl or .parquet).")],
) -> None:
    """Grocery photos (domain photo, split train/val) and one catalogue image per product (domain catalog),
    with label.product and label.category."""
    from viscover.datasets import grocery_rows, write_manifest

    n = write_manifest(grocery_rows(root), out)
    print(f"wrote {n} rows to {out}")


@datasets_app.command("clothing")
@handle_errors
def datasets_clothing(
    root: Annotated[Path, typer.Argument(help="The clothing dataset folder (with images.csv, images/).")],
    out: Annotated[Path, typer.Argument(help="Manifest to write (.csv, .jsonl or .parquet).")],
) -> None:
    """Clothing photos with label.category, each contributor's images as one board, and a fixed split holding
    out 20% of contributors (split val)."""
    from viscover.datasets import clothing_rows, write_manifest

    n = write_manifest(clothing_rows(root), out)
    print(f"wrote {n} rows to {out}")


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # e.g. `viscover search ... | head`
        sys.stderr.close()


if __name__ == "__main__":
    main()
