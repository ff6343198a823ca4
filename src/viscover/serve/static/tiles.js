// Thumbnail tiles in a masonry grid (CSS grid rows spanned by each tile's aspect ratio), and infinite paging.
import { thumbUrl } from "./api.js";
import { el, errorNote, itemName } from "./dom.js";

const ROW = 4; // px: the grid's row unit; a tile spans as many rows as its height needs
const CAPTION = 30; // px: the caption line under each thumbnail
const GAP = 14; // px: vertical space between tiles

/** The hash route of an item page. */
export function itemHref(id) {
  return `#/item/${encodeURIComponent(id)}`;
}

/** One tile: a link (keyboard focusable) to the item page with a lazily loaded thumbnail and, for search hits, the
 * similarity. `href` and `caption` override the link and caption (board tiles use the cover item's thumbnail);
 * score: false leaves the score out (related items' blend scores are not similarities). */
export function tile(item, { href = itemHref(item.id), caption = itemName(item), score = true } = {}) {
  const name = itemName(item);
  const width = item.width || 320;
  const height = item.height || 320;
  const hasScore = score && typeof item.score === "number";
  const label = hasScore ? `${caption}, similarity ${item.score.toFixed(2)}` : caption;
  const link = el("a", { class: "tile-link", href, "aria-label": label, title: item.id },
    el("img", {
      src: thumbUrl(item, 320),
      srcset: `${thumbUrl(item, 320)} 320w, ${thumbUrl(item, 640)} 640w`,
      sizes: "(max-width: 500px) 50vw, 260px",
      width, height, alt: name, loading: "lazy", decoding: "async",
    }),
    hasScore ? el("span", { class: "score", "aria-hidden": "true" }, item.score.toFixed(2)) : null,
    item.duplicates && item.duplicates.length
      ? el("span", { class: "dupes", title: `Near-duplicates folded in:\n${item.duplicates.join("\n")}`,
        "aria-hidden": "true" }, `+${item.duplicates.length}`) : null,
    el("span", { class: "caption", "aria-hidden": "true" }, caption));
  const node = el("li", { class: "tile", "data-id": item.id }, link);
  node.dataset.ratio = String(height / width);
  return node;
}

/** A masonry grid: tiles keep reading order (DOM order) and fill the shortest column, with no layout shift. */
export class Masonry {
  /** label: the grid's accessible name; make(item): its tile (default: an item tile). */
  constructor(label, make = tile) {
    this.make = make;
    this.node = el("ul", { class: "grid", "aria-label": label });
    this.columnWidth = 0;
    this.observer = new ResizeObserver(() => this.layout());
    this.observer.observe(this.node);
  }

  /** Append items as tiles. */
  add(items) {
    const tiles = items.map((item) => this.make(item));
    this.node.append(...tiles);
    this.measure();
    for (const t of tiles) this.size(t);
  }

  /** Replace all tiles. */
  replace(items) {
    this.node.replaceChildren();
    this.add(items);
  }

  get count() {
    return this.node.children.length;
  }

  measure() {
    const columns = getComputedStyle(this.node).gridTemplateColumns.split(" ").filter(Boolean);
    this.columnWidth = parseFloat(columns[0]) || this.node.clientWidth || 240;
  }

  size(t) {
    const rows = Math.ceil((this.columnWidth * Number(t.dataset.ratio) + CAPTION + GAP) / ROW);
    t.style.gridRowEnd = `span ${rows}`;
  }

  layout() {
    const before = this.columnWidth;
    this.measure();
    if (Math.abs(before - this.columnWidth) > 0.5) for (const t of this.node.children) this.size(t);
  }

  destroy() {
    this.dead = true;
    this.observer.disconnect();
  }
}

/** Infinite scroll: load pages into a Masonry while a sentinel under it comes near the viewport. */
export class Pager {
  /** fetchPage(offset) resolves to {items, next_offset, total}; `empty` is said when there is nothing. */
  constructor(grid, fetchPage, status, empty = "Nothing here yet.") {
    this.empty = empty;
    this.grid = grid;
    this.fetchPage = fetchPage;
    this.status = status;
    this.next = 0;
    this.total = null;
    this.loading = false;
    this.sentinel = el("div", { class: "sentinel", "aria-hidden": "true" });
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.load();
    }, { rootMargin: "0px 0px 800px 0px" });
  }

  start() {
    this.observer.observe(this.sentinel);
  }

  async load() {
    if (this.loading || this.next === null) return;
    this.loading = true;
    this.sentinel.classList.add("loading");
    try {
      const page = await this.fetchPage(this.next);
      if (this.dead) return; // replaced meanwhile (e.g. the filters changed): its answer is no longer wanted
      this.grid.add(page.items || []);
      this.next = page.next_offset ?? null;
      this.total = page.total ?? this.grid.count;
      this.report();
    } catch (error) {
      if (this.dead) return;
      this.next = null;
      this.sentinel.replaceWith(errorNote(error));
      return;
    } finally {
      this.loading = false;
      this.sentinel.classList.remove("loading");
    }
    if (this.next !== null) {
      // re-observing reports the sentinel again, so a page that did not fill the screen loads the next one
      this.observer.unobserve(this.sentinel);
      this.observer.observe(this.sentinel);
    } else {
      this.observer.disconnect();
    }
  }

  report() {
    if (!this.status) return;
    this.status.textContent = this.total === 0 ? this.empty
      : this.next === null ? `All ${this.total} shown.` : `Showing ${this.grid.count} of ${this.total}.`;
  }

  destroy() {
    this.dead = true;
    this.observer.disconnect();
  }
}
