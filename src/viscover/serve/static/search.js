// The search page: the query image (uploaded, dropped, pasted, or by URL) with the same crop box, and its results.
import { api, features } from "./api.js";
import { Cropper } from "./cropper.js";
import { el, errorNote } from "./dom.js";
import { searchIn } from "./filters.js";
import { ResultSection } from "./results.js";

const K = 30;
let pendingFile = null;

/** Remember an image file to search with; the caller then routes to #/search. */
export function setQueryFile(file) {
  pendingFile = file;
}

/** The route that searches by an image URL. */
export function urlSearchHref(url) {
  return `#/search?url=${encodeURIComponent(url)}`;
}

/** #/search (the last uploaded file) or #/search?url=... */
export function searchView(params) {
  const url = params.get("url");
  const file = url ? null : pendingFile;
  const heading = el("h1", { tabindex: "-1" }, "Search by image");
  const node = el("article", { class: "item-page search-page" });
  if (!url && !file) {
    node.append(heading, el("p", { class: "note" }, "Choose an image with Upload",
      el("span", { class: "kbd-hint" }, ", drop one anywhere on the page, paste one (Ctrl+V),"),
      " or enter an image URL above."));
    return { node, heading, destroy() {} };
  }
  const objectUrl = file ? URL.createObjectURL(file) : null;
  let crop = null; // the region searched, null for the whole image
  let scope = {}; // {domain} when "Search in" narrows the results, e.g. only catalogue images
  const run = () => {
    results.title(crop ? "Similar to the selected region" : "Results");
    results.load((signal) => file ? api.searchFile(file, crop, K, signal, scope)
      : api.searchUrl(url, crop, K, signal, scope), { reveal: true });
  };
  const results = new ResultSection("Results", { id: "similar", empty: "No similar items.",
    tools: searchIn((filters) => {
      scope = filters;
      run();
    }) });
  const cropper = new Cropper({ src: objectUrl || url, alt: file ? `Uploaded image ${file.name}` : `Image at ${url}`,
    onRelease: (region) => {
      crop = region;
      whole.hidden = !crop;
      run();
    } });
  const source = file ? `Uploaded: ${file.name || "pasted image"}` : `Image URL: ${url}`;
  const whole = el("button", { type: "button", class: "button", hidden: true, onclick: () => {
    cropper.set(cropper.full());
    crop = null;
    whole.hidden = true;
    run();
  } }, "Search the whole image");
  const info = el("div", { class: "item-info" }, heading, el("p", { class: "query-source" }, source), whole);
  node.append(el("div", { class: "item-top" }, cropper.node, info), results.node);
  run();
  if (file) {
    features().then(async (feats) => {
      await cropper.ready;
      if (!feats.detection || cropper.broken) return; // an image the browser cannot show is reported by the search
      try {
        const found = await api.detectFile(file);
        cropper.showObjects(found.objects || []);
      } catch (error) {
        cropper.node.append(errorNote(`Object detection failed: ${error.message}`));
      }
    });
  }
  return {
    node, heading,
    destroy() {
      results.destroy();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    },
  };
}
