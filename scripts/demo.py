"""`make demo`: ingest a catalogue (the grocery and clothing data by default, or any folder), index it, and show
example searches and related items.

    python scripts/demo.py --home viscover-home [--images FOLDER] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from viscover import CropBox, Engine, Filters, Settings, ViscoverError, clothing_rows, grocery_rows, write_manifest
from viscover.cli.render import (console, print_hits, print_index_report, print_info, print_ingest_report,
                                 print_related, rich_progress)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("viscover-home"))
    parser.add_argument("--images", type=Path, help="a folder of images to use instead of the grocery data")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    try:
        with Engine(args.home, Settings.load(args.home)) as engine:
            if args.images:
                source = args.images
                report = engine.ingest(source, label_from_dirs="folder", progress=rich_progress)
            else:
                grocery = args.data / "grocery"
                if not (grocery / "classes.csv").is_file():
                    console.print(f"[red]grocery data not found at {grocery}[/]; run with IMAGES=/some/folder")
                    return 1
                source = args.home / "grocery.csv"
                write_manifest(grocery_rows(grocery), source)
                report = engine.ingest(source, image_roots=[args.data], progress=rich_progress)
                clothing = args.data / "clothing"
                if (clothing / "images.csv").is_file():  # photos with boards, for related items
                    print_ingest_report(report)
                    write_manifest(clothing_rows(clothing), args.home / "clothing.csv")
                    report = engine.ingest(args.home / "clothing.csv", image_roots=[args.data],
                                           progress=rich_progress)
            print_ingest_report(report)
            print_index_report(engine.index(progress=rich_progress))
            print_info(engine.info())
            examples(engine, grocery_mode=not args.images)
    except ViscoverError as e:
        console.print(f"[bold red]error:[/] {e}")
        return 1
    console.print(f"\nTry it yourself: [bold]viscover search IMAGE --home {args.home}[/] "
                  f"or [bold]viscover search --item ID --home {args.home}[/] (see README).")
    return 0


def examples(engine: Engine, grocery_mode: bool) -> None:
    rng = random.Random(0)
    ids = engine.store.filter_item_ids(Filters(domain="photo") if grocery_mode else Filters()).tolist()
    items = engine.store.items_by_ids(rng.sample(ids, min(3, len(ids))))
    for item in items.values():
        console.rule(f"more like this: {item.key}")
        print_hits(engine.search_item(item.key, k=5), query=item.key)
    item = next(iter(items.values()))
    box = CropBox(item.width // 4, item.height // 4, item.width // 2, item.height // 2)
    console.rule("search by a crop (the centre of the picture)")
    print_hits(engine.search_image(item.uri, crop=box, k=5), query=item.uri, crop=box)
    if grocery_mode:
        console.rule("shop this photo: its nearest catalogue products")
        print_hits(engine.search_item(item.key, k=5, filters=Filters(domain="catalog")), query=item.key)
    boards = engine.store.board_memberships()[0]
    if len(boards):
        key = engine.store.items_by_ids([int(boards[0])])[int(boards[0])].key
        console.rule(f"related items (boards + looks): {key}")
        print_related(engine.related([key], k=5), query=key, explain=True)


if __name__ == "__main__":
    sys.exit(main())
