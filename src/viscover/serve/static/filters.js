// Filter controls from the catalogue's facets: labelled selects for the catalogue grid (domain, a label per task,
// board) and the "Search in" select of result sections (e.g. a photo -> only catalogue images).
import { facets } from "./api.js";
import { el } from "./dom.js";

/** A labelled <select>: the first option (value "") is `any`, then each value with its item count. */
export function facetSelect({ id, label, any, counts, value = "", onChange }) {
  const select = el("select", { id, class: "facet", onchange: () => onChange(select.value) },
    el("option", { value: "" }, any),
    Object.entries(counts).map(([v, n]) => el("option", { value: v, selected: v === value }, `${v} (${n})`)));
  return el("label", { class: "field" }, el("span", { class: "field-label" }, label), select);
}

/** The "Search in" select of a result section: all items or one domain; nothing when there is only one domain.
 * onChange receives the filters to search with ({} or {domain}). */
export function searchIn(onChange) {
  const slot = el("span", { class: "tools" });
  facets().then((f) => {
    if (Object.keys(f.domains).length < 2) return;
    const select = el("select", { class: "search-in facet", "aria-label": "Search in",
      onchange: () => onChange(select.value ? { domain: select.value } : {}) },
    el("option", { value: "" }, "All items"),
    Object.entries(f.domains).map(([d, n]) => el("option", { value: d }, `Only ${d} (${n})`)));
    slot.append(el("label", { class: "field" }, el("span", { class: "field-label" }, "Search in"), select));
  });
  return slot;
}
