// Building DOM from data without ever parsing markup: every user-written string goes in through textContent.

/**
 * h("button", {type: "button", className: "x", dataset: {testid: "y"}, onclick: fn}, "text", childNode)
 * Properties whose name starts with "on" become listeners; "dataset" and "attrs" set data-* and other attributes.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "attrs") for (const [name, v] of Object.entries(value)) element.setAttribute(name, String(v));
    else if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else element[key] = value;
  }
  append(element, children);
  return element;
}

/** Replace an element's children; like h(), it skips null/false and turns strings into text nodes. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    // Strings become text nodes: a body such as "<img src=x onerror=...>" stays those characters.
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Re-render `container` with `render()`, giving the focus back to the element with the same data-focus-key. */
export function keepingFocus(container, render) {
  const focused = document.activeElement;
  const key = focused && container.contains(focused) ? focused.dataset.focusKey : undefined;
  render();
  if (key) {
    const again = container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

const AVATAR_COLOURS = 8;

/** A coloured initial for a user; the colour is one of eight classes (no inline style: CSP). */
export function avatar(user, extraClass = "") {
  let hash = 0;
  for (const char of user.username) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return h(
    "span",
    {
      className: `avatar avatar-${hash % AVATAR_COLOURS} ${extraClass}`.trim(),
      title: user.username,
      attrs: { "aria-hidden": "true" },
    },
    user.username.slice(0, 1).toUpperCase(),
  );
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

function relativeText(date) {
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  if (Math.abs(seconds) < 45) return "just now";
  if (Math.abs(seconds) < 3600) return relative.format(Math.round(seconds / 60), "minute");
  if (Math.abs(seconds) < 86400) return relative.format(Math.round(seconds / 3600), "hour");
  return timeFormat.format(date);
}

/** <time> with a relative text ("5 minutes ago") and the full date as its title. */
export function timeElement(iso) {
  const date = new Date(iso);
  return h("time", { dateTime: iso, title: timeFormat.format(date), className: "relative-time" }, relativeText(date));
}

let refreshing = false;

/** Keep every relative time on the page current ("just now" becomes "2 minutes ago"); one timer per page. */
export function keepTimesFresh() {
  if (refreshing) return;
  refreshing = true;
  setInterval(() => {
    for (const element of document.querySelectorAll("time.relative-time")) {
      element.textContent = relativeText(new Date(element.dateTime));
    }
  }, 30_000);
}

/** A body as text, with @mentions of known users set off in spans (still text, never markup). */
export function bodyNodes(body, mentions = []) {
  if (!mentions.length) return [body];
  const names = new Set(mentions);
  const nodes = [];
  const pattern = /@([\w.@+-]+)/g;
  let last = 0;
  for (let match = pattern.exec(body); match; match = pattern.exec(body)) {
    if (!names.has(match[1])) continue;
    nodes.push(body.slice(last, match.index));
    nodes.push(h("span", { className: "mention" }, match[0]));
    last = match.index + match[0].length;
  }
  nodes.push(body.slice(last));
  return nodes;
}
