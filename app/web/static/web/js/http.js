// Small helpers for the REST API (docs/protocol.md): JSON in and out, Django's CSRF header, every page of a list.

export class ApiError extends Error {
  constructor(status, payload) {
    const detail = payload && typeof payload.detail === "string" ? payload.detail : `HTTP ${status}`;
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.payload = payload;
  }

  /** "detail" plus any field errors, for showing next to a form. */
  describe() {
    const errors = this.payload && this.payload.errors;
    if (!errors || typeof errors !== "object") return this.message;
    const fields = Object.entries(errors).map(([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`);
    return [this.message, ...fields].join(" ");
  }
}

/** The csrftoken cookie that Django sets on our pages; unsafe methods must echo it in X-CSRFToken. */
export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "csrftoken") return decodeURIComponent(rest.join("="));
  }
  return "";
}

/** Same-origin path of a URL the API returned (DRF's "next" links are absolute; the page stays on its origin). */
export function samePath(url) {
  const parsed = new URL(url, window.location.href);
  return parsed.pathname + parsed.search;
}

/**
 * Call the API. Resolves with the decoded JSON body (null for an empty body); rejects with ApiError on a non-2xx
 * answer and with TypeError when the network fails.
 */
export async function api(path, { method = "GET", body, keepalive = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrfToken();
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    keepalive,
  });
  let payload = null;
  const text = await response.text();
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = { detail: text.slice(0, 200) };
    }
  }
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

/** Every item of a paginated list, following "next" until the end. */
export async function fetchAll(path) {
  const items = [];
  let next = path;
  while (next) {
    const page = await api(next);
    items.push(...page.results);
    next = page.next ? samePath(page.next) : null;
  }
  return items;
}
