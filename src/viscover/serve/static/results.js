// A titled section of result tiles (search hits, related items) that can be re-filled; stale answers are dropped.
import { el, errorNote } from "./dom.js";
import { Masonry } from "./tiles.js";

let sections = 0;

export class ResultSection {
  constructor(title, { id = "", empty = "No results." } = {}) {
    const headingId = `results-${++sections}`;
    this.heading = el("h2", { id: headingId }, title);
    this.status = el("p", { class: "status", "aria-live": "polite" });
    this.grid = new Masonry(title);
    this.problem = el("div");
    this.empty = empty;
    this.node = el("section", { class: "results", id: id || null, "aria-labelledby": headingId },
      this.heading, this.status, this.problem, this.grid.node);
    this.controller = null;
    this.node.dataset.state = "idle";
  }

  /** Rename the section (e.g. "More like this" -> "Similar to the selected region"). */
  title(text) {
    this.heading.textContent = text;
    this.grid.node.setAttribute("aria-label", text);
  }

  /** Show the results of `request(signal)` (a promise of {results, took_ms}); an earlier request is aborted. */
  async load(request) {
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
      const took = typeof answer.took_ms === "number" ? ` in ${Math.round(answer.took_ms)} ms` : "";
      this.status.textContent = results.length ? `${results.length} results${took}.` : this.empty;
      this.node.dataset.state = "done";
    } catch (error) {
      if (error.name === "AbortError" || controller.signal.aborted) return;
      this.grid.replace([]);
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

  destroy() {
    if (this.controller) this.controller.abort();
    this.grid.destroy();
  }
}
