// Browsing views: the catalogue grid, the list of boards and one board, each paged in by infinite scroll.
import { api } from "./api.js";
import { el } from "./dom.js";
import { Masonry, Pager, tile } from "./tiles.js";

/** Items per page: ?limit=N in the page's address (for tests and slow links), else 40. */
export function pageSize() {
  const n = Number(new URLSearchParams(location.search).get("limit"));
  return Number.isInteger(n) && n > 0 ? Math.min(n, 200) : 40;
}

/** A heading, a status line, a masonry grid and a pager that fills it. */
function pagedGrid(title, label, fetchPage, make, empty) {
  const status = el("p", { class: "status", "aria-live": "polite" }, "Loading…");
  const grid = new Masonry(label, make);
  const pager = new Pager(grid, fetchPage, status, empty);
  const heading = el("h1", { tabindex: "-1" }, title);
  const node = el("section", { class: "browse" }, el("div", { class: "page-head" }, heading, status),
    grid.node, pager.sentinel);
  pager.start();
  return { node, heading, destroy: () => { pager.destroy(); grid.destroy(); } };
}

/** #/ : every item, newest pages appended as the reader scrolls. */
export function catalogueView() {
  const limit = pageSize();
  return pagedGrid("Catalogue", "Catalogue items", (offset) => api.items(offset, limit), undefined,
    "The catalogue is empty: add images with `viscover ingest FOLDER` and `viscover index`, or POST /api/items.");
}

/** #/boards : boards as tiles showing their cover item. */
export function boardsView() {
  const limit = pageSize();
  const boardTile = (board) => {
    const caption = `${board.name} · ${board.size} item${board.size === 1 ? "" : "s"}`;
    const href = `#/board/${encodeURIComponent(board.name)}`;
    if (board.cover) return tile({ ...board.cover, score: undefined, duplicates: [] }, { href, caption });
    const node = el("li", { class: "tile" }, el("a", { class: "tile-link empty-cover", href, "aria-label": caption },
      el("span", { class: "caption" }, caption)));
    node.dataset.ratio = "0.75";
    return node;
  };
  return pagedGrid("Boards", "Boards", async (offset) => {
    const page = await api.boards(offset, limit);
    return { items: page.boards, total: page.total, next_offset: page.next_offset };
  }, boardTile, "No boards yet: give items a `boards` column when you ingest them.");
}

/** #/board/<name> : the items saved to one board. */
export function boardView(name) {
  const limit = pageSize();
  const view = pagedGrid(`Board: ${name}`, `Items on board ${name}`, async (offset) => {
    const page = await api.board(name, offset, limit);
    return { items: page.items, total: page.total, next_offset: page.next_offset };
  });
  return view;
}
