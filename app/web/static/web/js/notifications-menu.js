// The notifications menu in the top bar (signed-in pages): mentions of the user, newest first, with an unread
// count that follows /ws/notifications/ live. After a reconnect the list is fetched again, as that socket does
// not replay what was missed.

import { avatar, fill, h, keepTimesFresh, timeElement } from "./dom.js";
import { api } from "./http.js";
import { LiveSocket } from "./live-socket.js";

const button = document.getElementById("notifications-button");
const panel = document.getElementById("notifications-panel");
const list = document.getElementById("notifications-list");
const countBadge = document.getElementById("notifications-count");
const readAll = document.getElementById("notifications-read-all");
const notifications = new Map();

function unreadCount() {
  return [...notifications.values()].filter((n) => !n.read).length;
}

function render() {
  const items = [...notifications.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  fill(list,
    ...(items.length === 0
      ? [h("li", { className: "muted empty" }, "Nothing yet. When someone mentions you, it shows here.")]
      : items.map(renderItem)),
  );
  const unread = unreadCount();
  countBadge.textContent = unread > 99 ? "99+" : String(unread);
  countBadge.hidden = unread === 0;
  button.setAttribute("aria-label", unread ? `Notifications, ${unread} unread` : "Notifications");
  readAll.disabled = unread === 0;
}

function renderItem(n) {
  const excerpt = n.comment.deleted ? "(deleted)" : (n.comment.body || "").slice(0, 140);
  const link = h(
    "a",
    {
      href: `/graphs/${n.graph.id}/#comment-${n.comment.id}`,
      className: "notification-link",
      onclick: () => markRead(n, true),
    },
    h("span", { className: "notification-title" }, `${n.actor.username} mentioned you in ${n.graph.name}`),
    h("span", { className: "notification-excerpt" }, excerpt),
    timeElement(n.created_at),
  );
  return h(
    "li",
    { className: n.read ? "notification" : "notification unread", dataset: { testid: "notification", notificationId: String(n.id) } },
    avatar(n.actor),
    link,
    n.read
      ? null
      : h(
          "button",
          { type: "button", className: "link-button", dataset: { testid: "notification-read" }, onclick: () => markRead(n, false) },
          "Mark read",
        ),
  );
}

async function markRead(n, navigating) {
  if (n.read) return;
  n.read = true;
  render();
  try {
    // keepalive: the request survives the navigation that the link starts.
    await api(`/api/v1/notifications/${n.id}/read/`, { method: "POST", keepalive: navigating });
  } catch {
    n.read = false;
    if (!navigating) render();
  }
}

async function load() {
  try {
    const page = await api("/api/v1/notifications/");
    for (const n of page.results) notifications.set(n.id, n);
    render();
    button.dataset.loaded = "true";
  } catch {
    // The menu stays as it was; the next reconnect loads again.
  }
}

function setOpen(open) {
  panel.hidden = !open;
  button.setAttribute("aria-expanded", String(open));
  if (open) (panel.querySelector("a, button:not([disabled])") || panel).focus();
}

button.addEventListener("click", () => setOpen(panel.hidden));
panel.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    setOpen(false);
    button.focus();
  }
});
document.addEventListener("click", (event) => {
  if (!panel.hidden && !panel.contains(event.target) && !button.contains(event.target)) setOpen(false);
});
readAll.addEventListener("click", async () => {
  try {
    await api("/api/v1/notifications/read-all/", { method: "POST" });
    for (const n of notifications.values()) n.read = true;
    render();
  } catch {
    // Leave them unread; the user can try again.
  }
});

const socket = new LiveSocket("/ws/notifications/");
socket.addEventListener("open", () => load());
socket.addEventListener("message", (event) => {
  const message = event.detail;
  if (message.type !== "notification") return;
  notifications.set(message.notification.id, message.notification);
  render();
  const region = document.getElementById("notifications-announcer");
  region.textContent = `${message.notification.actor.username} mentioned you in ${message.notification.graph.name}`;
});
render();
load();
socket.start();
keepTimesFresh();
