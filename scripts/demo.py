"""`make demo`: ingest a catalogue (the grocery and clothing data by default, or any folder), index it, and show
each feature once on an example where it works, saying how the example was chosen.

    python scripts/demo.py --home viscover-home [--images FOLDER] [--data ../shared/data] [--detector MODEL.onnx]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path

from viscover import (CropBox, Engine, Filters, Item, Settings, ViscoverError, clothing_rows, grocery_rows,
                      save_settings, write_manifest)
from viscover.cli.render import (console, print_hits, print_index_report, print_info, print_ingest_report,
                                 print_related, rich_progress)

TRIES = 40  # sampled photos tried when looking for an example of a feature


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("viscover-home"))
    parser.add_argument("--images", type=Path, help="a folder of images to use instead of the grocery data")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--detector", type=Path, help="an object detector (ONNX), saved in the home's settings")
    parser.add_argument("--sample", type=int, default=0, help=argparse.SUPPRESS)  # tests: N rows per dataset
    args = parser.parse_args()
    if args.images and not args.images.is_dir():  # checked before the home is made: a typo leaves nothing behind
        console.print(f"[bold red]error:[/] IMAGES={args.images}: no such folder; give a folder of images")
        return 1
    if not args.images and not (args.data / "grocery" / "classes.csv").is_file():
        console.print(f"[bold red]error:[/] grocery data not found at {args.data / 'grocery'}; run with "
                      "IMAGES=/some/folder")
        return 1
    created = not args.home.exists()
    try:
        if args.detector:
            args.home.mkdir(parents=True, exist_ok=True)
            save_settings(args.home, {"detector": str(args.detector.resolve())})
        with Engine(args.home, Settings.load(args.home)) as engine:
            if not ingest(engine, args):
                if created:
                    shutil.rmtree(args.home, ignore_errors=True)
                return 1
            print_index_report(engine.index(progress=rich_progress))
            print_info(engine.info())
            examples(engine, grocery_mode=not args.images)
    except ViscoverError as e:
        console.print(f"[bold red]error:[/] {e}")
        return 1
    console.print(f"\nTry it yourself: [bold]viscover items --home {args.home}[/] lists ids; "
                  f"[bold]viscover search IMAGE --home {args.home}[/] or [bold]viscover search --item ID --home "
                  f"{args.home}[/] (see README).")
    return 0


def ingest(engine: Engine, args: argparse.Namespace) -> bool:
    """Ingest the folder, or the grocery and clothing data; False (having said why) when nothing was found."""
    if args.images:
        report = engine.ingest(args.images, label_from_dirs="folder", progress=rich_progress)
        print_ingest_report(report)
        if report.rows == 0:
            console.print(f"[bold red]error:[/] nothing to show: {args.images}: {report.note}")
            return False
        return True
    manifests = {"grocery": grocery_rows(args.data / "grocery")}
    if (args.data / "clothing" / "images.csv").is_file():  # photos with boards, for related items
        manifests["clothing"] = clothing_rows(args.data / "clothing")
    for name, rows in manifests.items():
        rows = list(rows)
        if args.sample:
            kept = [r for r in rows if r["domain"] == "catalog"]
            rows = kept + random.Random(0).sample([r for r in rows if r["domain"] != "catalog"],
                                                  min(args.sample, len(rows) - len(kept)))
        write_manifest(rows, args.home / f"{name}.csv")
        print_ingest_report(engine.ingest(args.home / f"{name}.csv", image_roots=[args.data],
                                          progress=rich_progress))
    return True


def examples(engine: Engine, grocery_mode: bool) -> None:
    """One example per feature. In grocery mode the examples are grocery photos of a product (and clothing photos
    on boards), and where a feature can miss, the first sampled photo where it works, saying so."""
    rng = random.Random(0)
    if grocery_mode:
        photos = [i for i in engine.items(Filters(domain="photo"), limit=100_000)[0] if "product" in i.labels]
    else:
        photos = engine.items(limit=100_000)[0]
    sample = rng.sample(photos, min(TRIES, len(photos)))
    if not sample:
        return
    item = sample[0]
    console.rule(f"more like this: {item.key}")
    print_hits(engine.search_item(item.key, k=5), query=item.key)
    box = CropBox(item.width // 4, item.height // 4, item.width // 2, item.height // 2)
    console.rule("search by a crop (the centre of the same picture)")
    print_hits(engine.search_item(item.key, crop=box, k=5), query=item.key, crop=box)
    if grocery_mode:
        photo_to_catalogue(engine, sample)
    related(engine)
    if engine.settings.detector:
        shop_the_look(engine, sample, grocery_mode)


def photo_to_catalogue(engine: Engine, sample: list[Item]) -> None:
    shop = Filters(domain="catalog")
    for item in sample:
        hits = engine.search_item(item.key, k=5, filters=shop)
        if hits and hits[0].item.labels.get("product") == item.labels["product"]:
            console.rule(f"photo -> catalogue: the product in {item.key}")
            console.print("(the first sampled photo whose product comes first; the frozen backbone finds it for "
                          "about 4 photos in 10, a trained model for more: see README, Measured figures)",
                          highlight=False)
            print_hits(hits, query=item.key)
            return


def related(engine: Engine) -> None:
    """Related items of an item on the largest board: what people group with it, not only what looks alike."""
    boards = engine.boards(limit=100_000)[0]
    if not boards:
        return
    board = max(boards, key=lambda b: (b.size, b.name))
    if board.cover is None:
        return
    console.rule(f"related items (boards + looks): {board.cover.key}, on board {board.name} ({board.size} items)")
    print_related(engine.related([board.cover.key], k=5), query=board.cover.key, explain=True)


def shop_the_look(engine: Engine, sample: list[Item], grocery_mode: bool) -> None:
    for item in sample:
        scene = engine.shop_the_look_item(item.key, k=3, filters=Filters(domain="catalog") if grocery_mode
                                          else Filters())
        found = [(o, hits) for o, hits in zip(scene.objects, scene.hits)
                 if o.label != "person" and hits and (not grocery_mode
                                                      or hits[0].item.labels.get("product")
                                                      == item.labels.get("product"))]
        if found:
            console.rule(f"shop the look: objects in {item.key}")
            console.print("(the first sampled photo where the detector finds an object whose product search "
                          "gets right)" if grocery_mode else "", highlight=False)
            for obj, hits in found[:3]:
                print_hits(hits, query=f"{obj.label} {obj.score:.2f} at {obj.box}")
            return


if __name__ == "__main__":
    sys.exit(main())
