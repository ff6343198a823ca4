// The crop box over a large image: drag to move, handles to resize (mouse, pen or touch through pointer events),
// arrow keys to move, Shift+arrows to resize, Enter to search; optional dots on detected objects.
import { el } from "./dom.js";

const HANDLES = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];

/** A crop box over an image, in the ORIGINAL image's pixel coordinates {x, y, w, h}. */
export class Cropper {
  /**
   * src, alt: the image; width, height: its original size (0: read from the loaded image);
   * onRelease(crop, full): called when a drag ends, Enter is pressed or a dot is chosen.
   */
  constructor({ src, alt, width = 0, height = 0, onRelease }) {
    this.onRelease = onRelease;
    this.width = width;
    this.height = height;
    this.drag = null;
    this.image = el("img", { class: "stage-image", src, alt, width: width || null, height: height || null,
      draggable: "false", decoding: "async" });
    this.handles = HANDLES.map((h) => el("span", { class: `handle handle-${h}`, "data-handle": h,
      "aria-hidden": "true" }));
    this.hint = el("p", { class: "crop-hint", id: `crop-hint-${Math.random().toString(36).slice(2)}` },
      "Drag the box or its corners and release to search that region.",
      el("span", { class: "kbd-hint" }, " Keyboard: arrow keys move it, Shift+arrow keys resize it, Enter searches, "
        + "Escape selects the whole image.")); // .kbd-hint is hidden on touch screens
    this.box = el("div", { class: "crop", tabindex: "0", role: "group",
      "aria-label": "Crop box", "aria-describedby": this.hint.id }, ...this.handles);
    this.dots = el("div", { class: "dots" });
    this.readout = el("output", { class: "crop-readout", "aria-live": "polite" });
    this.hole = el("div", { class: "veil-hole" });
    const veil = el("div", { class: "veil", "aria-hidden": "true" }, this.hole); // darkens outside the box
    this.stage = el("div", { class: "stage" }, this.image, veil, this.box, this.dots);
    this.node = el("figure", { class: "cropper" }, this.stage,
      el("figcaption", {}, this.readout, this.hint));
    this.ready = new Promise((resolve) => {
      const done = () => {
        if (!this.width || !this.height) {
          this.width = this.image.naturalWidth;
          this.height = this.image.naturalHeight;
        }
        this.broken = !this.width || !this.height;
        this.node.classList.toggle("broken", this.broken);
        if (this.broken) this.readout.textContent = "This image cannot be shown.";
        if (this.width && this.height) this.stage.style.setProperty("--ar", String(this.width / this.height));
        this.crop = this.full();
        this.render();
        resolve(this);
      };
      if (this.width && this.height) queueMicrotask(done);
      else {
        this.image.addEventListener("load", done, { once: true });
        this.image.addEventListener("error", done, { once: true });
      }
    });
    this.crop = { x: 0, y: 0, w: width, h: height };
    this.render();
    this.box.addEventListener("pointerdown", (e) => this.down(e, e.target.dataset.handle || "move"));
    this.image.addEventListener("pointerdown", (e) => this.down(e, "draw"));
    this.stage.addEventListener("pointermove", (e) => this.move(e));
    this.stage.addEventListener("pointerup", (e) => this.up(e));
    this.stage.addEventListener("pointercancel", (e) => this.up(e));
    this.box.addEventListener("keydown", (e) => this.key(e));
  }

  full() {
    return { x: 0, y: 0, w: this.width, h: this.height };
  }

  get isFull() {
    const c = this.crop;
    return c.x === 0 && c.y === 0 && c.w === this.width && c.h === this.height;
  }

  /** The smallest box side allowed, in original pixels. */
  get minSide() {
    return Math.max(8, Math.round(Math.min(this.width, this.height) * 0.05));
  }

  /** Set the box (clamped into the image) and redraw it. */
  set(crop) {
    const W = this.width;
    const H = this.height;
    const w = Math.round(Math.min(Math.max(crop.w, Math.min(this.minSide, W)), W));
    const h = Math.round(Math.min(Math.max(crop.h, Math.min(this.minSide, H)), H));
    const x = Math.round(Math.min(Math.max(crop.x, 0), W - w));
    const y = Math.round(Math.min(Math.max(crop.y, 0), H - h));
    this.crop = { x, y, w, h };
    this.render();
  }

  render() {
    const { x, y, w, h } = this.crop;
    const W = this.width || 1;
    const H = this.height || 1;
    const place = { left: `${(100 * x) / W}%`, top: `${(100 * y) / H}%`,
      width: `${(100 * w) / W}%`, height: `${(100 * h) / H}%` };
    Object.assign(this.box.style, place);
    Object.assign(this.hole.style, place);
    if (this.broken) return;
    const text = this.isFull ? `Whole image (${this.width}×${this.height})`
      : `Region x ${x}, y ${y}, ${w}×${h} of ${this.width}×${this.height}`;
    this.box.setAttribute("aria-label", `Crop box: ${text}`);
    this.box.classList.toggle("full", this.isFull);
    this.readout.textContent = text;
    this.box.dataset.crop = `${x},${y},${w},${h}`;
  }

  /** Original pixels per screen pixel. */
  scale() {
    const rect = this.image.getBoundingClientRect();
    return { sx: this.width / (rect.width || 1), sy: this.height / (rect.height || 1), rect };
  }

  down(event, mode) {
    if (!this.width || event.button > 0) return;
    event.preventDefault();
    const { sx, sy, rect } = this.scale();
    let start = { ...this.crop };
    if (mode === "move" && this.isFull) mode = "draw"; // nothing to move: drag out a new box instead
    if (mode === "draw") {
      const px = (event.clientX - rect.left) * sx;
      const py = (event.clientY - rect.top) * sy;
      start = { x: px, y: py, w: 0, h: 0 };
      mode = "se";
    }
    this.drag = { mode, id: event.pointerId, x0: event.clientX, y0: event.clientY, start, sx, sy, moved: false,
      before: { ...this.crop } };
    this.stage.setPointerCapture(event.pointerId);
    this.readout.setAttribute("aria-busy", "true"); // announce the box once, when the drag ends
    this.node.classList.add("dragging");
  }

  move(event) {
    const d = this.drag;
    if (!d || event.pointerId !== d.id) return;
    const dx = (event.clientX - d.x0) * d.sx;
    const dy = (event.clientY - d.y0) * d.sy;
    if (Math.abs(dx) + Math.abs(dy) > 1) d.moved = true;
    this.crop = resize(d.start, d.mode, dx, dy, this.width, this.height, this.minSide);
    this.render();
  }

  up(event) {
    const d = this.drag;
    if (!d || event.pointerId !== d.id) return;
    this.drag = null;
    this.node.classList.remove("dragging");
    this.readout.removeAttribute("aria-busy");
    if (this.stage.hasPointerCapture(event.pointerId)) this.stage.releasePointerCapture(event.pointerId);
    if (event.type !== "pointerup") {
      this.crop = d.before; // cancelled, e.g. the browser took a touch swipe for scrolling
      this.render();
    } else if (d.moved) this.release();
  }

  release() {
    this.onRelease(this.isFull ? null : { ...this.crop }, this.isFull);
  }

  key(event) {
    const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.release();
    } else if (event.key === "Escape") {
      event.preventDefault();
      this.set(this.full());
      this.release();
    } else if (arrows[event.key] && this.width) {
      event.preventDefault();
      const [ax, ay] = arrows[event.key];
      const step = Math.max(1, Math.round(Math.max(this.width, this.height) * 0.02));
      const c = this.crop;
      if (event.shiftKey) this.set({ ...c, w: c.w + ax * step, h: c.h + ay * step });
      else this.set({ ...c, x: c.x + ax * step, y: c.y + ay * step });
    }
  }

  /** Show clickable dots on detected objects (the best `limit`); choosing one sets the box to it and searches. */
  showObjects(objects, limit = 12) {
    this.dots.replaceChildren();
    const best = [...objects].sort((a, b) => b.score - a.score).slice(0, limit);
    for (const obj of best) {
      const [x, y, w, h] = obj.box;
      const name = `${obj.label} (${Math.round(obj.score * 100)}%)`;
      const dot = el("button", { type: "button", class: "dot", title: name,
        "aria-label": `Search for the ${name} in this image`,
        onclick: () => {
          this.set({ x, y, w, h });
          this.release();
        } });
      this.dots.append(el("span", { class: "object", "data-label": obj.label, style: {
        left: `${(100 * x) / this.width}%`, top: `${(100 * y) / this.height}%`,
        width: `${(100 * w) / this.width}%`, height: `${(100 * h) / this.height}%` } }, dot));
    }
  }
}

/** The box after a drag of (dx, dy) original pixels in `mode`: "move", or the edges of a handle ("nw", "e", ...). */
export function resize(start, mode, dx, dy, W, H, min) {
  let { x, y, w, h } = start;
  if (mode === "move") {
    x = Math.min(Math.max(x + dx, 0), W - w);
    y = Math.min(Math.max(y + dy, 0), H - h);
    return { x: Math.round(x), y: Math.round(y), w, h };
  }
  let left = x;
  let top = y;
  let right = x + w;
  let bottom = y + h;
  if (mode.includes("w")) left = Math.min(Math.max(left + dx, 0), right - min);
  if (mode.includes("e")) right = Math.max(Math.min(right + dx, W), left + min);
  if (mode.includes("n")) top = Math.min(Math.max(top + dy, 0), bottom - min);
  if (mode.includes("s")) bottom = Math.max(Math.min(bottom + dy, H), top + min);
  left = Math.max(0, Math.round(left));
  top = Math.max(0, Math.round(top));
  right = Math.min(W, Math.round(right));
  bottom = Math.min(H, Math.round(bottom));
  return { x: left, y: top, w: right - left, h: bottom - top };
}
