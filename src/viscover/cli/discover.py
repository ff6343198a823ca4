"""Commands that query a catalogue: visual search, related items, objects in scenes (shop the look)."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from viscover.cli.common import DEFAULT_HOME, DbOpt, HomeOpt, ModelOpt, handle_errors, open_engine
from viscover import BadRequestError

commands = typer.Typer()


@commands.command()
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
    from viscover import Filters, parse_crop
    from viscover.cli.render import print_hits

    if (image is None) == (item is None):
        raise BadRequestError("give exactly one query: an image path/URL argument, or --item ID")
    filters = Filters.parse(label or [], domain, board)
    box = parse_crop(crop) if crop else None
    with open_engine(home, db) as engine:
        kwargs = dict(crop=box, k=k, filters=filters, binary=binary, collapse=collapse, model=model)
        hits = engine.search_item(item, **kwargs) if item else engine.search_image(image, **kwargs)
        items = engine.counts()["items"] if not hits else 0
    if json_out:
        print(json.dumps([h.to_dict() for h in hits], indent=2))
    else:
        why = ("no results: the catalogue is empty; add images with `viscover ingest FOLDER_OR_MANIFEST`"
               if items == 0 else "no results: no item matches the filters" if filters
               else "no results: no other item is indexed yet (run `viscover index` after ingesting)")
        print_hits(hits, query=item or image, crop=box, empty=why)


@commands.command()
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
    source: Annotated[str, typer.Option(help="blend: walks, co-occurrence and looks, ranked; graph: the item's "
                                        "nearest neighbours by its graph embedding (`viscover train-graph` "
                                        "first; of the model graph-<--model>, or --graph-name).")] = "blend",
    graph_name: Annotated[Optional[str], typer.Option(help="With --source graph: the graph model's name.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    home: HomeOpt = DEFAULT_HOME,
    db: DbOpt = None,
) -> None:
    """Items related to an item (or a set of items): Pixie random walks over the item-board graph, board
    co-occurrence and visual neighbours, blended by the learned ranker (or a heuristic without one); with
    --source graph, the nearest neighbours of one item by its PinSage graph embedding."""
    from viscover.cli.render import print_hits, print_related

    if source not in ("blend", "graph"):
        raise BadRequestError(f"--source {source!r}: expected blend or graph")
    if source == "graph":
        if item is None or items is not None or weights is not None or domain is not None:
            raise BadRequestError("--source graph takes one item id argument (no --items, --weights or --domain)")
        with open_engine(home, db) as engine:
            name = graph_name or (f"graph-{engine.embedder(model).name}" if model else None)
            hits = engine.related_by_graph(item, k=k, name=name)
        if json_out:
            print(json.dumps([h.to_dict() for h in hits], indent=2))
        else:
            print_hits(hits, query=item, empty="no results: no other item has a graph embedding")
        return

    if (item is None) == (items is None):
        raise BadRequestError("give exactly one query: an item id argument, or --items A,B,C")
    keys = [item] if item is not None else [x.strip() for x in items.split(",") if x.strip()]
    parsed = None
    if weights is not None:
        try:
            parsed = [float(x) for x in weights.split(",")]
        except ValueError:
            raise BadRequestError(f"--weights {weights!r}: expected comma-separated numbers") from None
    with open_engine(home, db) as engine:
        hits = engine.related(keys, weights=parsed, k=k, domain=domain, model=model)
    if json_out:
        print(json.dumps([h.to_dict(explain) for h in hits], indent=2))
    else:
        print_related(hits, query=", ".join(keys), explain=explain)


@commands.command()
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
    from viscover import Filters
    from viscover.cli.render import console

    if (image is None) == (item is None):
        raise BadRequestError("give exactly one scene: an image path/URL argument, or --item ID")
    with open_engine(home, db, detector=detector) as engine:
        if shop:
            options = dict(k=k, filters=Filters(domain=domain), min_score=min_score)
            scene = (engine.shop_the_look_item(item, **options) if item
                     else engine.shop_the_look(image, **options))
        else:
            scene = engine.detect_item(item, min_score=min_score) if item else engine.detect(image, min_score=min_score)
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
