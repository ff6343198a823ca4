"""The kill loop's scenario and what it checks: the steps (CLI commands and what each does to the catalogue), a
home folder's state read without any command running, and what must hold after a kill and after a resume.
Used by tests/kill_loop.py and tests/test_crash_safety.py."""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_PROBLEMS = 50


# ---- scenario ---------------------------------------------------------------------------------------------------
@dataclass
class Step:
    """One CLI command of the scenario and what it does to the expected catalogue (key -> image path)."""

    name: str
    kind: str  # ingest, index, rebuild, remove
    args: list[str]
    rows: dict[str, str] = field(default_factory=dict)  # ingest: key -> path
    keys: list[str] = field(default_factory=list)  # remove: keys

    def apply(self, expected: dict[str, str]) -> dict[str, str]:
        out = dict(expected)
        if self.kind == "ingest":
            out.update(self.rows)
        elif self.kind == "remove":
            for key in self.keys:
                out.pop(key, None)
        return out


def image_pool(data: Path, n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """About n real rows (60% grocery photos and catalogue images, 40% clothing), drawn with a seeded RNG."""
    from viscover.datasets import clothing_rows, grocery_rows

    rng = random.Random(seed)
    grocery = list(grocery_rows(data / "grocery"))
    clothing = list(clothing_rows(data / "clothing"))
    n_g = int(round(n * 0.6))
    return rng.sample(grocery, n_g), rng.sample(clothing, n - n_g)


def build_scenario(data: Path, work: Path, n_images: int, seed: int) -> list[Step]:
    """Write the scenario's manifests under `work` and return its steps (see the module docstring)."""
    from viscover.datasets import write_manifest

    grocery, clothing = image_pool(data, n_images, seed)
    rng = random.Random(seed + 1)
    g1, g2 = grocery[: len(grocery) * 2 // 3], grocery[len(grocery) * 2 // 3:]
    c1, c2 = clothing[: len(clothing) * 2 // 3], clothing[len(clothing) * 2 // 3:]
    spare = g2[-3:]  # images only ever used as the new image of changed items
    g2 = g2[:-3]
    a1, a2 = g1, c1
    first = [r["id"] for r in a1 + a2]
    dups = [dict(r, id=f"dup-{r['id']}") for r in rng.sample(a1 + a2, 4)]
    b = g2 + dups  # the last row of B is a duplicate: its id is the highest row id when R1 removes it
    r1 = rng.sample(first, max(3, len(first) // 10)) + [dups[0]["id"][4:], b[-1]["id"]]
    r1 = list(dict.fromkeys(r1))
    readd = [r for r in a1 + a2 if r["id"] in set(r1[:3])]
    kept = [r for r in a1 + a2 if r["id"] not in set(r1)]
    changed = [dict(old, path=new["path"]) for old, new in zip(rng.sample(kept, 3), spare)]
    c = c2 + readd + changed
    after_c = {r["id"] for r in a1 + a2 + b + c} - (set(r1) - {r["id"] for r in readd})
    r2 = rng.sample(sorted(after_c), max(2, len(after_c) // 20))
    manifests = {"A1": a1, "A2": a2, "B": b, "C": c}
    paths = {}
    for name, rows in manifests.items():
        paths[name] = work / f"{name}.csv"
        write_manifest(rows, paths[name])
    rows_of = {name: {r["id"]: r["path"] for r in rows} for name, rows in manifests.items()}
    return [
        Step("ingest A1 A2", "ingest", ["ingest", str(paths["A1"]), str(paths["A2"]), "--json"],
             rows={**rows_of["A1"], **rows_of["A2"]}),
        Step("index 1", "index", ["index", "--json"]),
        Step("ingest B", "ingest", ["ingest", str(paths["B"]), "--json"], rows=rows_of["B"]),
        Step("index 2", "index", ["index", "--json"]),
        Step("remove R1", "remove", ["remove", *r1], keys=r1),
        Step("ingest C", "ingest", ["ingest", str(paths["C"]), "--json"], rows=rows_of["C"]),
        Step("index 3", "index", ["index", "--json"]),
        Step("remove R2", "remove", ["remove", *r2], keys=r2),
        Step("index --rebuild", "rebuild", ["index", "--rebuild", "--json"]),
    ]



# ---- reading a home folder --------------------------------------------------------------------------------------
@dataclass
class State:
    """What a home folder holds, read without any command running."""

    items: dict[str, tuple[int, int, str]]  # key -> (item id, image id, uri)
    embedded: np.ndarray  # image ids with a stored vector
    index_gen: int  # generation of the saved index (0: none)
    index_items: np.ndarray  # item ids in the saved index
    index_images: np.ndarray  # image id of each
    meta_mtime: int  # embeddings meta.json mtime (rewritten at the start of every `index`)
    temps: set[str]  # leftover temp files of atomic writes
    shards: int
    problems: list[str] = field(default_factory=list)
    corrupt_index: str = ""  # IndexCorruptError message, if the index fails verification


def read_state(home: Path) -> State:
    """Open the store like the CLI does and read everything the checks need; problems are torn or unreadable
    files (a corrupt index is recorded separately: it is detected, which is the designed behaviour)."""
    from viscover import Engine, Settings
    from viscover.embed.vectors import EmbeddingStore
    from viscover.index import IndexCorruptError, load_index

    problems = []
    db = home / "catalog.sqlite"
    items: dict[str, tuple[int, int, str]] = {}
    if db.exists():  # else no command got as far as creating the store
        try:
            con = sqlite3.connect(db)
            try:
                status = con.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                con.close()
            if status != "ok":
                problems.append(f"SQLite integrity_check: {status}")
            with Engine(home, Settings(workers=1), create=False) as engine:
                item_ids, _ = engine.store.item_images()
                for item in engine.store.items_by_ids(item_ids.tolist()).values():
                    items[item.key] = (item.id, item.image_id, item.uri)
        except Exception as e:  # noqa: BLE001 - a store that does not open is what this harness looks for
            problems.append(f"the store does not open: {type(e).__name__}: {e}")
    embedded, meta_mtime, shards, temps = np.zeros(0, np.int64), 0, 0, set()
    for folder in sorted((home / "embeddings").glob("*")):
        store = EmbeddingStore(folder)
        meta = store.meta()
        meta_mtime = (folder / "meta.json").stat().st_mtime_ns if (folder / "meta.json").exists() else 0
        for shard in sorted([*folder.glob("shard-*.npz"), *folder.glob("shard-*.ids.npy")]):
            shards += 1  # a .npy shard exists once its ids file does (its vectors file is written first)
            try:
                if shard.suffix == ".npz":
                    with np.load(shard, allow_pickle=False) as z:
                        ids, vecs = z["ids"], z["vectors"]
                else:
                    ids = np.load(shard, allow_pickle=False)
                    vecs = np.load(shard.with_name(shard.name.replace(".ids.", ".f32.")), allow_pickle=False)
                if len(ids) != len(vecs) or vecs.ndim != 2 or vecs.shape[1] != meta.get("dim", vecs.shape[1]) \
                        or not np.isfinite(vecs).all():
                    problems.append(f"torn embedding shard {shard.name}: {len(ids)} ids, vectors {vecs.shape}")
            except Exception as e:  # noqa: BLE001 - any failure to read a shard is a torn shard
                problems.append(f"unreadable embedding shard {shard.name}: {type(e).__name__}: {e}")
        try:
            embedded = store.ids()
        except Exception as e:  # noqa: BLE001
            problems.append(f"embedding store unreadable: {type(e).__name__}: {e}")
    index_gen, index_items, index_images, corrupt = 0, np.zeros(0, np.int64), np.zeros(0, np.int64), ""
    for folder in sorted((home / "index").glob("*")):
        try:
            index = load_index(folder, Settings())
        except IndexCorruptError as e:
            corrupt = str(e)
            continue
        if index is not None:
            index_gen = json.loads((folder / "manifest.json").read_text())["generation"]
            index_items, index_images = index.item_ids.copy(), index.image_of(index.item_ids)
    for sub in ("embeddings", "index"):
        temps |= {str(p.relative_to(home)) for p in (home / sub).rglob(".*.tmp")}
    return State(items, embedded, index_gen, index_items, index_images, meta_mtime, temps, shards, problems,
                 corrupt)



# ---- checks -----------------------------------------------------------------------------------------------------
@dataclass
class Tally:
    """Counts over a whole harness run."""

    lost: int = 0
    inconsistent: int = 0
    problems: list[str] = field(default_factory=list)

    def lose(self, n: int, message: str) -> None:
        if n:
            self.lost += n
            self.note(message)

    def bad(self, message: str) -> None:
        self.inconsistent += 1
        self.note(message)

    def note(self, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)


def check_crash_state(step: Step, before: State, after: State, expected: dict[str, str], where: str,
                      tally: Tally) -> None:
    """What must hold at any moment, even right after a SIGKILL."""
    for p in after.problems:
        tally.bad(f"{where}: {p}")
    if after.corrupt_index:
        tally.bad(f"{where}: the index fails verification after a kill: {after.corrupt_index}")
    keys = set(after.items)
    # nothing committed by completed commands is lost
    tally.lose(len(set(expected) - keys) if step.kind != "remove" else len(set(expected) - set(step.keys) - keys),
               f"{where}: committed items lost: {sorted(set(expected) - keys - set(step.keys))[:5]}")
    tally.lose(int((~np.isin(before.embedded, after.embedded)).sum()), f"{where}: embedded images lost")
    if step.kind == "remove":
        gone = set(before.items) - keys
        if gone and gone != set(step.keys) & set(before.items):
            tally.bad(f"{where}: a removal was partly committed: {len(gone)} of {len(step.keys)} items gone")
    elif step.kind == "ingest":
        extra = keys - set(before.items) - set(step.rows)
        if extra:
            tally.bad(f"{where}: items that no manifest has: {sorted(extra)[:5]}")
        for key in keys & set(step.rows):
            if after.items[key][2] not in (step.rows[key], before.items.get(key, (0, 0, ""))[2]):
                tally.bad(f"{where}: item {key} points to {after.items[key][2]}, neither its old nor new image")
    elif keys != set(before.items):
        tally.bad(f"{where}: `{step.name}` changed the catalogue's items")
    # the index never holds a vector without an item, and keeps what it had
    ids = {v[0]: v[1] for v in after.items.values()}
    orphan_vectors = [int(i) for i in after.index_items if int(i) not in ids]
    if orphan_vectors:
        tally.bad(f"{where}: {len(orphan_vectors)} indexed vector(s) without an item: {orphan_vectors[:5]}")
    if not after.corrupt_index:
        still = {v[0] for k, v in before.items.items() if after.items.get(k) == v}
        if step.kind == "remove":
            still -= {before.items[k][0] for k in step.keys if k in before.items}
        kept = np.isin(before.index_items, sorted(still))
        lost = ~np.isin(before.index_items[kept], after.index_items)
        tally.lose(int(lost.sum()), f"{where}: indexed items dropped from the index: "
                                    f"{before.index_items[kept][lost][:5].tolist()}")


def check_catalogue(after: State, expected: dict[str, str], where: str, tally: Tally) -> None:
    """After a completed command: the store holds exactly the expected items, each with its image."""
    for p in after.problems:
        tally.bad(f"{where}: {p}")
    keys = set(after.items)
    tally.lose(len(set(expected) - keys), f"{where}: items missing: {sorted(set(expected) - keys)[:5]}")
    if keys - set(expected):
        tally.bad(f"{where}: unexpected items (removed ones back?): {sorted(keys - set(expected))[:5]}")
    wrong = [k for k in keys & set(expected) if after.items[k][2] != expected[k]]
    if wrong:
        tally.bad(f"{where}: {len(wrong)} item(s) with the wrong image, e.g. {wrong[0]}")
    ids = {v[0] for v in after.items.values()}
    orphan_vectors = [int(i) for i in after.index_items if int(i) not in ids]
    if orphan_vectors:
        tally.bad(f"{where}: {len(orphan_vectors)} indexed vector(s) without an item: {orphan_vectors[:5]}")


def check_searchable(home: Path, after: State, where: str, tally: Tally, rng: random.Random,
                     sample_images: int = 4) -> int:
    """After a completed `index`: the index holds exactly the items, and every item is findable. Returns the
    number of items checked (an exception on the way is an inconsistency too)."""
    try:
        return _check_searchable(home, after, where, tally, rng, sample_images)
    except Exception as e:  # noqa: BLE001
        tally.bad(f"{where}: searching failed: {type(e).__name__}: {e}")
        return 0


def _check_searchable(home: Path, after: State, where: str, tally: Tally, rng: random.Random,
                      sample_images: int) -> int:
    from viscover import Engine, Settings
    from viscover.embed.vectors import EmbeddingStore

    if after.corrupt_index:
        tally.bad(f"{where}: index fails verification after a completed `index`: {after.corrupt_index}")
        return 0
    by_id = {v[0]: (k, v[1], v[2]) for k, v in after.items.items()}
    not_embedded = [k for k, v in after.items.items() if not np.isin(v[1], after.embedded)]
    if not_embedded:
        tally.bad(f"{where}: {len(not_embedded)} item image(s) never embedded, e.g. {not_embedded[0]}")
    want = np.array(sorted(i for i, (_, img, _) in by_id.items() if np.isin(img, after.embedded)), np.int64)
    missing = np.setdiff1d(want, after.index_items)
    if len(missing):
        tally.bad(f"{where}: {len(missing)} embedded item(s) not in the index, e.g. {by_id[int(missing[0])][0]}")
    extra = np.setdiff1d(after.index_items, want)
    if len(extra):
        tally.bad(f"{where}: {len(extra)} indexed vector(s) without an embedded item: {extra[:5].tolist()}")
    wrong_image = [int(i) for i, img in zip(after.index_items, after.index_images)
                   if int(i) in by_id and by_id[int(i)][1] != int(img)]
    if wrong_image:
        tally.bad(f"{where}: {len(wrong_image)} indexed item(s) with another image's vector")
    copies: dict[int, list[int]] = {}
    for item_id, (_, image_id, _) in by_id.items():
        copies.setdefault(image_id, []).append(item_id)
    checked = 0
    with Engine(home, Settings(workers=1)) as engine:
        index = engine.vector_index()
        folder = home / "embeddings" / engine.embedder().key
        images = index.image_of(index.item_ids)
        raw_ids, raw = EmbeddingStore(folder).load(np.unique(images))
        expect = index.encode(raw[np.searchsorted(raw_ids, images)]).floats
        stored = index.stored_floats(index.item_ids)
        err = float(np.abs(stored - expect).max()) if len(stored) else 0.0
        if err > 1e-4:
            tally.bad(f"{where}: indexed vectors differ from the stored embeddings of their images by {err:.2g}")
        for item_id in index.item_ids.tolist():
            key, image_id, _ = by_id.get(item_id, ("?", -1, ""))
            same = copies.get(image_id, [item_id])
            query = index.stored_query(np.array([item_id]))
            for binary in (False, True):
                hits = index.search(query, len(same) + 2, binary=binary)
                pos = np.flatnonzero(hits.ids == item_id)
                if len(pos) == 0 or hits.scores[pos[0]] < hits.scores[0] - 1e-5:
                    tally.bad(f"{where}: item {key} is not its own nearest neighbour "
                              f"({'binary' if binary else 'float'} search)")
            found = engine.search_item(key, k=3, collapse=False)
            bad = [h.item.key for h in found if h.item.id in same or h.item.key not in after.items]
            if bad:
                tally.bad(f"{where}: search_item({key}) returned itself, a copy or a removed item: {bad}")
            checked += 1
        for key in rng.sample(sorted(after.items), min(sample_images, len(after.items))):
            item_id, image_id, uri = after.items[key]
            hits = engine.search_image(uri, k=len(copies.get(image_id, [])) + 2, collapse=False)
            if not hits or hits[0].item.image_id != image_id or hits[0].score < 0.99:
                top = f"{hits[0].item.key} ({hits[0].score:.3f})" if hits else "nothing"
                tally.bad(f"{where}: search_image of {key}'s own image found {top} first")
    return checked


def phase_of(step: Step, before: State, after: State, open_files: list[str], mode: str = "") -> str:
    """Where a kill landed, from what it left, what the process had open and how it was triggered."""
    store_open = any(f.endswith("catalog.sqlite") for f in open_files)
    new_temps = after.temps - before.temps
    index_temps = ", ".join(sorted({_written(t) for t in new_temps if t.startswith("index")}))
    if step.kind == "ingest":
        todo = {k for k, p in step.rows.items() if before.items.get(k, (0, 0, ""))[2] != p}
        done = {k for k in todo if k in after.items and after.items[k][2] == step.rows[k]}
        if todo and done == todo:
            return "ingest: after the last commit (exiting)"
        if done:
            return "ingest: between transactions"
        if mode == "in a commit":
            return "ingest: inside the first transaction"
        if not store_open:
            return "ingest: start-up"
        return "ingest: reading images, first transaction" if todo else "ingest: re-reading committed rows"
    if step.kind == "remove":
        gone = set(before.items) - set(after.items)
        index_changed = after.index_gen != before.index_gen
        if gone and (index_changed or not len(before.index_items)):
            return "remove: after both (exiting)"
        if index_temps:
            return f"remove: writing the index ({index_temps})"
        if gone:
            return "remove: between store delete and index save"
        if mode == "in a commit":
            return "remove: inside the delete transaction"
        if index_changed:
            return "remove: between index save and store delete"
        return "remove: before any change" if store_open else "remove: start-up"
    if after.index_gen != before.index_gen:
        return f"{step.kind}: after index save"
    if index_temps:
        return f"{step.kind}: writing the index ({index_temps})"
    if any(t.startswith("embeddings") for t in new_temps):
        return f"{step.kind}: writing an embedding shard"
    if after.meta_mtime == before.meta_mtime:
        return f"{step.kind}: start-up (imports, model)"
    images = {v[1] for v in after.items.values()}
    if images <= set(after.embedded.tolist()):
        return f"{step.kind}: building/updating the index"
    return f"{step.kind}: embedding images"


def _written(temp: str) -> str:
    """Which file a leftover temp file was to become: '.float-3.faiss.x1y2.tmp' -> 'float file'."""
    name = Path(temp).name.lstrip(".")
    return name.split("-")[0].split(".")[0] + " file"


def damage_index(home: Path) -> bool:
    """Overwrite bytes in the middle of the saved float index file (as a torn disk would); False if none."""
    for manifest in (home / "index").glob("*/manifest.json"):
        path = manifest.parent / json.loads(manifest.read_text())["files"]["float"]["name"]
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.seek(size // 2)
            f.write(b"\xde\xad\xbe\xef" * 8)
        return True
    return False

