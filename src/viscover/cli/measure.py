"""Commands that train and measure: retrieval and related-items evaluation, embedding training, the ranker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from viscover import Remedy
from viscover.cli.common import DEFAULT_HOME, DbOpt, HomeOpt, ModelOpt, handle_errors, open_engine, show_report
from viscover.cli.hints import cli_hint

commands = typer.Typer()
rank = typer.Typer(help="The learned ranker of related items.", no_args_is_help=True)


@commands.command(name="eval")
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
    from viscover import Settings, evaluate_retrieval
    from viscover.cli.render import print_eval, rich_progress

    settings = Settings.load(None, overrides={"workers": workers})
    report = evaluate_retrieval(manifest, task, model=model, query_domain=query_domain,
                               gallery_domain=gallery_domain, query_split=query_split, gallery_split=gallery_split,
                               settings=settings, progress=rich_progress)
    show_report(report.to_dict(), json_path, lambda: print_eval(report))


@commands.command(name="eval-related")
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
    graph: Annotated[bool, typer.Option("--graph", help="Also train PinSage graph embeddings on the graph without "
                                        "the hidden memberships (image embeddings as content) and evaluate them "
                                        "as the method 'graph'.")] = False,
    graph_epochs: Annotated[Optional[int], typer.Option(help="PinSage training epochs (with --graph).")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON to this "
                                                      "file ('-' for standard output).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Embedding worker processes.")] = None,
) -> None:
    """Measure related items on a manifest with boards: hide one board membership per sampled item and check
    whether the item's related items contain its hidden board-mates (hit-rate@10/@50, MRR), for the blend and
    for Pixie, plain co-occurrence and visual similarity alone (and PinSage embeddings with --graph)."""
    from viscover.cli.render import print_related_eval, rich_progress
    from viscover import GraphTrainConfig, PruneParams, Settings, evaluate_related

    settings = Settings.load(None, overrides={"workers": workers})
    graph_config = None
    if graph:
        graph_config = GraphTrainConfig(seed=seed, **({"epochs": graph_epochs} if graph_epochs else {}))
    result = evaluate_related(manifest, queries=queries, seed=seed, model=model, settings=settings,
                              progress=rich_progress, learned=learned, graph_config=graph_config,
                              prune=PruneParams(min_coherence=prune_min_coherence, max_board_size=prune_max_board))
    show_report(result, json_path, lambda: print_related_eval(result))


def _train_help(name: str) -> str:
    from viscover import TrainConfig

    return TrainConfig.help(name)


@commands.command()
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
    from viscover.cli.render import problems, console, rich_progress
    from viscover import TrainConfig, train_model

    given = {k: v for k, v in dict(out=out, dim=dim, epochs=epochs, batch_size=batch_size, per_class=per_class,
                                   sampled_classes=sampled_classes, temperature=temperature, lr=lr, views=views,
                                   rotate_bits=rotate_bits, binary_weight=binary_weight,
                                   finetune_blocks=finetune_blocks, backbone=backbone, val_split=val_split,
                                   balance_domains=balance_domains, seed=seed, workers=workers).items()
             if v is not None}
    if "out" in given:
        given["out"] = str(given["out"])
    config = TrainConfig.from_dict({"manifests": [str(m) for m in manifests], "tasks": list(task), **given})
    result = train_model(config, resume=resume, progress=rich_progress,
                          log=lambda message: console.print(message, highlight=False))
    problems(result.problems, "images")
    console.print(f"model written to [bold]{result.out}[/] (report.json, curves.png); use it with "
                  f"--model {result.out}")


@commands.command(name="train-graph")
@handle_errors
def train_graph(
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Base model whose stored image vectors are "
                                                 "the content (default: the model setting); index with it "
                                                 "first.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Model name to store the graph embeddings as (default "
                                                "graph-<base model>).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs (with --resume: the total).")] = None,
    dim: Annotated[Optional[int], typer.Option(help="Embedding width.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the last run of this model from its checkpoint.")] = False,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the report as JSON to this file "
                                                      "('-' for standard output).")] = None,
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Train PinSage graph embeddings on the catalogue's item-board graph (image vectors of the base model as
    content, board co-membership as the signal) and store them as a model of their own, with its index: then
    `viscover search --item ID --model graph-...` finds items by the graph. The checkpoint is kept in the home
    (graph-models/), so --resume with more --epochs continues a run."""
    from viscover import GraphTrainConfig
    from viscover.cli.render import console, err_console, rich_progress

    given = {k: v for k, v in dict(epochs=epochs, dim=dim, seed=seed).items() if v is not None}
    quiet = json_path is not None and str(json_path) == "-"
    say = (lambda message: err_console.print(message, highlight=False)) if quiet else \
        (lambda message: console.print(message, highlight=False))
    with open_engine(home, db) as engine:
        report = engine.train_graph(model=model, name=name, config=GraphTrainConfig(**given), resume=resume,
                                    progress=rich_progress, log=say)

    def show() -> None:
        console.print(f"graph model [bold]{report['model']}[/] ({report['dim']} dimensions): {report['items']} "
                      f"items, {report['boards']} boards, {report['edges']} memberships, "
                      f"{report['epochs_trained']} epoch(s) trained in {report['seconds']:.1f} s; search with "
                      f"--model {report['model']}", highlight=False)

    show_report(report, json_path, show)


@rank.command("train")
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
    with open_engine(home, db) as engine:
        report = engine.train_ranker(from_boards=from_boards, queries=queries, seed=seed, model=model, force=force)
    if "not_saved_because" in report:
        report["not_saved_because"] += f" ({cli_hint(Remedy('force-save'))})"
    print(json.dumps(report, indent=2, default=float))
