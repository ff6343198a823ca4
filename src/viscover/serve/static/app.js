// viscover's web UI: hash routes (#/, #/search, #/item/<id>, #/boards, #/board/<name>) and the header's
// search inputs (file button, drop anywhere, paste, URL field). Vanilla ES modules, no build step, works offline.
import { boardView, boardsView, catalogueView } from "./browse.js";
import { clearError, el, showError } from "./dom.js";
import { itemView } from "./item.js";
import { searchView, setQueryFile, urlSearchHref } from "./search.js";

const main = document.getElementById("main");
let current = null; // the view on screen: {node, heading, destroy}
let catalogue = null; // the catalogue view is kept while away, so going back keeps its pages and scroll position
let catalogueScroll = 0;
let catalogueFocus = null; // the tile that was opened, focused again on the way back

/** The view for a hash such as "#/item/abc" (ids and names are percent-encoded in the hash). */
function route(hash) {
  const [path, search = ""] = hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(search);
  const parts = path.split("/").filter(Boolean);
  let rest = parts.slice(1).join("/");
  try {
    rest = decodeURIComponent(rest);
  } catch {
    // a malformed escape: use the text as typed
  }
  switch (parts[0]) {
    case undefined:
      return "catalogue";
    case "item":
      return () => itemView(rest);
    case "search":
      return () => searchView(params);
    case "boards":
      return () => boardsView();
    case "board":
      return () => boardView(rest);
    default:
      return () => ({ node: el("section", {}, el("h1", { tabindex: "-1" }, "Page not found"),
        el("p", {}, `Nothing at “${hash}”. `, el("a", { href: "#/" }, "Back to the catalogue"))), destroy() {} });
  }
}

/** Show the view for the current hash, replacing the previous one. */
function render() {
  clearError();
  const target = route(location.hash || "#/");
  if (current === catalogue && catalogue) {
    catalogueScroll = window.scrollY;
    catalogueFocus = catalogue.node.contains(document.activeElement) ? document.activeElement : null;
  } else if (current) current.destroy();
  if (target === "catalogue") {
    catalogue ??= catalogueView();
    current = catalogue;
  } else {
    try {
      current = target();
    } catch (error) {
      current = null;
      main.replaceChildren();
      showError(error);
      return;
    }
  }
  main.replaceChildren(current.node);
  document.title = current === catalogue ? "viscover" : `${current.heading?.textContent || "viscover"} · viscover`;
  for (const a of document.querySelectorAll(".nav a")) {
    a.toggleAttribute("aria-current", a.getAttribute("href") === (location.hash || "#/").split("?")[0]);
  }
  const back = current === catalogue;
  window.scrollTo(0, back ? catalogueScroll : 0);
  (back && catalogueFocus?.isConnected ? catalogueFocus : main).focus({ preventScroll: true });
}

/** Go to a hash route; re-render when it is already the current one (e.g. a second upload). */
function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function searchFile(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    showError(`“${file.name}” is not an image (${file.type}); choose a JPEG, PNG, WebP or GIF file.`);
    return;
  }
  setQueryFile(file);
  navigate("#/search");
}

function searchUrl(text) {
  const url = text.trim();
  if (!url) {
    showError("Enter the address of an image (https://…) to search with it, or upload one.");
    return;
  }
  if (!/^(https?:)?\/\//i.test(url)) {
    showError(`“${url}” is not a web address; enter one starting with http:// or https://.`);
    return;
  }
  navigate(urlSearchHref(url));
}

/** An image file, else a URL, carried by a drop or a paste. */
function fromTransfer(data) {
  const file = [...(data.files || [])].find((f) => f.type.startsWith("image/"))
    || [...(data.items || [])].filter((i) => i.kind === "file" && i.type.startsWith("image/"))
      .map((i) => i.getAsFile()).find(Boolean);
  if (file) return { file };
  const text = (data.getData("text/uri-list") || data.getData("text/plain") || "").split("\n")[0].trim();
  return /^https?:\/\//i.test(text) ? { url: text } : {};
}

function wireHeader() {
  const form = document.getElementById("search-form");
  const fileInput = document.getElementById("file-input");
  const urlInput = document.getElementById("url-input");
  const overlay = document.getElementById("drop-overlay");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    searchUrl(urlInput.value);
  });
  fileInput.addEventListener("change", () => {
    searchFile(fileInput.files[0]);
    fileInput.value = ""; // choosing the same file again still searches
  });
  document.querySelector("#alert .alert-close").addEventListener("click", clearError);

  let depth = 0; // dragenter/dragleave fire for every child crossed
  const carriesFiles = (e) => [...(e.dataTransfer?.types || [])].some((t) => t === "Files" || t === "text/uri-list");
  window.addEventListener("dragenter", (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    depth += 1;
    overlay.hidden = false;
  });
  window.addEventListener("dragover", (e) => {
    if (carriesFiles(e)) e.preventDefault();
  });
  window.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) overlay.hidden = true;
  });
  window.addEventListener("drop", (e) => {
    depth = 0;
    overlay.hidden = true;
    if (!e.dataTransfer) return;
    e.preventDefault();
    const { file, url } = fromTransfer(e.dataTransfer);
    if (file) searchFile(file);
    else if (url) searchUrl(url);
    else showError("The dropped item is not an image or an image address; drop an image file or link.");
  });
  document.addEventListener("paste", (e) => {
    const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement;
    const { file, url } = fromTransfer(e.clipboardData);
    if (file) {
      e.preventDefault();
      searchFile(file);
    } else if (url && !typing) {
      e.preventDefault();
      urlInput.value = url;
      searchUrl(url);
    }
  });
}

wireHeader();
window.addEventListener("hashchange", render);
render();
