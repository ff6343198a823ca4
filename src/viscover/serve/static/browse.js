// Browsing views: the catalogue grid (sorted, shuffled, filtered), the list of boards and one board, each paged in
// by infinite scroll.
import { api, facets } from "./api.js";
import { el } from "./dom.js";
import { facetSelect } from "./filters.js";
import { Masonry, Pager, tile } from "./tiles.js";

/** Items per page: ?limit=N in the page's address (for tests and slow links), else 40. */
export function pageSize() {
  const n = Number(new URLSearchParams(location.search).get("limit"));
  return Number.isInteger(n) && n > 0 ? Math.min(n, 200) : 40;
}

/** A masonry grid and the pager that fills it, under `status`. */
function pagedList(label, fetchPage, status, make, empty) {
  const grid = new Masonry(label, make);
  const pager = new Pager(grid, fetchPage, status, empty);
  pager.start();
  return { nodes: [grid.node, pager.sentinel], destroy: () => { pager.destroy(); grid.destroy(); } };
}

/** A heading, a status line, a masonry grid and a pager that fills it. */
function pagedGrid(title, label, fetchPage, make, empty) {
  const status = el("p", { class: "status", "aria-live": "polite" }, "Loading…");
  const list = pagedList(label, fetchPage, status, make, empty);
  const heading = el("h1", { tabindex: "-1" }, title);
  const node = el("section", { class: "browse" }, el("div", { class: "page-head" }, heading, status), ...list.nodes);
  return { node, heading, destroy: () => list.destroy() };
}

/** #/ : every item, mixed (a seeded shuffle, the same on every page) or in catalogue order, filtered by domain,
 * labels and board; pages appended as the reader scrolls. */
export function catalogueView() {
  const limit = pageSize();
  const state = { order: "mixed", seed: 0, domain: "", labels: {}, board: "" };
  const status = el("p", { class: "status", "aria-live": "polite" }, "Loading…");
  const heading = el("h1", { tabindex: "-1" }, "Catalogue");
  const body = el("div", { class: "browse-body" });
  let list = null;
  const load = () => {
    list?.destroy();
    status.textContent = "Loading…";
    const filters = { order: state.order, seed: state.order === "mixed" ? state.seed : null, domain: state.domain,
      board: state.board, label: Object.entries(state.labels).filter(([, v]) => v).map(([t, v]) => `${t}=${v}`) };
    list = pagedList("Catalogue items", (offset) => api.items(offset, limit, filters), status, undefined,
      empty(state));
    body.replaceChildren(...list.nodes);
  };
  const sort = el("select", { id: "sort", class: "facet", onchange: () => { state.order = sort.value; load(); } },
    el("option", { value: "mixed" }, "Mixed"), el("option", { value: "ingest" }, "Catalogue order"));
  const shuffle = el("button", { type: "button", class: "button", onclick: () => {
    state.order = sort.value = "mixed";
    state.seed = Math.floor(Math.random() * 2 ** 31);
    load();
  } }, "Shuffle");
  const tools = el("div", { class: "toolbar", role: "group", "aria-label": "Sort and filter the catalogue" },
    el("label", { class: "field" }, el("span", { class: "field-label" }, "Order"), sort), shuffle);
  facets().then((f) => {
    const pick = (key) => (value) => { state[key] = value; load(); };
    if (Object.keys(f.domains).length > 1) {
      tools.append(facetSelect({ id: "filter-domain", label: "Domain", any: "All domains", counts: f.domains,
        onChange: pick("domain") }));
    }
    for (const [task, counts] of Object.entries(f.labels)) {
      tools.append(facetSelect({ id: `filter-label-${task}`, label: task[0].toUpperCase() + task.slice(1),
        any: `Any ${task}`, counts, onChange: (value) => { state.labels[task] = value; load(); } }));
    }
    if (Object.keys(f.boards).length) {
      tools.append(facetSelect({ id: "filter-board", label: "Board", any: "Any board", counts: f.boards,
        onChange: pick("board") }));
    }
  });
  load();
  const node = el("section", { class: "browse" }, el("div", { class: "page-head" }, heading, status), tools, body);
  return { node, heading, destroy: () => list?.destroy() };
}

/** What an empty grid says: an empty catalogue, or nothing matching the filters. */
function empty(state) {
  const filtered = state.domain || state.board || Object.values(state.labels).some(Boolean);
  return filtered ? "No items match these filters."
    : "The catalogue is empty: add images with `viscover ingest FOLDER` and `viscover index`, or POST /api/items.";
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
