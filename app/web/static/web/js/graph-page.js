// The graph page: loads the graph and its discussion over REST, draws it, then follows the WebSocket.
//
// Order matters for "nothing lost, nothing twice": the graph's last_seq is read first, then every comment; the
// socket then resumes after that last_seq. Events already reflected in the comments are applied again harmlessly
// (a comment is only replaced by a version at least as new), and no event after last_seq can be missed.

import { CommentStore } from "./comment-store.js";
import { CommentPanel, PanelContext } from "./comments-panel.js";
import { avatar, fill, h, keepTimesFresh } from "./dom.js";
import { GraphView } from "./graph-view.js";
import { api, fetchAll } from "./http.js";
import { LiveSocket } from "./live-socket.js";
import { MentionCompleter } from "./mentions.js";

const root = document.getElementById("graph-page");
const graphId = Number(root.dataset.graphId);
const me = root.dataset.userId ? { id: Number(root.dataset.userId), username: root.dataset.username } : null;
const canComment = root.dataset.canComment === "true";
const store = new CommentStore();
const $ = (id) => document.getElementById(id);

let view = null;
let panel = null;
let socket = null;
let ready = false;

function announce(text) {
  // A polite live region: screen readers hear new comments without losing their place.
  const region = $("announcer");
  region.textContent = "";
  setTimeout(() => (region.textContent = text), 50);
}

function describeIds(ids, max = 3) {
  const labels = ids.map((id) => (view ? view.label(id) : id));
  return labels.length > max ? `${labels.slice(0, max).join(", ")} and ${labels.length - max} more` : labels.join(", ");
}

function describeEdge(id) {
  const edge = view?.cy.getElementById(id);
  if (!edge || edge.empty()) return id;
  return `${view.label(edge.data("source"))} → ${view.label(edge.data("target"))}`;
}

/** "Whole graph", "Node TP53", "Edge TP53 → MDM2", "2 nodes, 1 edge: TP53, MDM2, TP53 → MDM2". */
function describeAnchor(anchor) {
  const nodes = anchor.nodes || [];
  const edges = anchor.edges || [];
  if (!nodes.length && !edges.length) return "Whole graph";
  if (nodes.length === 1 && !edges.length) return `Node ${describeIds(nodes)}`;
  if (edges.length === 1 && !nodes.length) return `Edge ${describeEdge(edges[0])}`;
  const parts = [];
  if (nodes.length) parts.push(`${nodes.length} ${nodes.length === 1 ? "node" : "nodes"}`);
  if (edges.length) parts.push(`${edges.length} ${edges.length === 1 ? "edge" : "edges"}`);
  const names = [...nodes.map((id) => view?.label(id) ?? id), ...edges.map(describeEdge)];
  const shown = names.length > 4 ? `${names.slice(0, 4).join(", ")} …` : names.join(", ");
  return `${parts.join(", ")}: ${shown}`;
}

function showAnchor(comment, { move = true } = {}) {
  panel.setCurrent(comment.parent ?? comment.id);
  const anchor = comment.anchor || {};
  view.highlight(anchor.nodes || [], anchor.edges || [], { move });
  $("highlight-summary").textContent = `Showing: ${describeAnchor(anchor)}`;
  $("clear-highlight").hidden = false;
  root.dataset.highlighted = [...(anchor.nodes || []), ...(anchor.edges || [])].join(" ");
}

function clearHighlight() {
  view.clearHighlight();
  panel.setCurrent(null);
  $("highlight-summary").textContent = "";
  $("clear-highlight").hidden = true;
  delete root.dataset.highlighted;
}

// ---- composer -------------------------------------------------------------------------------------------------

function setupComposer() {
  const form = $("composer");
  if (!form) return;
  const textarea = $("composer-body");
  const error = $("composer-error");
  const submit = $("composer-submit");
  new MentionCompleter(textarea, graphId);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!textarea.value.trim()) {
      error.textContent = "Write something first.";
      return;
    }
    const { nodes, edges } = view.selection();
    // Read-only while posting: our own comment may come back over the socket before the POST answers, and
    // text typed in between must not be wiped by the answer.
    submit.disabled = true;
    textarea.readOnly = true;
    error.textContent = "";
    try {
      const comment = await api(`/api/v1/graphs/${graphId}/comments/`, {
        method: "POST",
        body: { body: textarea.value, nodes, edges },
      });
      store.upsert(comment);
      textarea.value = "";
      panel.focusComment(comment.id);
      // Mark what was just commented on, without moving the view the author is looking at.
      showAnchor(comment, { move: false });
    } catch (failure) {
      error.textContent = failure.describe ? failure.describe() : "The server could not be reached. Try again.";
    } finally {
      submit.disabled = false;
      textarea.readOnly = false;
    }
  });
  // Ctrl/Cmd+Enter posts, as in most comment boxes.
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}

function onSelectionChange(selection) {
  const count = selection.nodes.length + selection.edges.length;
  const target = $("composer-target");
  const summary = count === 0 ? "Whole graph" : describeAnchor(selection);
  if (target) target.textContent = count === 0 ? "Comment on the whole graph" : `Comment on ${summary}`;
  $("selection-summary").textContent = count === 0 ? "Nothing selected" : `Selected: ${summary}`;
  $("clear-selection").disabled = count === 0;
  root.dataset.selection = [...selection.nodes, ...selection.edges].join(" ");
  panel.setSelection(selection);
  syncElementList(selection);
}

// ---- the element list: keyboard and screen-reader access to what the canvas shows ---------------------------

let elementRows = null;

function buildElementList() {
  const list = $("element-list");
  const rows = new Map();
  const makeRow = (item, kind) => {
    const checkbox = h("input", {
      type: "checkbox",
      value: item.id,
      dataset: { testid: `element-${item.id}` },
      onchange: () => view.toggleSelected(item.id, checkbox.checked),
    });
    const badge = h("span", { className: "element-badge", hidden: true, dataset: { testid: `badge-${item.id}` } });
    const row = h("li", { dataset: { kind, search: `${item.id} ${item.label}`.toLowerCase() } }, h("label", {}, checkbox, " ", item.label, " ", badge));
    rows.set(item.id, { row, checkbox, badge });
    return row;
  };
  fill(list,
    h("li", { className: "element-group" }, "Nodes"),
    ...view.nodes().map((n) => makeRow(n, "node")),
    h("li", { className: "element-group" }, "Edges"),
    ...view.edges().map((e) => makeRow(e, "edge")),
  );
  $("element-filter").addEventListener("input", (event) => {
    const query = event.target.value.trim().toLowerCase();
    for (const { row } of rows.values()) row.hidden = query !== "" && !row.dataset.search.includes(query);
  });
  elementRows = rows;
}

function syncElementList(selection) {
  if (!elementRows) return;
  const selected = new Set([...selection.nodes, ...selection.edges]);
  for (const [id, { checkbox }] of elementRows) checkbox.checked = selected.has(id);
}

function updateBadges() {
  const counts = store.countsByElement();
  view.setBadges(counts);
  if (elementRows) {
    for (const [id, { badge }] of elementRows) {
      const entry = counts.get(id);
      badge.hidden = !entry;
      badge.textContent = entry ? `${entry.threads} ${entry.threads === 1 ? "comment" : "comments"}` : "";
      badge.classList.toggle("all-resolved", Boolean(entry) && entry.open === 0);
    }
  }
  // For tests: the ids that carry a badge, in one attribute.
  root.dataset.badged = [...counts.keys()].sort().join(" ");
}

// ---- live ------------------------------------------------------------------------------------------------------

const STATUS_TEXT = {
  idle: "Not connected",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline: will reconnect when the network is back",
  denied: "No access to this graph's live updates",
};

let countdown = null;

function setStatus({ state, delayMs, code }) {
  const status = $("live-status");
  status.dataset.state = state;
  clearInterval(countdown);
  const text = $("live-status-text");
  text.textContent = STATUS_TEXT[state] || state;
  if (state === "reconnecting" && delayMs) {
    // Count down to the next attempt, so that a long back-off does not look like a hang.
    const due = Date.now() + delayMs;
    const tick = () => {
      const seconds = Math.ceil((due - Date.now()) / 1000);
      text.textContent = seconds > 0 ? `Reconnecting in ${seconds} s…` : "Reconnecting…";
    };
    tick();
    countdown = setInterval(tick, 1000);
  }
  if (state === "denied" && code === 4401) text.textContent = "Sign in again to follow live updates";
  $("retry-now").hidden = state !== "reconnecting";
  $("presence").classList.toggle("stale", state !== "live");
}

/** viewers: the first ones by name (the server lists at most 50); count: how many people view in all. */
function renderPresence(viewers, count) {
  const seen = new Map();
  for (const viewer of viewers) seen.set(viewer.id, viewer);
  const people = [...seen.values()].sort((a, b) => a.username.localeCompare(b.username));
  fill($("presence-list"),
    ...people.map((person) =>
      h(
        "li",
        { dataset: { testid: `presence-${person.username}` } },
        avatar(person, me && person.id === me.id ? "is-me" : ""),
        h("span", { className: "visually-hidden" }, person.username),
      ),
    ),
  );
  // Anonymous readers of a public graph are not listed (they have no name), so the count can be 0.
  const total = Number.isInteger(count) ? count : people.length;
  $("presence-count").textContent = total === 0 ? "" : total === 1 ? "1 viewing" : `${total} viewing`;
}

let filling = false;
// The life of the event stream our seqs count in (docs/protocol.md, "epoch").
let epoch = "";

/** The database was restored: what this page holds cannot be resumed. Load it all again, once. */
function reloadForNewEpoch() {
  if (root.dataset.state === "reloading") return;
  root.dataset.state = "reloading";
  window.location.reload();
}

/** Fetch stored events after our last seq over REST: fills a gap in what the socket delivered. */
async function fillGap() {
  if (filling) return;
  filling = true;
  try {
    let more = true;
    while (more && store.hasGap) {
      const page = await api(`/api/v1/graphs/${graphId}/events/?after_seq=${store.lastSeq}&epoch=${epoch}`);
      for (const event of page.events) store.applyEvent(event);
      more = page.more;
    }
  } catch (error) {
    if (error && error.status === 409) reloadForNewEpoch();
    // Otherwise the next reconnect resumes from lastSeq anyway.
  } finally {
    filling = false;
  }
}

function onMessage(message) {
  switch (message.type) {
    case "event": {
      const result = store.applyEvent(message);
      if (result === "gap") fillGap();
      break;
    }
    case "presence":
      renderPresence(message.viewers || [], message.count);
      break;
    case "reset":
      // The server's stream is another life of it (the database was restored): our seqs mean nothing there.
      reloadForNewEpoch();
      break;
    case "hello":
      // The resume in the URL covers everything after our lastSeq; hello's last_seq needs no action.
      break;
    case "error":
      console.warn("Live update error", message.code, message.message);
      break;
    default:
      break;
  }
}

function startLive() {
  // Every (re)connect resumes from the last event applied, in the URL: the server sends what was missed before any
  // live event (docs/protocol.md).
  const resumePoint = () => `after_seq=${store.lastSeq}&epoch=${encodeURIComponent(epoch)}`;
  socket = new LiveSocket(`/ws/graphs/${graphId}/`, { heartbeat: true, query: resumePoint });
  socket.addEventListener("status", (event) => setStatus(event.detail));
  socket.addEventListener("message", (event) => onMessage(event.detail));
  $("retry-now").addEventListener("click", () => socket.reconnectNow());
  socket.start();
}

// ---- start -----------------------------------------------------------------------------------------------------

function showLoadError(error) {
  root.dataset.state = "error";
  const message =
    error && error.status === 401
      ? "Sign in to see this graph's discussion."
      : error && error.status === 404
        ? "This graph does not exist or you may not see it."
        : "The graph could not be loaded. Reload the page to try again.";
  $("load-error").textContent = message;
  $("live-status-text").textContent = "Not loaded";
  $("load-error").hidden = false;
}

async function main() {
  let graph;
  let comments;
  try {
    graph = await api(`/api/v1/graphs/${graphId}/`);
    comments = await fetchAll(`/api/v1/graphs/${graphId}/comments/?page_size=200`);
  } catch (error) {
    showLoadError(error);
    return;
  }
  store.lastSeq = graph.last_seq;
  epoch = graph.epoch;
  // For tests and debugging: the last event seq this page has applied.
  root.dataset.lastSeq = String(store.lastSeq);
  view = new GraphView($("cy"), graph.elements);
  const ctx = new PanelContext({
    graphId,
    me,
    ownerId: graph.owner.id,
    canComment,
    store,
    describeAnchor,
    onShowAnchor: showAnchor,
  });
  // Fill the store first and draw the panel once: one pass, not one re-sort per comment.
  for (const comment of comments) store.upsert(comment);
  panel = new CommentPanel(ctx, { list: $("threads"), count: $("thread-count"), filters: $("filters") });
  panel.renderAll();

  store.addEventListener("change", () => {
    if (ready) updateBadges();
  });
  store.addEventListener("event", (event) => {
    const { event: kind, comment } = event.detail;
    root.dataset.lastSeq = String(store.lastSeq);
    if (ready && kind === "comment.created" && (!me || comment.author.id !== me.id)) {
      announce(`${comment.author.username} ${comment.parent ? "replied" : "commented"}: ${comment.body ?? ""}`);
    }
  });

  view.addEventListener("select", (event) => onSelectionChange(event.detail));
  view.addEventListener("backgroundtap", () => clearHighlight());
  $("fit").addEventListener("click", () => view.fit());
  $("relayout").addEventListener("click", () => view.layout(true));
  $("clear-selection").addEventListener("click", () => view.clearSelection());
  $("clear-highlight").addEventListener("click", () => clearHighlight());
  $("element-list-box").addEventListener("toggle", (event) => {
    if (event.target.open && !elementRows) {
      buildElementList();
      syncElementList(view.selection());
      updateBadges();
    }
  });
  setupComposer();
  onSelectionChange(view.selection());

  await view.layout();
  ready = true;
  updateBadges();
  root.dataset.state = "ready";
  startLive();
  keepTimesFresh();
  showHashTarget();
  window.addEventListener("hashchange", showHashTarget);
}

/** #comment-12 (from a notification) scrolls to that comment and shows its anchor. */
function showHashTarget() {
  const match = /^#comment-(\d+)$/.exec(window.location.hash);
  if (!match) return;
  const thread = panel.focusComment(Number(match[1]));
  if (thread) showAnchor(thread);
}

main();
