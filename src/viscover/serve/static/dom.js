// Small DOM helpers shared by the views: element building, the page-wide alert, and section error notes.

/** Create an element: el("a", {href: "#/", class: "x"}, child, "text"); on* attributes become listeners. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "style" && typeof value === "object") Object.assign(node.style, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const alertBox = () => document.getElementById("alert");

/** Show a message in the page-wide alert (role="alert", so screen readers announce it). */
export function showError(error) {
  if (error && error.name === "AbortError") return;
  const box = alertBox();
  box.querySelector(".alert-text").textContent = error instanceof Error ? error.message : String(error);
  box.hidden = false;
}

/** Hide the page-wide alert. */
export function clearError() {
  alertBox().hidden = true;
}

/** An inline error note for one section of a page (the rest of the page keeps working). */
export function errorNote(error) {
  return el("p", { class: "note error", role: "alert" }, error instanceof Error ? error.message : String(error));
}

/** What to call an item: the name the API gives it (title, most specific label or file name), else its id's
 * last part. */
export function itemName(item) {
  if (item.name) return item.name;
  const id = String(item.id);
  return id.slice(id.lastIndexOf("/") + 1);
}
