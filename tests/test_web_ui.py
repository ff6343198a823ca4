"""The web UI end to end: Playwright drives Debian's Chromium against `viscover serve` on a loopback port.

Screenshots land in tests/artifacts/ (look at them after a change to the UI)."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import httpx
import pytest

from conftest import DETECTOR, needs_data

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = [needs_data, pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM} "
                                             "(apt-get install chromium) for the browser tests")]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")


# ---- fixtures: one server and one browser for the module ------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(indexed_home, tmp_path_factory):
    """`viscover serve` over the shared indexed home (it only reads it) on a free loopback port."""
    port = _free_port()
    env = dict(os.environ, VISCOVER_URL_ALLOW_HOSTS="127.0.0.1")  # so the URL field can search the server's images
    if DETECTOR.is_file():
        env["VISCOVER_DETECTOR"] = str(DETECTOR)
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "viscover.cli.app", "serve", "--home", str(indexed_home),
                                 "--host", "127.0.0.1", "--port", str(port), "--no-auth", "--log-level", "warning"],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"viscover serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                ready = httpx.get(f"{base}/api/ready", timeout=2)
                if ready.status_code == 200:
                    assert ready.json()["items"] > 0, f"the test catalogue is empty: {ready.json()}"
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"viscover serve not ready after 90 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def api(server):
    with httpx.Client(base_url=server, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module", autouse=True)
def _artifacts():
    ARTIFACTS.mkdir(exist_ok=True)


@pytest.fixture()
def page(browser, server):
    """A desktop-sized page; the test fails on any uncaught JavaScript error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server)
    context.set_default_timeout(20_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


# ---- helpers -------------------------------------------------------------------------------------------------
def shot(pg, name: str, full_page: bool = False) -> None:
    """Save a screenshot once the images on screen have loaded."""
    pg.wait_for_function("[...document.images].filter(i => i.getBoundingClientRect().top < innerHeight)"
                         ".every(i => i.complete)")
    pg.screenshot(path=str(ARTIFACTS / f"web-ui-{name}.png"), full_page=full_page)


def tile_ids(pg, section: str = "") -> list[str]:
    return pg.eval_on_selector_all(f"{section} .grid .tile", "ts => ts.map(t => t.dataset.id)")


def scores(pg, section: str) -> list[float]:
    return [float(s) for s in pg.eval_on_selector_all(f"{section} .tile .score", "ss => ss.map(s => s.textContent)")]


def wait_results(pg, section: str = "#similar") -> None:
    pg.wait_for_selector(f"{section}[data-state=done], {section}[data-state=error]")
    state = pg.get_attribute(section, "data-state")
    assert state == "done", pg.inner_text(section)


def crop_of(request) -> tuple[int, ...]:
    return tuple(int(v) for v in parse_qs(urlparse(request.url).query)["crop"][0].split(","))


def is_search_with_crop(request) -> bool:
    return "/api/search" in request.url and "crop=" in request.url


def item_hash(item_id: str) -> str:
    return f"/#/item/{quote(item_id, safe='')}"


def drag(pg, selector: str, dx: float, dy: float) -> None:
    box = pg.locator(selector).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    pg.mouse.move(x, y)
    pg.mouse.down()
    pg.mouse.move(x + dx, y + dy, steps=6)
    pg.mouse.up()


@pytest.fixture(scope="module")
def photo(grocery_manifest) -> dict:
    """An indexed grocery photo (its id and file)."""
    with open(grocery_manifest, newline="") as f:
        return next(r for r in csv.DictReader(f) if r["split"] == "train")


# ---- tests ---------------------------------------------------------------------------------------------------
def test_grid_shows_thumbnails_and_scrolling_pages_in_the_rest(page, api):
    total = api.get("/api/items", params={"limit": 1}).json()["total"]
    limits = []
    page.on("request", lambda r: limits.append(parse_qs(urlparse(r.url).query).get("limit"))
            if "/api/items?" in r.url else None)
    page.goto("/?limit=8#/")
    page.wait_for_selector(".grid .tile img")
    page.wait_for_load_state("networkidle")
    first = page.locator(".grid .tile").count()
    assert 8 <= first < total, "the first screen should hold some pages, not the whole catalogue"
    img = page.locator(".grid .tile img").first
    assert "/thumbs/" in img.get_attribute("src") and img.get_attribute("loading") == "lazy"
    assert int(img.get_attribute("width")) > 0 and int(img.get_attribute("height")) > 0
    page.wait_for_function("[...document.querySelectorAll('.grid .tile img')].slice(0, 5)"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    shot(page, "grid")
    for _ in range(total):
        count = page.locator(".grid .tile").count()
        if count >= total:
            break
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function(f"document.querySelectorAll('.grid .tile').length > {count}")
    ids = tile_ids(page)
    assert len(ids) == total and len(set(ids)) == total, "every item exactly once"
    assert limits and all(v == ["8"] for v in limits), limits
    assert page.inner_text(".browse .status") == f"All {total} shown."
    shot(page, "grid-scrolled")


def test_upload_shows_the_image_and_scored_results(page, photo):
    page.goto("/#/")
    page.set_input_files("#file-input", photo["path"])
    page.wait_for_url("**/#/search")
    wait_results(page)
    page.wait_for_function("document.querySelector('.stage-image').naturalWidth > 0")
    ids, got = tile_ids(page, "#similar"), scores(page, "#similar")
    assert ids[0] == photo["id"] and got[0] == pytest.approx(1.0, abs=0.01), "the photo itself is the best match"
    assert len(got) == len(ids) > 1 and got == sorted(got, reverse=True)
    assert page.get_attribute("#similar .tile-link", "aria-label").endswith(f"similarity {got[0]:.2f}")
    shot(page, "upload")

    # the uploaded image has the same crop box: a smaller region is searched by POST with crop, and results change
    w, h = page.evaluate("[document.querySelector('.stage-image').naturalWidth,"
                         " document.querySelector('.stage-image').naturalHeight]")
    box = page.locator(".stage-image").bounding_box()
    with page.expect_request(lambda r: is_search_with_crop(r) and r.method == "POST") as req:
        drag(page, ".handle-se", -box["width"] * 0.6, -box["height"] * 0.6)
    x, y, cw, ch = crop_of(req.value)
    assert (x, y) == (0, 0) and 0.3 * w < cw < 0.5 * w and 0.3 * h < ch < 0.5 * h
    wait_results(page)
    assert page.inner_text("#similar h2") == "Similar to the selected region"
    assert tile_ids(page, "#similar") != ids
    shot(page, "upload-crop")


def test_dropped_and_pasted_images_search(page, photo):
    page.goto("/#/")
    page.wait_for_selector(".grid .tile")
    make_transfer = """async (url) => {
        const blob = await (await fetch(url)).blob();
        const dt = new DataTransfer();
        dt.items.add(new File([blob], "query.jpg", {type: "image/jpeg"}));
        return dt;
    }"""
    url = page.get_attribute(f".tile[data-id='{photo['id']}'] img", "src").split("?")[0].replace("/thumbs/",
                                                                                                 "/images/")
    transfer = page.evaluate_handle(make_transfer, url)
    page.evaluate("dt => window.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, cancelable: true}))",
                  transfer)
    page.wait_for_url("**/#/search")
    wait_results(page)
    assert tile_ids(page, "#similar")[0] == photo["id"]
    assert "query.jpg" in page.inner_text(".query-source")

    page.goto("/#/")
    transfer = page.evaluate_handle(make_transfer, url)
    page.evaluate("dt => document.body.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true,"
                  " cancelable: true}))", transfer)
    page.wait_for_url("**/#/search")
    wait_results(page)
    assert tile_ids(page, "#similar")[0] == photo["id"]


def test_url_field_searches_by_image_address(page, api, server, photo):
    item = api.get(f"/api/items/{photo['id']}").json()
    page.goto("/#/")
    page.fill("#url-input", server + item["image_url"])
    page.press("#url-input", "Enter")
    page.wait_for_url("**/#/search?url=*")
    wait_results(page)
    assert tile_ids(page, "#similar")[0] == item["id"]
    assert scores(page, "#similar")[0] == pytest.approx(1.0, abs=0.01)

    page.fill("#url-input", "not a web address")
    page.press("#url-input", "Enter")
    assert "not a web address" in page.inner_text("#alert")
    assert page.is_visible("#alert")


def test_dragging_the_crop_box_searches_that_region(page, api, photo):
    item = api.get(f"/api/items/{photo['id']}").json()
    W, H = item["width"], item["height"]
    page.goto(item_hash(item["id"]))
    wait_results(page)
    whole = tile_ids(page, "#similar")
    assert whole and item["id"] not in whole, "more like this leaves out the item itself"
    shot(page, "item")

    # shrink from the bottom-right corner to the middle: the box is sent in ORIGINAL image pixels
    box = page.locator(".stage-image").bounding_box()
    with page.expect_request(is_search_with_crop) as req:
        drag(page, ".handle-se", -box["width"] / 2, -box["height"] / 2)
    x, y, w, h = crop_of(req.value)
    assert (x, y) == (0, 0) and abs(w - W / 2) <= 0.03 * W and abs(h - H / 2) <= 0.03 * H
    assert parse_qs(urlparse(req.value.url).query)["item"] == [item["id"]]
    wait_results(page)
    corner = tile_ids(page, "#similar")
    assert page.inner_text("#similar h2") == "Similar to the selected region"
    assert corner != whole
    shot(page, "item-crop")

    # move the box right and down by a quarter of the image: same size, new place, new results
    with page.expect_request(is_search_with_crop) as req:
        drag(page, ".crop", box["width"] / 4, box["height"] / 4)
    x2, y2, w2, h2 = crop_of(req.value)
    assert (w2, h2) == (w, h) and abs(x2 - W / 4) <= 0.03 * W and abs(y2 - H / 4) <= 0.03 * H
    wait_results(page)
    assert tile_ids(page, "#similar") != corner

    # back to the whole image
    page.click("text=Search the whole image")
    wait_results(page)
    assert tile_ids(page, "#similar") == whole


def test_item_page_shows_related_items_and_boards(page, api):
    board = api.get("/api/boards", params={"limit": 1}).json()["boards"][0]
    mates = {i["id"] for i in api.get(f"/api/boards/{board['name']}", params={"limit": 500}).json()["items"]}
    item_id = board["cover"]["id"]
    page.goto(item_hash(item_id))
    wait_results(page, "#related")
    related = tile_ids(page, "#related")
    assert related and item_id not in related
    assert mates & set(related), "items saved to the same board are related"
    assert scores(page, "#related") == [], "blend scores are not similarities: not shown next to them"
    assert page.get_attribute("#related .tile-link", "aria-label").find("similarity") < 0
    assert all(0 <= s <= 1.0 + 1e-6 for s in scores(page, "#similar")), "More like this shows cosine similarity"
    shot(page, "item-related", full_page=True)

    page.click(f".item-boards a:text-is('{board['name']}')")
    page.wait_for_url(f"**/#/board/{board['name']}")
    # the item page's own result grids match `.grid .tile` too: wait for the board page to be drawn first
    page.wait_for_selector(f"h1:text-is('Board: {board['name']}')")
    page.wait_for_selector(".grid .tile")
    page.wait_for_load_state("networkidle")
    assert set(tile_ids(page)) == mates
    assert page.inner_text("h1") == f"Board: {board['name']}"
    shot(page, "board")


def test_detected_object_dots_set_the_crop(page, api):
    if not api.get("/api/info").json()["features"]["detection"]:
        pytest.skip(f"no object detector (expected at {DETECTOR})")
    items = api.get("/api/items", params={"limit": 500}).json()["items"]
    for item in items:
        objects = api.get("/api/detect", params={"item": item["id"]}).json()["objects"]
        if objects:
            break
    else:
        pytest.skip("the detector finds no object in the test catalogue")
    page.goto(item_hash(item["id"]))
    wait_results(page)
    page.wait_for_selector(".dot")
    best = max(objects, key=lambda o: o["score"])
    dot = page.locator(".dot").first
    assert best["label"] in dot.get_attribute("aria-label")
    with page.expect_request(is_search_with_crop) as req:
        dot.click()
    assert list(crop_of(req.value)) == best["box"]
    wait_results(page)
    shot(page, "item-dots")


def test_keyboard_opens_a_tile_and_drives_the_crop_box(page, api):
    page.goto("/#/")
    page.wait_for_selector(".grid .tile")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('tile-link')"):
            break
    else:
        pytest.fail("Tab never reached a tile")
    item_id = page.evaluate("document.activeElement.closest('.tile').dataset.id")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused tile shows a focus ring"
    shot(page, "keyboard-focus")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{item_hash(item_id)[1:]}")
    wait_results(page)
    item = api.get(f"/api/items/{item_id}").json()
    W, H = item["width"], item["height"]
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('crop')"):
            break
    else:
        pytest.fail("Tab never reached the crop box")
    step = max(1, round(max(W, H) * 0.02))
    for _ in range(5):
        page.keyboard.press("Shift+ArrowLeft")
        page.keyboard.press("Shift+ArrowUp")
    page.keyboard.press("ArrowRight")
    with page.expect_request(is_search_with_crop) as req:
        page.keyboard.press("Enter")
    assert crop_of(req.value) == (step, 0, W - 5 * step, H - 5 * step)
    wait_results(page)

    # back in the grid, the tile that was opened has the focus again
    page.go_back()
    page.wait_for_selector(".browse .grid")
    assert page.evaluate("document.activeElement.closest('.tile')?.dataset.id") == item_id


def test_api_errors_are_shown_in_an_alert(page, api, tmp_path):
    detail = api.get("/api/items/no-such-item").json()["detail"]
    page.goto("/#/item/no-such-item")
    assert page.inner_text("main [role=alert]") == detail

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not a JPEG")
    expected = api.post("/api/search", files={"file": ("broken.jpg", broken.read_bytes(), "image/jpeg")}).json()
    page.set_input_files("#file-input", str(broken))
    page.wait_for_selector("#similar [role=alert]")
    assert page.inner_text("#similar [role=alert]") == expected["detail"]
    shot(page, "error")


def test_phone_screen_has_two_columns_no_keyboard_hints_and_a_touch_crop_box(browser, server, photo):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, base_url=server)
    try:
        pg = context.new_page()
        pg.goto("/#/")
        pg.wait_for_selector(".grid .tile img")
        lefts = pg.eval_on_selector_all(".grid .tile", "ts => ts.map(t => Math.round(t.getBoundingClientRect().left))")
        assert len(set(lefts)) >= 2, f"at least two columns of tiles on a phone, got lefts {sorted(set(lefts))}"
        no_scroll = "document.documentElement.scrollWidth <= window.innerWidth"
        assert pg.evaluate(no_scroll), "no horizontal scrolling"
        shot(pg, "phone-grid")

        pg.goto(item_hash(photo["id"]))
        pg.wait_for_selector("#similar[data-state=done]")
        assert pg.evaluate(no_scroll)
        hint = pg.inner_text(".cropper figcaption")
        assert "Drag" in hint and "arrow" not in hint.lower() and "Enter" not in hint, \
            f"no keyboard hints on a touch screen: {hint!r}"
        # a one-finger drag on the bottom-right handle (touch events become pointer events)
        handle = pg.locator(".handle-se").bounding_box()
        x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
        cdp = context.new_cdp_session(pg)
        with pg.expect_request(is_search_with_crop) as req:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
            for i in range(1, 6):
                cdp.send("Input.dispatchTouchEvent", {"type": "touchMove",
                                                      "touchPoints": [{"x": x - 30 * i, "y": y - 30 * i}]})
            cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        x0, y0, w, h = crop_of(req.value)
        width = pg.evaluate("document.querySelector('.stage-image').naturalWidth")
        assert (x0, y0) == (0, 0) and 0 < w < width and 0 < h
        pg.wait_for_selector("#similar[data-state=done]")
        shot(pg, "phone-item", full_page=False)

        pg.goto("/#/search")
        note = pg.inner_text("main .note")
        assert "Upload" in note and "Ctrl" not in note, f"no keyboard shortcut offered on a phone: {note!r}"
    finally:
        context.close()


# ---- issue 12: the first ten minutes ------------------------------------------------------------------------
def _catalogue(api) -> dict[str, dict]:
    return {i["id"]: i for i in api.get("/api/items", params={"limit": 500}).json()["items"]}


def _grid_changed(pg, before: list[str]) -> None:
    pg.wait_for_function("([ids]) => { const now = [...document.querySelectorAll('.browse .grid .tile')]"
                         ".map(t => t.dataset.id); return now.length && now.join() !== ids.join(); }", arg=[before])
    pg.wait_for_load_state("networkidle")


def test_home_grid_opens_mixed_and_filters_by_domain_label_and_board(page, api):
    items = _catalogue(api)
    ingest = list(items)
    page.goto("/?limit=8#/")
    page.wait_for_selector(".browse .grid .tile img")
    page.wait_for_load_state("networkidle")
    first = tile_ids(page, ".browse")[:8]
    kinds = {(items[i]["domain"], items[i]["labels"].get("product")) for i in first}
    assert len(kinds) >= 3, f"the first screen mixes the catalogue, not {first}"
    shot(page, "grid-mixed")

    page.select_option("#filter-domain", "catalog")
    _grid_changed(page, first)
    catalog = tile_ids(page, ".browse")
    assert sorted(catalog) == sorted(i for i, v in items.items() if v["domain"] == "catalog")
    assert page.inner_text(".browse .status") == f"All {len(catalog)} shown."
    page.select_option("#filter-domain", "")
    page.select_option("#filter-label-product", "Banana")
    _grid_changed(page, catalog)
    page.wait_for_function("document.querySelectorAll('.browse .grid .tile').length === 7")
    assert {items[i]["labels"]["product"] for i in tile_ids(page, ".browse")} == {"Banana"}
    shot(page, "grid-filtered")
    page.select_option("#filter-label-product", "")
    board = api.get("/api/boards", params={"limit": 1}).json()["boards"][0]
    page.select_option("#filter-board", board["name"])
    page.wait_for_function(f"document.querySelectorAll('.browse .grid .tile').length === {board['size']}")
    assert all(board["name"] in items[i]["boards"] for i in tile_ids(page, ".browse"))
    page.select_option("#filter-board", "")

    page.wait_for_function("document.querySelectorAll('.browse .grid .tile').length >= 8")
    before = tile_ids(page, ".browse")
    page.click("button:text-is('Shuffle')")
    _grid_changed(page, before)
    page.select_option("#sort", "ingest")
    page.wait_for_function(f"document.querySelector('.browse .grid .tile')?.dataset.id === {ingest[0]!r}")
    assert tile_ids(page, ".browse")[:8] == ingest[:8]


def test_boards_page_in_natural_order(page, api):
    names = [b["name"] for b in api.get("/api/boards", params={"limit": 500}).json()["boards"]]
    page.goto("/#/boards")
    page.wait_for_selector(".grid .tile")
    page.wait_for_load_state("networkidle")
    captions = page.eval_on_selector_all(".grid .tile .caption", "cs => cs.map(c => c.textContent.split(' · ')[0])")
    assert captions == names
    shot(page, "boards")


def test_related_items_are_hidden_when_they_repeat_more_like_this(page, photo):
    page.goto(item_hash(photo["id"]))  # a grocery photo: on no board
    wait_results(page)
    page.wait_for_selector("#related[data-state=redundant]", state="attached")
    assert not page.is_visible("#related"), "related items would repeat 'More like this'"
    shot(page, "item-no-related", full_page=True)


def test_photo_to_catalogue_search_on_item_and_upload_pages(page, api, photo):
    items = _catalogue(api)
    page.goto(item_hash(photo["id"]))
    wait_results(page)
    with page.expect_request(lambda r: "/api/search" in r.url and "domain=catalog" in r.url):
        page.select_option("#similar .search-in", "catalog")
    wait_results(page)
    ids = tile_ids(page, "#similar")
    assert ids and all(items[i]["domain"] == "catalog" for i in ids)
    assert items[ids[0]]["labels"]["product"] == photo["label.product"], "the photo's product comes first"
    shot(page, "item-catalogue-only")

    page.set_input_files("#file-input", photo["path"])
    page.wait_for_url("**/#/search")
    wait_results(page)
    page.select_option("#similar .search-in", "catalog")
    page.wait_for_function("[...document.querySelectorAll('#similar .tile')].length > 0 && "
                           "document.querySelector('#similar').dataset.state === 'done' && "
                           "document.querySelector('#similar .search-in').value === 'catalog'")
    wait_results(page)
    assert all(items[i]["domain"] == "catalog" for i in tile_ids(page, "#similar"))


def test_upload_unlike_the_catalogue_says_weak_match(page):
    import csv as _csv

    from conftest import CLOTHING, clothing_subset

    used = {r["id"] for r in clothing_subset()}
    with open(CLOTHING / "images.csv", newline="") as f:
        row = next(r for r in _csv.DictReader(f) if r["image"] not in used)
    page.goto("/#/")
    page.set_input_files("#file-input", str(CLOTHING / "images" / f"{row['image']}.jpg"))
    page.wait_for_url("**/#/search")
    wait_results(page)
    assert not page.is_visible("#similar .weak-match"), "clothing photos are in the test catalogue"
    page.select_option("#similar .search-in", "catalog")  # grocery catalogue images only: nothing like a shirt
    page.wait_for_selector("#similar .weak-match")
    wait_results(page)
    assert page.inner_text("#similar .weak-match") == "No close match in the catalogue; these are the nearest."
    shot(page, "upload-weak-match")


def _in_view(pg, selector: str) -> bool:
    return pg.eval_on_selector(selector, "e => { const r = e.getBoundingClientRect(); "
                               "return r.top >= 0 && r.bottom <= innerHeight && r.height > 0; }")


def test_results_of_an_upload_or_crop_are_on_screen_at_1280x900(page, photo):
    page.goto("/#/")
    page.set_input_files("#file-input", photo["path"])
    page.wait_for_url("**/#/search")
    wait_results(page)
    page.wait_for_timeout(300)  # a smooth scroll, if any, settles
    assert _in_view(page, "#similar .tile"), "the first result is on screen without scrolling"
    shot(page, "upload-fold")

    page.goto(item_hash(photo["id"]))
    wait_results(page)
    box = page.locator(".stage-image").bounding_box()
    with page.expect_request(is_search_with_crop):
        drag(page, ".handle-se", -box["width"] / 3, -box["height"] / 3)
    wait_results(page)
    page.wait_for_timeout(300)
    assert _in_view(page, "#similar .tile"), "the results of a crop are on screen when they arrive"
    stage = page.locator(".stage").bounding_box()
    assert stage["y"] + stage["height"] > 100, "and the image is still there to crop again"
    shot(page, "item-crop-fold")


def test_tiles_are_captioned_by_the_product_not_its_category(page, api):
    """Grocery tiles read "Apple" for a Golden-Delicious photo and clothing tiles "T Shirt": a tile now says the
    name the API gives (title, most specific label as written, else the file name)."""
    items = _catalogue(api)
    page.goto("/#/")
    page.wait_for_selector(".browse .grid .tile img")
    page.wait_for_load_state("networkidle")
    for task, value in (("product", "Golden-Delicious"), ("category", "T-Shirt")):
        before = tile_ids(page, ".browse")
        page.select_option(f"#filter-label-{task}", value)
        _grid_changed(page, before)
        shown = tile_ids(page, ".browse")
        captions = page.eval_on_selector_all(".browse .grid .tile .caption", "cs => cs.map(c => c.textContent)")
        expected = [items[i]["title"] or value for i in shown]
        assert captions == expected, (captions, expected)
        shot(page, f"captions-{value.lower()}")
        page.select_option(f"#filter-label-{task}", "")
