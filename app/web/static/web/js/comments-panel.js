// The comment panel: threads with replies, their actions (reply, edit, delete, resolve, react, pin) and filters.
// Every comment is drawn from the store; actions call the REST API and put its answer back in the store, so the
// page shows the same thing whether a change came from this tab, another tab or another user.

import { anchorIds } from "./comment-store.js";
import { avatar, bodyNodes, fill, h, keepingFocus, timeElement } from "./dom.js";
import { api } from "./http.js";
import { MentionCompleter } from "./mentions.js";

export const REACTIONS = [
  ["+1", "👍", "thumbs up"],
  ["-1", "👎", "thumbs down"],
  ["laugh", "😄", "laugh"],
  ["hooray", "🎉", "hooray"],
  ["confused", "😕", "confused"],
  ["heart", "❤️", "heart"],
  ["rocket", "🚀", "rocket"],
  ["eyes", "👀", "eyes"],
];

/** Things the panel needs from the page. */
export class PanelContext {
  constructor({ graphId, me, ownerId, canComment, store, describeAnchor, onShowAnchor }) {
    Object.assign(this, { graphId, me, ownerId, canComment, store, describeAnchor, onShowAnchor });
  }

  isMine(comment) {
    return this.me !== null && comment.author.id === this.me.id;
  }

  canModerate(comment) {
    return this.me !== null && (comment.author.id === this.me.id || this.ownerId === this.me.id);
  }
}

/** One comment (a thread's first comment or a reply), updated in place as new versions arrive. */
class CommentView {
  constructor(ctx, comment) {
    this.ctx = ctx;
    this.comment = comment;
    this.editing = false;
    this.confirmingDelete = false;
    this.paletteOpen = false;
    const isThread = comment.parent === null;
    this.header = h("header", { className: "comment-head" });
    this.anchor = h("div", { className: "comment-anchor" });
    this.body = h("div", { className: "comment-body-box" });
    this.reactions = h("div", { className: "reactions", attrs: { role: "group", "aria-label": "Reactions" } });
    this.actions = h("div", { className: "comment-actions" });
    this.error = h("p", { className: "form-error", attrs: { role: "alert" }, dataset: { testid: "comment-error" } });
    this.element = h(
      "article",
      {
        className: isThread ? "comment" : "comment reply",
        id: `comment-${comment.id}`,
        dataset: { testid: isThread ? "comment" : "reply", commentId: String(comment.id) },
        attrs: { "aria-label": `Comment by ${comment.author.username}` },
      },
      this.header,
      isThread ? this.anchor : null,
      this.body,
      this.reactions,
      this.actions,
      this.error,
    );
    this.render();
  }

  update(comment) {
    this.comment = comment;
    if (comment.deleted) {
      this.editing = false;
      this.confirmingDelete = false;
    }
    this.render();
  }

  render() {
    const c = this.comment;
    keepingFocus(this.element, () => {
      this.element.classList.toggle("deleted", c.deleted);
      this.element.classList.toggle("mine", this.ctx.isMine(c));
      fill(this.header,
        avatar(c.author),
        h("span", { className: "comment-author", dataset: { testid: "comment-author" } }, c.author.username),
        timeElement(c.created_at),
        c.edited_at && !c.deleted ? h("span", { className: "muted", title: `edited ${c.edited_at}` }, "(edited)") : null,
        c.pinned ? h("span", { className: "pin-mark", title: "Pinned by you" }, "📌", h("span", { className: "visually-hidden" }, "pinned")) : null,
        c.parent === null && c.resolved
          ? h(
              "span",
              { className: "resolved-mark", dataset: { testid: "resolved-mark" } },
              c.resolved_by ? `Resolved by ${c.resolved_by.username}` : "Resolved",
            )
          : null,
      );
      if (c.parent === null) this.renderAnchor();
      if (!this.editing) this.renderBody();
      this.renderReactions();
      this.renderActions();
    });
  }

  renderAnchor() {
    const c = this.comment;
    const description = this.ctx.describeAnchor(c.anchor);
    fill(this.anchor,
      h(
        "button",
        {
          type: "button",
          className: `anchor-chip anchor-${c.anchor.kind}`,
          title: "Show on the graph",
          dataset: { testid: "comment-anchor", focusKey: "anchor" },
          onclick: () => this.ctx.onShowAnchor(c),
        },
        h("span", { attrs: { "aria-hidden": "true" } }, c.anchor.kind === "graph" ? "◻ " : "◎ "),
        description,
      ),
    );
  }

  renderBody() {
    const c = this.comment;
    fill(this.body,
      c.deleted
        ? h("p", { className: "comment-body muted", dataset: { testid: "comment-body" } }, "This comment was deleted.")
        : h("p", { className: "comment-body", dataset: { testid: "comment-body" } }, ...bodyNodes(c.body, c.mentions)),
    );
  }

  renderReactions() {
    const c = this.comment;
    const me = this.ctx.me;
    const canReact = this.ctx.canComment && !c.deleted;
    const pills = REACTIONS.filter(([name]) => (c.reactions[name] || []).length > 0).map(([name, emoji, label]) => {
      const users = c.reactions[name];
      const mine = me !== null && users.includes(me.id);
      return h(
        "button",
        {
          type: "button",
          className: "reaction-pill",
          disabled: !canReact,
          dataset: { testid: `reaction-${name}`, focusKey: `pill-${name}` },
          attrs: { "aria-pressed": String(mine), "aria-label": `${label}: ${users.length}${mine ? ", including you" : ""}` },
          onclick: () => this.react(name),
        },
        `${emoji} ${users.length}`,
      );
    });
    const children = [...pills];
    if (canReact) {
      const paletteId = `palette-${c.id}`;
      children.push(
        h(
          "button",
          {
            type: "button",
            className: "reaction-add",
            title: "Add a reaction",
            dataset: { testid: "reaction-add", focusKey: "reaction-add" },
            attrs: { "aria-expanded": String(this.paletteOpen), "aria-controls": paletteId, "aria-label": "Add a reaction" },
            onclick: () => {
              this.paletteOpen = !this.paletteOpen;
              this.render();
            },
          },
          "☺+",
        ),
        h(
          "div",
          { className: "reaction-palette", id: paletteId, hidden: !this.paletteOpen, dataset: { testid: "reaction-palette" } },
          REACTIONS.map(([name, emoji, label]) => {
            const mine = me !== null && (c.reactions[name] || []).includes(me.id);
            return h(
              "button",
              {
                type: "button",
                title: label,
                dataset: { testid: `react-${name}`, focusKey: `react-${name}` },
                attrs: { "aria-pressed": String(mine), "aria-label": label },
                onclick: () => this.react(name),
                onkeydown: (event) => {
                  if (event.key === "Escape") {
                    this.paletteOpen = false;
                    this.render();
                    this.element.querySelector('[data-focus-key="reaction-add"]')?.focus();
                  }
                },
              },
              emoji,
            );
          }),
        ),
      );
    }
    fill(this.reactions, ...children);
    this.reactions.hidden = children.length === 0;
  }

  renderActions() {
    const c = this.comment;
    const ctx = this.ctx;
    const isThread = c.parent === null;
    const button = (label, key, onclick, extra = {}) =>
      h("button", { type: "button", className: "link-button", dataset: { testid: `${key}-button`, focusKey: key }, onclick, ...extra }, label);
    const items = [];
    if (this.confirmingDelete) {
      items.push(
        h("span", { className: "confirm-text" }, "Delete this comment?"),
        button("Yes, delete", "confirm-delete", () => this.remove(), { className: "link-button danger" }),
        button("Keep it", "cancel-delete", () => {
          this.confirmingDelete = false;
          this.render();
          this.element.querySelector('[data-focus-key="delete"]')?.focus();
        }),
      );
    } else {
      if (isThread && ctx.canComment) items.push(button("Reply", "reply", () => this.onReply()));
      if (ctx.isMine(c) && !c.deleted && !this.editing) items.push(button("Edit", "edit", () => this.startEdit()));
      if (ctx.canModerate(c) && !c.deleted) {
        items.push(
          button("Delete", "delete", () => {
            this.confirmingDelete = true;
            this.render();
            this.element.querySelector('[data-focus-key="confirm-delete"]')?.focus();
          }),
        );
      }
      if (isThread && ctx.canModerate(c)) {
        items.push(
          c.resolved
            ? button("Reopen", "reopen", () => this.call(`/api/v1/comments/${c.id}/reopen/`, "POST"))
            : button("Resolve", "resolve", () => this.call(`/api/v1/comments/${c.id}/resolve/`, "POST")),
        );
      }
      if (ctx.me !== null) {
        items.push(
          button(c.pinned ? "Unpin" : "Pin", "pin", () => this.call(`/api/v1/comments/${c.id}/pin/`, c.pinned ? "DELETE" : "PUT"), {
            attrs: { "aria-pressed": String(Boolean(c.pinned)) },
          }),
        );
      }
    }
    fill(this.actions, ...items);
  }

  startEdit() {
    this.editing = true;
    const textarea = h("textarea", {
      className: "edit-body",
      value: this.comment.body,
      rows: 3,
      maxLength: 10000,
      required: true,
      dataset: { testid: "edit-body", focusKey: "edit-body" },
      attrs: { "aria-label": "Edit your comment" },
    });
    const form = h(
      "form",
      {
        className: "edit-form",
        onsubmit: async (event) => {
          event.preventDefault();
          if (await this.call(`/api/v1/comments/${this.comment.id}/`, "PATCH", { body: textarea.value })) {
            this.editing = false;
            this.render();
            this.element.querySelector('[data-focus-key="edit"]')?.focus();
          }
        },
        onkeydown: (event) => {
          if (event.key === "Escape") cancel();
        },
      },
      h("div", { className: "mention-wrap" }, textarea),
      h(
        "div",
        { className: "form-row" },
        h("button", { type: "submit", dataset: { testid: "save-edit" } }, "Save"),
        h("button", { type: "button", className: "secondary", onclick: () => cancel() }, "Cancel"),
      ),
    );
    const cancel = () => {
      this.editing = false;
      this.render();
      this.element.querySelector('[data-focus-key="edit"]')?.focus();
    };
    new MentionCompleter(textarea, this.ctx.graphId);
    fill(this.body, form);
    this.render();
    textarea.focus();
  }

  async react(name) {
    const fromPalette = this.paletteOpen;
    this.paletteOpen = false;
    await this.call(`/api/v1/comments/${this.comment.id}/reactions/`, "POST", { reaction: name });
    this.render();
    // The palette is gone; keep a keyboard user's place on the button that opened it.
    if (fromPalette) this.element.querySelector('[data-focus-key="reaction-add"]')?.focus();
  }

  async remove() {
    this.confirmingDelete = false;
    await this.call(`/api/v1/comments/${this.comment.id}/`, "DELETE");
  }

  /** Call the API; the answer (the comment after the change) goes to the store. True on success. */
  async call(path, method, body) {
    this.error.textContent = "";
    try {
      const comment = await api(path, { method, body });
      if (comment && comment.id) this.ctx.store.upsert(comment);
      return true;
    } catch (error) {
      this.error.textContent = error.describe ? error.describe() : "The server could not be reached. Try again.";
      return false;
    }
  }

  onReply() {}
}

/** A thread: its first comment, its replies and a reply form. */
class ThreadView {
  constructor(ctx, comment) {
    this.ctx = ctx;
    this.id = comment.id;
    this.main = new CommentView(ctx, comment);
    this.main.onReply = () => this.openReply();
    this.replies = new Map();
    this.replyList = h("ol", { className: "replies", dataset: { testid: "replies" }, attrs: { "aria-label": "Replies" } });
    this.replyForm = ctx.canComment ? this.buildReplyForm() : null;
    this.element = h(
      "li",
      { className: "thread", dataset: { testid: "thread", threadId: String(comment.id) } },
      this.main.element,
      this.replyList,
      this.replyForm,
    );
    this.element.addEventListener("click", (event) => {
      // A click on the comment's text (not on a control) shows its anchor, like the anchor button does.
      if (event.target.closest("button, a, textarea, input, form, .reaction-palette")) return;
      if (event.target.closest(".comment")) ctx.onShowAnchor(this.main.comment);
    });
    this.refresh();
  }

  get comment() {
    return this.main.comment;
  }

  updateComment(comment) {
    if (comment.id === this.id) {
      this.main.update(comment);
    } else {
      let view = this.replies.get(comment.id);
      if (view) {
        view.update(comment);
      } else {
        view = new CommentView(this.ctx, comment);
        this.replies.set(comment.id, view);
        // Replies in order of creation: the store knows it.
        const order = this.ctx.store.replies(this.id).map((r) => r.id);
        const next = order.slice(order.indexOf(comment.id) + 1).map((id) => this.replies.get(id)).find(Boolean);
        const item = h("li", {}, view.element);
        if (next) this.replyList.insertBefore(item, next.element.parentElement);
        else this.replyList.append(item);
      }
    }
    this.refresh();
  }

  refresh() {
    const c = this.comment;
    this.element.classList.toggle("resolved", c.resolved);
    this.element.classList.toggle("pinned", this.isPinned());
    this.replyList.hidden = this.replies.size === 0;
  }

  isPinned() {
    return Boolean(this.comment.pinned) || [...this.replies.values()].some((r) => r.comment.pinned);
  }

  involves(userId) {
    return this.comment.author.id === userId || [...this.replies.values()].some((r) => r.comment.author.id === userId);
  }

  buildReplyForm() {
    const textarea = h("textarea", {
      rows: 2,
      maxLength: 10000,
      required: true,
      dataset: { testid: "reply-body" },
      attrs: { "aria-label": "Your reply" },
    });
    const error = h("p", { className: "form-error", attrs: { role: "alert" } });
    const submit = h("button", { type: "submit", dataset: { testid: "reply-submit" } }, "Reply");
    const form = h(
      "form",
      {
        className: "reply-form",
        hidden: true,
        dataset: { testid: "reply-form" },
        onsubmit: async (event) => {
          event.preventDefault();
          if (!textarea.value.trim()) return;
          submit.disabled = true;
          textarea.readOnly = true; // see the composer in graph-page.js
          error.textContent = "";
          try {
            const reply = await api(`/api/v1/graphs/${this.ctx.graphId}/comments/`, {
              method: "POST",
              body: { body: textarea.value, parent: this.id },
            });
            this.ctx.store.upsert(reply);
            textarea.value = "";
            form.hidden = true;
            this.main.element.querySelector('[data-focus-key="reply"]')?.focus();
          } catch (failure) {
            error.textContent = failure.describe ? failure.describe() : "The server could not be reached. Try again.";
          } finally {
            submit.disabled = false;
            textarea.readOnly = false;
          }
        },
        onkeydown: (event) => {
          if (event.key === "Escape") {
            form.hidden = true;
            this.main.element.querySelector('[data-focus-key="reply"]')?.focus();
          }
        },
      },
      h("div", { className: "mention-wrap" }, textarea),
      h(
        "div",
        { className: "form-row" },
        error,
        submit,
        h("button", { type: "button", className: "secondary", onclick: () => (form.hidden = true) }, "Cancel"),
      ),
    );
    new MentionCompleter(textarea, this.ctx.graphId);
    this.replyTextarea = textarea;
    return form;
  }

  openReply() {
    if (!this.replyForm) return;
    this.replyForm.hidden = false;
    this.replyTextarea.focus();
  }
}

/** The list of threads with its filters. */
export class CommentPanel {
  constructor(ctx, { list, count, filters }) {
    this.ctx = ctx;
    this.list = list;
    this.count = count;
    this.filters = filters;
    this.threads = new Map();
    this.selection = { nodes: [], edges: [] };
    this.current = null;
    filters.addEventListener("change", () => this.applyFilters());
    ctx.store.addEventListener("change", (event) => this.onChange(event.detail.comment));
  }

  renderAll() {
    for (const thread of this.ctx.store.threads()) this.onChange(thread, { deferOrder: true });
    for (const comment of this.ctx.store.comments.values()) if (comment.parent !== null) this.onChange(comment, { deferOrder: true });
    this.reorder();
  }

  onChange(comment, { deferOrder = false } = {}) {
    if (comment.parent === null) {
      let thread = this.threads.get(comment.id);
      if (thread) thread.updateComment(comment);
      else this.threads.set(comment.id, new ThreadView(this.ctx, comment));
    } else {
      // A reply whose thread is not here yet waits: it is drawn when the thread arrives (renderAll, or the
      // thread's own change, which always comes first in seq order).
      const thread = this.threads.get(comment.parent);
      if (thread) thread.updateComment(comment);
    }
    if (!deferOrder) this.reorder();
  }

  /** Pinned threads first, then newest first. */
  reorder() {
    const threads = [...this.threads.values()].sort((a, b) => {
      const pinned = Number(b.isPinned()) - Number(a.isPinned());
      if (pinned) return pinned;
      return a.comment.created_at < b.comment.created_at ? 1 : a.comment.created_at > b.comment.created_at ? -1 : b.id - a.id;
    });
    // Move only what is out of place, so that focus and open forms survive.
    threads.forEach((thread, index) => {
      if (this.list.children[index] !== thread.element) this.list.insertBefore(thread.element, this.list.children[index] || null);
    });
    this.applyFilters();
  }

  setSelection(selection) {
    this.selection = selection;
    if (this.filters.elements.onSelection?.checked) this.applyFilters();
  }

  applyFilters() {
    const form = this.filters.elements;
    const status = form.status.value;
    const mine = form.mine ? form.mine.checked : false;
    const onSelection = form.onSelection.checked;
    const pinned = form.pinned ? form.pinned.checked : false;
    const selected = new Set([...this.selection.nodes, ...this.selection.edges]);
    let shown = 0;
    for (const thread of this.threads.values()) {
      const c = thread.comment;
      let visible = true;
      if (status === "open" && c.resolved) visible = false;
      if (status === "resolved" && !c.resolved) visible = false;
      if (mine && !thread.involves(this.ctx.me?.id)) visible = false;
      if (pinned && !thread.isPinned()) visible = false;
      if (onSelection && !anchorIds(c).some((id) => selected.has(id))) visible = false;
      thread.element.hidden = !visible;
      if (visible) shown += 1;
    }
    const total = this.threads.size;
    this.count.textContent =
      total === 0
        ? "No comments yet."
        : shown === total
          ? `${total} ${total === 1 ? "thread" : "threads"}`
          : `${shown} of ${total} threads shown`;
  }

  /** Mark the thread holding comment `id` as current and scroll it into view; returns its thread comment. */
  focusComment(id) {
    const comment = this.ctx.store.get(id);
    if (!comment) return null;
    const threadId = comment.parent ?? comment.id;
    const thread = this.threads.get(threadId);
    if (!thread) return null;
    this.setCurrent(threadId);
    thread.element.hidden = false;
    document.getElementById(`comment-${id}`)?.scrollIntoView({ block: "nearest", behavior: "smooth" });
    return thread.comment;
  }

  setCurrent(threadId) {
    if (this.current !== null) this.threads.get(this.current)?.element.classList.remove("current");
    this.current = threadId;
    if (threadId !== null) this.threads.get(threadId)?.element.classList.add("current");
  }
}
