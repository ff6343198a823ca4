"""Search end to end on real photos: by image, by item, by crop, with filters, duplicates collapsed; incremental
and resumable indexing."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import GROCERY, SHARED, needs_data, write_csv
from viscover import Engine, Settings
from viscover.catalog.store import Filters
from viscover.errors import BadImageError, BadRequestError, NotFoundError
from viscover.imaging import CropBox

pytestmark = needs_data


def catalogue_rows(engine: Engine, **filters):
    return engine.store.items_by_ids(engine.store.filter_item_ids(Filters(**filters)).tolist())


def test_search_by_an_indexed_image_finds_it_first(engine):
    item = next(i for i in catalogue_rows(engine).values() if i.domain == "photo" and i.split == "val")
    hits = engine.search_image(item.source, k=5)
    assert hits[0].item.key == item.key and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert len(hits) == 5 and all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_search_by_image_bytes_and_url_like_paths(engine):
    item = next(iter(catalogue_rows(engine, domain="catalog").values()))
    data = open(item.source, "rb").read()
    assert engine.search_image(data, k=1)[0].item.key == item.key
    with pytest.raises(BadImageError):
        engine.search_image(b"not an image", k=1)
    with pytest.raises(BadImageError, match="file not found"):
        engine.search_image("/no/such/file.jpg", k=1)


def test_more_like_this_finds_the_same_product_well_above_chance(engine):
    photos_ = [i for i in catalogue_rows(engine, domain="photo").values() if "product" in i.labels]
    top1 = top5 = 0
    for query in photos_:
        hits = engine.search_item(query.key, k=5)
        assert query.key not in [h.item.key for h in hits]
        same = [h.item.labels.get("product") == query.labels["product"] for h in hits]
        top1 += same[0]
        top5 += any(same)
    # 5 products x 6 photos among 59 items: chance of a same-product first result is about 0.1
    assert top1 / len(photos_) >= 0.5 and top5 / len(photos_) >= 0.8


def test_filters(engine):
    query = next(iter(catalogue_rows(engine, domain="photo").values()))
    assert {h.item.domain for h in engine.search_item(query.key, k=5, filters=Filters(domain="catalog"))} == \
        {"catalog"}
    hits = engine.search_item(query.key, k=3, filters=Filters(labels=(("product", "Lime"),)))
    assert len(hits) == 3 and all(h.item.labels["product"] == "Lime" for h in hits)
    board = "sender-10"
    hits = engine.search_item(query.key, k=50, filters=Filters(board=board))
    assert hits and all(board in h.item.boards for h in hits) and len(hits) == 6
    with pytest.raises(NotFoundError, match="unknown board"):
        engine.search_item(query.key, filters=Filters(board="no-such-board"))
    with pytest.raises(NotFoundError, match="task"):
        engine.search_item(query.key, filters=Filters(labels=(("colour", "red"),)))


def test_binary_search_shortlists_by_hamming_and_reranks_by_cosine(indexed_home):
    """Photos that are not in the catalogue, searched by bits: the short list (k x binary_rerank, 2 here so that
    it does not cover all 59 items) holds the nearest codes by Hamming distance, re-ranked by float cosine."""
    from viscover.embed.pipeline import ImageJob, embed_batch

    k, rerank = 5, 2
    with Engine(indexed_home, Settings(workers=1, binary_rerank=rerank)) as engine:
        index = engine.vector_index()
        ids = index.item_ids
        stored = index.stored_query(ids)
        codes, unit = np.unpackbits(stored.bits, axis=1), stored.floats
        agree = 0
        queries = [sorted((GROCERY / "train/Fruit/Banana").glob("*.jpg"))[-1],
                   sorted((GROCERY / "train/Packages/Oat-Milk/Oatly-Oat-Milk").glob("*.jpg"))[-1],
                   sorted((GROCERY / "train/Vegetables/Pepper/Red-Bell-Pepper").glob("*.jpg"))[-1],
                   sorted((GROCERY / "train/Fruit/Lime").glob("*.jpg"))[-1]]
        for photo in queries:
            raw = embed_batch([ImageJob(0, str(photo))], engine.embedder(), engine.settings).vectors
            query = index.encode(raw)
            hamming = (codes != np.unpackbits(query.bits, axis=1)).sum(axis=1)
            cosine = unit @ query.floats[0]
            hits = engine.search_image(photo, k=k, binary=True, collapse=False)
            got = np.array([h.item.id for h in hits])
            pos = np.searchsorted(ids, got)
            assert len(hits) == k and not engine.store.item_ids_of([str(photo.relative_to(GROCERY))])
            assert np.all(hamming[pos] <= np.sort(hamming)[k * rerank - 1])  # from the Hamming short list
            assert np.allclose([h.score for h in hits], cosine[pos], atol=1e-5)  # scored by float cosine
            assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
            agree += hits[0].item.key == engine.search_image(photo, k=1, collapse=False)[0].item.key
        assert agree >= 3


def test_crop_search(engine):
    item = next(i for i in catalogue_rows(engine, domain="photo").values() if i.width >= 200)
    box = CropBox(0, 0, item.width // 2, item.height // 2)
    by_item = engine.search_item(item.key, crop=box, k=5)
    by_image = engine.search_image(item.source, crop=box, k=6)
    assert [h.item.key for h in by_item] == [h.item.key for h in by_image if h.item.key != item.key][:5]
    whole = engine.search_image(item.source, k=1)[0]
    assert by_image[0].score < whole.score  # the crop is not the whole picture
    with pytest.raises(BadRequestError, match="does not fit"):
        engine.search_item(item.key, crop=CropBox(item.width - 5, 0, 50, 50))


def test_unknown_item_and_bad_k(engine):
    with pytest.raises(NotFoundError, match="unknown item id 'nope'"):
        engine.search_item("nope")
    item = next(iter(catalogue_rows(engine).values()))
    with pytest.raises(BadRequestError, match="k=0"):
        engine.search_item(item.key, k=0)


def test_duplicates_are_collapsed(tmp_path):
    photos_ = sorted((GROCERY / "train/Packages/Oat-Milk/Oatly-Oat-Milk").glob("*.jpg"))[:6]
    (tmp_path / "imgs").mkdir()
    rows = [{"path": str(p), "id": p.stem} for p in photos_]
    exact = tmp_path / "imgs" / "exact.jpg"
    shutil.copy(photos_[0], exact)
    near = tmp_path / "imgs" / "near.jpg"
    Image.open(photos_[0]).save(near, "JPEG", quality=92)  # re-encoded: same picture, other bytes
    rows += [{"path": str(exact), "id": "exact-copy"}, {"path": str(near), "id": "near-copy"}]
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        engine.ingest(write_csv(rows, tmp_path / "m.csv"), image_roots=[SHARED])
        engine.index()
        hits = engine.search_image(photos_[0], k=3)
        keys = [h.item.key for h in hits]
        assert len(set(keys) & {photos_[0].stem, "exact-copy", "near-copy"}) == 1
        assert sorted(d.key for d in hits[0].duplicates) == sorted({photos_[0].stem, "exact-copy", "near-copy"}
                                                                   - {hits[0].item.key})
        raw = engine.search_image(photos_[0], k=3, collapse=False)
        assert {h.item.key for h in raw} == {photos_[0].stem, "exact-copy", "near-copy"}
        # searching by the item excludes the item and its exact copies, not the near copy
        more = [h.item.key for h in engine.search_item(photos_[0].stem, k=3, collapse=False)]
        assert "exact-copy" not in more and "near-copy" in more


def test_incremental_indexing_and_removal(tmp_path):
    photos_ = sorted((GROCERY / "train/Fruit/Banana").glob("*.jpg"))[:10]
    rows = [{"path": str(p), "id": p.stem} for p in photos_]
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        engine.ingest(write_csv(rows[:6], tmp_path / "a.csv"), image_roots=[SHARED])
        first = engine.index()
        assert (first.embedded, first.rebuilt, first.size) == (6, True, 6)
        engine.ingest(write_csv(rows[6:], tmp_path / "b.csv"), image_roots=[SHARED])
        second = engine.index()
        assert (second.embedded, second.added, second.rebuilt, second.size) == (4, 4, False, 10)
        assert engine.search_image(photos_[8], k=1)[0].item.key == photos_[8].stem
        engine.remove([photos_[8].stem])
        assert photos_[8].stem not in [h.item.key for h in engine.search_image(photos_[8], k=10)]
        third = engine.index()
        assert (third.embedded, third.added, third.removed, third.size) == (0, 0, 0, 9)
    with Engine(tmp_path / "home", Settings(workers=1)) as reopened:  # reloaded from disk
        assert reopened.search_image(photos_[3], k=1)[0].item.key == photos_[3].stem


def test_embedding_resumes_after_interruption(tmp_path):
    photos_ = sorted((GROCERY / "train/Fruit").rglob("*.jpg"))[:72]  # work goes out in chunks of 32
    rows = [{"path": str(p), "id": p.stem} for p in photos_]
    settings = Settings(workers=1, shard_size=8, batch_size=4)
    with Engine(tmp_path / "home", settings) as engine:
        engine.ingest(write_csv(rows, tmp_path / "m.csv"), image_roots=[SHARED])

        class Stop(Exception):
            pass

        import contextlib

        @contextlib.contextmanager
        def stop_in_second_chunk(description, total):
            done = [0]

            def advance(n):
                done[0] += n
                if done[0] > 32:
                    raise Stop

            yield advance

        with pytest.raises(Stop):
            engine.index(progress=stop_in_second_chunk)
        resumed = engine.index()
        assert resumed.embedded == 72 - 32  # only what the interrupted run had not saved
        assert resumed.size == 72


def test_bad_image_found_at_embedding_is_skipped_and_remembered(tmp_path):
    photos_ = sorted((GROCERY / "train/Fruit/Lime").glob("*.jpg"))[:3]
    broken = tmp_path / "broken.jpg"
    data = photos_[0].read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # header fine, pixel data cut
    rows = [{"path": str(p), "id": p.stem} for p in photos_] + [{"path": str(broken), "id": "broken"}]
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        assert engine.ingest(write_csv(rows, tmp_path / "m.csv"), image_roots=[SHARED]).counts.added == 4
        report = engine.index()
        assert (report.embedded, len(report.failed), report.size) == (3, 1, 3)
        assert "broken.jpg" in report.failed[0].reason
        assert engine.index().failed == []  # not retried on every run
        assert engine.info()["bad_images"] == 1


def test_worker_processes_give_the_same_vectors(tmp_path):
    from viscover.embed import load_embedder
    from viscover.embed.pipeline import ImageJob, embed_images

    photos_ = sorted((GROCERY / "train/Fruit/Kiwi").glob("*.jpg"))[:40]
    jobs = [ImageJob(i, str(p)) for i, p in enumerate(photos_)]
    embedder = load_embedder("efficientnet-lite0")
    results = {}
    for workers in (1, 2):
        out = np.zeros((len(jobs), embedder.dim), np.float32)
        for batch in embed_images(jobs, embedder, Settings(workers=workers)):
            out[batch.ids] = batch.vectors
        results[workers] = out
    assert np.allclose(results[1], results[2], atol=1e-4)
    assert np.abs(results[1]).sum(axis=1).min() > 0


def test_damaged_index_is_detected_and_rebuilt_from_embeddings(tmp_path):
    from viscover.index import IndexCorruptError

    photos_ = sorted((GROCERY / "train/Fruit/Banana").glob("*.jpg"))[:5]
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        engine.ingest(write_csv([{"path": str(p), "id": p.stem} for p in photos_], tmp_path / "m.csv"),
                      image_roots=[SHARED])
        engine.index()
    target = next((tmp_path / "home" / "index" / "efficientnet-lite0").glob("float-*.faiss"))
    target.write_bytes(target.read_bytes()[:-100])  # truncated, e.g. by a full disk
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        with pytest.raises(IndexCorruptError, match="checksum mismatch") as excinfo:
            engine.search_image(photos_[0], k=1)
        assert excinfo.value.remedy.action == "rebuild-index"
        report = engine.index()
        assert report.rebuilt and "checksum" in report.rebuild_reason and report.embedded == 0
        assert engine.search_image(photos_[0], k=1)[0].item.key == photos_[0].stem


def test_a_missing_index_or_embedding_names_its_remedy(tmp_path):
    """Before `index`, and for an item ingested since, search says what is missing and names the fix (the shells
    phrase it: a command, an HTTP hint) without a CLI hint in the message."""
    photos_ = sorted((GROCERY / "train/Fruit/Lime").glob("*.jpg"))[:3]
    rows = [{"path": str(p), "id": p.stem} for p in photos_]
    with Engine(tmp_path / "home", Settings(workers=1)) as engine:
        engine.ingest(write_csv(rows[:2], tmp_path / "a.csv"), image_roots=[SHARED])
        with pytest.raises(NotFoundError, match="^no index for model efficientnet-lite0 yet$") as e:
            engine.search_item(photos_[0].stem)
        assert (e.value.remedy.action, e.value.remedy.model) == ("index", None)
        with pytest.raises(NotFoundError) as e:
            engine.search_image(photos_[0], model="efficientnet-lite0")
        assert (e.value.remedy.action, e.value.remedy.model) == ("index", "efficientnet-lite0")
        engine.index()
        engine.ingest(write_csv(rows[2:], tmp_path / "b.csv"), image_roots=[SHARED])
        with pytest.raises(NotFoundError, match=f"^item '{photos_[2].stem}' has no embedding for efficientnet-lite0 "
                                                "yet$") as e:
            engine.search_item(photos_[2].stem)
        assert e.value.remedy.action == "index"
        assert engine.search_item(photos_[2].stem, crop=CropBox(0, 0, 50, 50), k=1)  # a crop is embedded now
