// A titled section of result tiles (search hits, related items) that can be re-filled; stale answers are dropped.
import { el, errorNote } from "./dom.js";
import { Masonry, tile } from "./tiles.js";

let sections = 0;

export class ResultSection {
  /** scores: show each hit's score (similarities yes, related items' blend scores no); tools: controls shown
   * beside the heading (e.g. "Search in"). */
  constructor(title, { id = "", empty = "No results.", scores = true, tools = null } = {}) {
    const headingId = `results-${++sections}`;
    this.heading = el("h2", { id: headingId }, title);
    this.status = el("p", { class: "status", "aria-live": "polite" });
    this.grid = new Masonry(title, (item) => tile(item, { score: scores }));
    this.problem = el("div");
    this.weak = el("p", { class: "note weak-match", hidden: true },
      "No close match in the catalogue; these are the nearest.");
    this.empty = empty;
    this.node = el("section", { class: "results", id: id || null, "aria-labelledby": headingId },
      el("div", { class: "results-head" }, this.heading, this.status, tools), this.problem, this.weak,
      this.grid.node);
    this.controller = null;
    this.node.dataset.state = "idle";
  }

  /** Rename the section (e.g. "More like this" -> "Similar to the selected region"). */
  title(text) {
    this.heading.textContent = text;
    this.grid.node.setAttribute("aria-label", text);
  }

  /** Show the results of `request(signal)` (a promise of {results, took_ms, weak_match}); an earlier request is
   * aborted. reveal: scroll the first results into view if they arrived below the screen (the answer to a crop or
   * an upload should not look like nothing happened). Resolves to the answer (undefined if failed or dropped). */
  async load(request, { reveal = false } = {}) {
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.node.dataset.state = "loading";
    this.node.setAttribute("aria-busy", "true");
    this.status.textContent = "Searching…";
    this.problem.replaceChildren();
    try {
      const answer = await request(controller.signal);
      if (controller.signal.aborted) return;
      const results = answer.results || [];
      this.grid.replace(results);
      this.weak.hidden = !(answer.weak_match && results.length);
      const took = typeof answer.took_ms === "number" ? ` in ${Math.round(answer.took_ms)} ms` : "";
      this.status.textContent = results.length ? `${results.length} results${took}.` : this.empty;
      this.node.dataset.state = "done";
      if (reveal) this.reveal();
      return answer;
    } catch (error) {
      if (error.name === "AbortError" || controller.signal.aborted) return;
      this.grid.replace([]);
      this.weak.hidden = true;
      this.status.textContent = "";
      this.problem.replaceChildren(errorNote(error));
      this.node.dataset.state = "error";
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        this.node.removeAttribute("aria-busy");
      }
    }
  }

  /** Scroll just enough for the first row of results to be on screen, never past this section's heading. */
  reveal() {
    const first = this.grid.node.firstElementChild;
    if (!first) return;
    const bar = document.querySelector(".topbar")?.getBoundingClientRect().bottom || 0;
    const below = first.getBoundingClientRect().bottom - window.innerHeight + 12;
    const room = this.node.getBoundingClientRect().top - bar - 8;
    if (below > 0) window.scrollBy({ top: Math.min(below, room), behavior: "instant" });
  }

  /** Hide the section: its results would only repeat another one's (related items of an item on no board). */
  redundant() {
    this.grid.replace([]);
    this.node.hidden = true;
    this.node.dataset.state = "redundant";
  }

  destroy() {
    if (this.controller) this.controller.abort();
    this.grid.destroy();
  }
}
