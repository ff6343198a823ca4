"""Rich output for the command line: progress bars (on stderr), tables and reports."""

from __future__ import annotations

import contextlib
from typing import Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

from viscover import Advance
from viscover.cli.hints import cli_hint

console = Console()
err_console = Console(stderr=True)
MAX_PROBLEMS_SHOWN = 20


@contextlib.contextmanager
def rich_progress(description: str, total: int | None) -> Iterator[Advance]:
    """A progress bar on stderr, so that --json output on stdout stays clean."""
    columns = [SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TaskProgressColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=err_console, transient=False, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def problems(problems: list, what: str, total: int | None = None) -> None:
    """List the first problems; `total` counts them all when the list holds only the first ones."""
    total = len(problems) if total is None else total
    if not total:
        return
    err_console.print(f"[yellow]{total} {what} skipped:[/]")
    for p in problems[:MAX_PROBLEMS_SHOWN]:
        err_console.print(f"  - {p.describe(cli_hint)}", highlight=False, soft_wrap=True)
    if total > MAX_PROBLEMS_SHOWN:
        listed = "all" if total == len(problems) else f"the first {len(problems)}"
        err_console.print(f"  ... and {total - MAX_PROBLEMS_SHOWN} more (use --json for {listed})")


def print_ingest_report(report) -> None:
    c = report.counts
    console.print(f"[bold]{report.source}[/]: {report.rows} rows -> {c.added} added, {c.updated} updated, "
                  f"{c.unchanged} unchanged, {report.skipped_total} skipped"
                  + (f", {report.repeated} repeated rows ignored" if report.repeated else ""), highlight=False)
    if report.without_image:
        console.print(f"{report.without_image} item(s) without an image: import their vectors with `viscover "
                      "ingest-vectors`, then run `viscover index`", highlight=False)
    if report.ignored_columns:
        console.print(f"ignored columns: {', '.join(report.ignored_columns)}")
    if report.note:
        console.print(f"[yellow]warning:[/] {report.note}", highlight=False)
    problems(report.skipped, "rows", report.skipped_total)


def print_items(items, total: int, offset: int) -> None:
    table = Table(title=f"items {offset + 1 if items else 0}-{offset + len(items)} of {total:,}", title_justify="left")
    for col, kw in [("id", {"overflow": "fold"}), ("title", {}), ("labels", {}), ("domain", {}), ("boards", {})]:
        table.add_column(col, **kw)
    for item in items:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(item.labels.items()))
        table.add_row(item.key, item.title or "", labels, item.domain or "", ", ".join(item.boards[:3])
                      + (f" +{len(item.boards) - 3}" if len(item.boards) > 3 else ""))
    console.print(table)
    if offset + len(items) < total:
        console.print(f"more with --offset {offset + len(items)}", highlight=False)


def print_vector_import_report(report) -> None:
    console.print(f"[bold]{report.source}[/]: {report.rows} rows -> {report.imported} vectors of {report.model} "
                  f"stored ({report.replaced} replaced), {len(report.skipped) + report.skipped_unlisted} skipped; "
                  "run `viscover index` to index them", highlight=False)
    problems(report.skipped, "rows", len(report.skipped) + report.skipped_unlisted)


def print_index_report(report) -> None:
    done = "rebuilt" if report.rebuilt else "merged" if report.merged else "updated"
    console.print(f"[bold]{report.model}[/]: embedded {report.embedded} new image(s) in {report.seconds:.1f}s; "
                  f"index {done} (+{report.added} / -{report.removed}), "
                  f"{report.size} items, {report.kind} float index", highlight=False)
    if report.rebuild_reason:
        console.print(f"rebuild: {report.rebuild_reason}")
    problems(report.failed, "images")


def print_index_plan(plan) -> None:
    """The planned index kind, its parameters, estimated RAM and disk, and why."""
    mb = 1e6
    console.print(f"[bold]{plan.kind}[/] index for {plan.items:,} items x {plan.dim}: ~{plan.ram_bytes / mb:,.1f} MB "
                  f"RAM ({plan.ram_per_item} B/item), ~{plan.disk_bytes / mb:,.1f} MB disk "
                  f"({plan.disk_per_item} B/item)", highlight=False)
    if plan.params:
        console.print("parameters: " + ", ".join(f"{k}={v}" for k, v in plan.params.items()), highlight=False)
    console.print(f"why: {plan.reason}", highlight=False)


def print_hits(hits, query: str, crop=None, empty: str = "no results") -> None:
    """A table of search results; `empty` says why there are none (empty catalogue, filters, ...)."""
    title = f"results for {query}" + (f" crop {crop}" if crop else "")
    table = Table(title=title, title_justify="left")
    columns = [("#", {"justify": "right"}), ("score", {"justify": "right"}), ("id", {"overflow": "fold"}),
               ("labels", {}), ("domain", {}), ("dups", {"justify": "right"})]
    for col, kw in columns:
        table.add_column(col, **kw)
    for rank, hit in enumerate(hits, 1):
        labels = ", ".join(f"{k}={v}" for k, v in sorted(hit.item.labels.items()))
        table.add_row(str(rank), f"{hit.score:.3f}", hit.item.key, labels, hit.item.domain or "",
                      str(len(hit.duplicates)) if hit.duplicates else "")
    console.print(table)
    if not hits:
        console.print(empty, highlight=False)


def print_related(hits, query: str, explain: bool = False) -> None:
    table = Table(title=f"related to {query}", title_justify="left")
    for col, kw in [("#", {"justify": "right"}), ("score", {"justify": "right"}), ("id", {"overflow": "fold"}),
                    ("labels", {}), ("boards", {}), ("sources", {})]:
        table.add_column(col, **kw)
    if explain:
        table.add_column("features")
    for rank, hit in enumerate(hits, 1):
        labels = ", ".join(f"{k}={v}" for k, v in sorted(hit.item.labels.items()))
        row = [str(rank), f"{hit.score:.3f}", hit.item.key, labels, ", ".join(hit.item.boards[:3]),
               "+".join(hit.explanation["sources"])]
        if explain:
            f = hit.explanation["features"]
            row.append(f"walk {f['pixie']:.2f} co {f['cooccurrence']:.2f} visual {f['visual']:.2f} "
                       f"labels {f['label_match']:.1f}")
        table.add_row(*row)
    console.print(table)
    if not hits:
        console.print("no related items (the item has no boards and no index to find visual neighbours)")


def print_related_eval(result: dict) -> None:
    table = Table(title=f"hidden board memberships: {result['queries']} queries ({result['cold_queries']} left "
                        f"without boards), {result['items']} items, {result['boards']} boards", title_justify="left")
    for col in ("method", "hit@10", "hit@50", "MRR"):
        table.add_column(col, justify="right" if col != "method" else "left")
    for method, m in result["results"].items():
        table.add_row(method, f"{m['hit@10']:.4f}", f"{m['hit@50']:.4f}", f"{m['mrr']:.4f}")
    console.print(table)


def print_eval(report) -> None:
    sides = []
    if report.query_domain or report.gallery_domain:
        sides = [f"{report.query_domain or 'all'} -> {report.gallery_domain or 'all'}"]
    table = Table(title=f"task {report.task}: {report.queries} queries, {report.gallery} gallery "
                        f"{' '.join(sides)} ({report.model})", title_justify="left")
    table.add_column("embedding")
    keys = ["recall@1", "recall@5", "recall@10", "map@r"]
    for k in keys:
        table.add_column(k.replace("recall", "R").replace("map@r", "MAP@R"), justify="right")
    for name, metrics in (("float", report.float), ("binary", report.binary)):
        table.add_row(name, *[f"{metrics[k]:.4f}" for k in keys])
    console.print(table)
    if report.float["queries_without_match"]:
        console.print(f"{report.float['queries_without_match']} queries had no gallery item with their label "
                      "and were left out")
    problems(report.skipped, "rows")


def print_info(data: dict) -> None:
    console.print(f"[bold]home[/] {data['home']}   [bold]database[/] {data['database']}", highlight=False)
    console.print(f"{data['items']} items, {data['images']} distinct images ({data['bad_images']} undecodable), "
                  f"{data['boards']} boards ({data['board_memberships']} memberships)")
    if data["tasks"]:
        console.print("tasks: " + ", ".join(f"{t} ({v['labelled']} labelled, {v['labels']} labels)"
                                            for t, v in data["tasks"].items()))
    if data["domains"]:
        console.print("domains: " + ", ".join(f"{d} ({n})" for d, n in data["domains"].items()))
    for key, m in data["models"].items():
        idx = m.get("index")
        desc = ("no index" if not idx else idx.get("error") or
                f"index: {idx['items']} items, float {idx['float']}, binary {idx['binary']}, "
                f"{idx['tombstones']} tombstones")
        console.print(f"model [bold]{key}[/]: {m['embedded_images']} images embedded, dim {m.get('dim')}; {desc}")
        if m.get("unindexed"):
            option = f" --model {m['model']}" if m.get("model") and len(data["models"]) > 1 else ""
            console.print(f"  [yellow]{m['unindexed']} items not indexed yet: run `viscover index{option}`[/]",
                          highlight=False, soft_wrap=True)
    if not data["models"] and data.get("unindexed"):
        console.print(f"[yellow]{data['unindexed']} items not indexed yet: run `viscover index`[/]", highlight=False,
                      soft_wrap=True)
    for example in data.get("bad_image_examples", []):
        console.print(f"  undecodable: {example}", highlight=False)


def print_settings() -> None:
    from viscover import Settings

    table = Table(title="settings (viscover.toml in the home, VISCOVER_<NAME> variables, or options)",
                  title_justify="left")
    for col in ("name", "default", "meaning"):
        table.add_column(col)
    for name, (default, text) in Settings.help().items():
        table.add_row(name, repr(default), text)
    console.print(table)


def print_models() -> None:
    from viscover import describe_models

    table = Table(title="embedding models (--model)", title_justify="left")
    table.add_column("name")
    table.add_column("what")
    for name, text in describe_models().items():
        table.add_row(name, text)
    console.print(table)
