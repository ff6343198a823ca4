"""What to run, phrased for the command line: the CLI's wording of each Remedy a lower layer attaches to an error."""

from __future__ import annotations

from viscover import Remedy, ViscoverError


def cli_hint(remedy: Remedy) -> str | None:
    """The command (or option) that fixes an error, or None when the CLI has nothing to add."""
    model = f" --model {remedy.model}" if remedy.model else ""
    return {
        "index": f"run `viscover index{model}`",
        "rebuild-index": f"run `viscover index{model}` to rebuild it from the stored embeddings",
        "create-home": f"create one with `viscover ingest SOURCE --home {remedy.path}` or point --home (or "
                       "VISCOVER_HOME) at an existing one",
        "ingest": "ingest the item again with `viscover ingest`",
        "list-items": "find ids with `viscover items TEXT`",
        "declare-model": f"declare it: `viscover ingest-vectors FILE --model {remedy.model or 'NAME'} --dim D` (D: "
                         "the vectors' width)",
        "ingest-images": "add images with `viscover ingest FOLDER_OR_MANIFEST`",
        "set-detector": "pass --detector MODEL.onnx (a CenterNet ONNX file, e.g. "
                        "../shared/models/centernet-coco.onnx), or save it for the home: detector = \"PATH\" in "
                        "its viscover.toml",
        "allow-image-root": "allow it with --image-root DIR or the image_roots setting",
        "list-boards": "see the boards with `viscover info`",
        "train-ranker": f"retrain with `viscover rank train` or delete {remedy.path}",
        "ingest-engagement": "ingest a log with `viscover engagement ingest LOG`",
        "force-save": "use --force to save it anyway",
        "ingest-boards": "ingest a manifest with a boards column (`viscover ingest MANIFEST`) or a folder with "
                         "--board NAME first",
        "train-graph": f"run `viscover train-graph{' --name ' + remedy.model if remedy.model else ''}` first",
        "free-space": f"free some space on the disk holding {remedy.path or 'it'}, then run the command again "
                      "(everything saved so far is kept)",
    }.get(remedy.action)


def with_hint(error: ViscoverError) -> str:
    """The error's message followed by the CLI's hint for its remedy."""
    return error.describe(cli_hint)
