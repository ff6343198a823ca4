// The item page: the image large with a crop box (and detected-object dots), "More like this" that follows the
// crop, related items, and the item's boards.
import { api, features, imageUrl } from "./api.js";
import { Cropper } from "./cropper.js";
import { el, errorNote, itemName } from "./dom.js";
import { searchIn } from "./filters.js";
import { ResultSection } from "./results.js";

const K = 24;

/** Facts about an item as a definition list. */
function details(item) {
  const rows = [["Id", item.id], ["Domain", item.domain], ["Split", item.split],
    ...Object.entries(item.labels || {}).map(([task, label]) => [task[0].toUpperCase() + task.slice(1), label]),
    ["Size", item.width && item.height ? `${item.width}×${item.height} px` : null]];
  return el("dl", { class: "facts" }, rows.filter(([, v]) => v).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

/** Links to the boards an item is saved to. */
function boardsOf(item) {
  const boards = item.boards || [];
  return el("section", { class: "item-boards", "aria-labelledby": "item-boards-h" },
    el("h2", { id: "item-boards-h" }, "Boards"),
    boards.length
      ? el("ul", { class: "chips" }, boards.map((b) => el("li", {},
        el("a", { class: "chip", href: `#/board/${encodeURIComponent(b)}` }, b))))
      : el("p", { class: "note" }, "Not saved to any board."));
}

/** #/item/<id> */
export function itemView(id) {
  const node = el("article", { class: "item-page" }, el("p", { class: "status" }, "Loading…"));
  const parts = [];
  const heading = el("h1", { tabindex: "-1" }, "Item");
  render();
  return { node, heading, destroy: () => parts.forEach((p) => p.destroy()) };

  async function render() {
    let item;
    try {
      item = await api.item(id);
    } catch (error) {
      node.replaceChildren(el("h1", { tabindex: "-1" }, "Item not found"), errorNote(error),
        el("p", {}, el("a", { href: "#/" }, "Back to the catalogue")));
      return;
    }
    const name = itemName(item);
    heading.textContent = name;
    document.title = `${name} · viscover`;
    let crop = null; // the region searched, null for the whole image
    let scope = {}; // {domain} when "Search in" narrows the results, e.g. a photo -> only catalogue images
    const searchRegion = ({ reveal = false } = {}) => {
      similar.title(crop ? "Similar to the selected region" : "More like this");
      similar.load((signal) => api.searchItem(item.id, crop, K, signal, scope), { reveal });
    };
    const similar = new ResultSection("More like this", { id: "similar", empty: "No similar items.",
      tools: searchIn((filters) => {
        scope = filters;
        searchRegion();
      }) });
    parts.push(similar);
    const cropper = new Cropper({ src: imageUrl(item), alt: name, width: item.width, height: item.height,
      onRelease: (region) => {
        crop = region;
        reset.hidden = !crop;
        searchRegion({ reveal: true });
      } });
    const reset = el("button", { type: "button", class: "button", hidden: true,
      onclick: () => {
        cropper.set(cropper.full());
        crop = null;
        reset.hidden = true;
        searchRegion({ reveal: true });
      } }, "Search the whole image");
    const aside = el("div", { class: "item-info" }, heading,
      item.description ? el("p", { class: "description" }, item.description) : null,
      details(item), reset, boardsOf(item));
    node.replaceChildren(el("div", { class: "item-top" }, cropper.node, aside), similar.node);
    searchRegion();

    const feats = await features();
    if (feats.related !== false) {
      // ranked by a blend of board walks, shared boards and looks: no score shown, it is not a similarity
      const related = new ResultSection("Related items", { id: "related", scores: false,
        empty: "No related items yet: related items come from boards this item shares with others." });
      parts.push(related);
      node.append(related.node);
      related.load((signal) => api.related(item.id, K, signal)).then((answer) => {
        if (answer?.visual_only) related.redundant(); // an item on no board: they would repeat "More like this"
      });
    }
    if (feats.detection) {
      try {
        const found = await api.detectItem(item.id);
        await cropper.ready;
        cropper.showObjects(found.objects || []);
      } catch (error) {
        cropper.node.append(errorNote(`Object detection failed: ${error.message}`));
      }
    }
  }
}
