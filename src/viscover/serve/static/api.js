// HTTP API client: JSON fetches whose failures carry the server's {"detail"} message, and URL builders for ids.

/** An API failure with the server's human message (its "detail") and machine code (its "error"). */
export class ApiError extends Error {
  constructor(message, status = 0, code = "") {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Encode an id for a path: each "/"-separated segment on its own, so ids with slashes and spaces stay paths. */
export function pathOf(id) {
  return String(id).split("/").map(encodeURIComponent).join("/");
}

/** A query string from an object; arrays repeat the key, null/undefined/"" are left out. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== null && v !== undefined && v !== "") q.append(key, String(v));
    }
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

/** A thumbnail URL of an item at one of the server's sizes (160, 320, 640). */
export function thumbUrl(item, size = 320) {
  const base = item.thumb_url || `/thumbs/${pathOf(item.id)}`;
  return `${base}${base.includes("?") ? "&" : "?"}size=${size}`;
}

/** The full-size image URL of an item. */
export function imageUrl(item) {
  return item.image_url || `/images/${pathOf(item.id)}`;
}

/** Fetch JSON; a non-2xx answer or a network failure becomes an ApiError with a message a person can act on. */
export async function getJson(url, options = {}) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" }, ...options });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(`Could not reach the viscover server (${err.message}); check that it is running.`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = body && body.detail;
    const message = typeof detail === "string" ? detail
      : detail ? JSON.stringify(detail) : `${response.status} ${response.statusText} from ${url}`;
    throw new ApiError(message, response.status, (body && body.error) || "");
  }
  return body;
}

/** A crop box {x, y, w, h} as the API's "x,y,w,h" text, or null for none. */
export function cropParam(crop) {
  return crop ? [crop.x, crop.y, crop.w, crop.h].map((v) => Math.round(v)).join(",") : null;
}

export const api = {
  info: () => getJson("/api/info"),
  items: (offset, limit, filters = {}) => getJson(`/api/items${query({ offset, limit, ...filters })}`),
  item: (id) => getJson(`/api/items/${pathOf(id)}`),
  boards: (offset, limit) => getJson(`/api/boards${query({ offset, limit })}`),
  board: (name, offset, limit) => getJson(`/api/boards/${pathOf(name)}${query({ offset, limit })}`),
  facets: () => getJson("/api/facets"),
  searchItem: (id, crop, k, signal, filters = {}) =>
    getJson(`/api/search${query({ item: id, crop: cropParam(crop), k, ...filters })}`, { signal }),
  searchUrl: (url, crop, k, signal, filters = {}) =>
    getJson(`/api/search${query({ url, crop: cropParam(crop), k, ...filters })}`, { signal }),
  searchFile: (file, crop, k, signal, filters = {}) => {
    const form = new FormData();
    form.append("file", file, file.name || "image");
    return getJson(`/api/search${query({ crop: cropParam(crop), k, ...filters })}`,
      { method: "POST", body: form, signal });
  },
  related: (id, k, signal) => getJson(`/api/related${query({ item: id, k })}`, { signal }),
  detectItem: (id) => getJson(`/api/detect${query({ item: id })}`),
  detectFile: (file) => {
    const form = new FormData();
    form.append("file", file, file.name || "image");
    return getJson("/api/detect", { method: "POST", body: form });
  },
};

let featuresPromise = null;

/** The server's optional features ({detection, related, writes}), asked once; none when /api/info fails. */
export function features() {
  featuresPromise ??= api.info().then((info) => info.features || {}).catch(() => ({}));
  return featuresPromise;
}

let facetsPromise = null;

/** What the catalogue can be filtered by ({total, domains, labels, boards} with counts), asked once per page load;
 * empty facets when the request fails (the filters are then simply not offered). */
export function facets() {
  facetsPromise ??= api.facets().catch(() => ({ total: 0, domains: {}, labels: {}, boards: {} }));
  return facetsPromise;
}
