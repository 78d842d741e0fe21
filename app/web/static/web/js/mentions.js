// "@" completion for a textarea: after "@" and a few letters, a listbox offers the people who may see the graph
// (GET /api/v1/graphs/<id>/people/?q=). Arrow keys move, Enter or Tab take, Escape closes; a click takes too.

import { fill } from "./dom.js";
import { api } from "./http.js";

// Characters of a Django username.
const MENTION_BEFORE_CARET = /(^|[^\w.@+-])@([\w.@+-]{0,150})$/;
let nextListId = 1;

export class MentionCompleter {
  constructor(textarea, graphId) {
    this.textarea = textarea;
    this.graphId = graphId;
    this.options = [];
    this.active = -1;
    this.query = null;
    this.requestNumber = 0;
    this.list = document.createElement("ul");
    this.list.className = "mention-list";
    this.list.id = `mention-list-${nextListId++}`;
    this.list.setAttribute("role", "listbox");
    this.list.setAttribute("aria-label", "People to mention");
    this.list.dataset.testid = "mention-list";
    this.list.hidden = true;
    textarea.insertAdjacentElement("afterend", this.list);
    textarea.setAttribute("aria-autocomplete", "list");
    textarea.setAttribute("aria-controls", this.list.id);
    textarea.setAttribute("aria-expanded", "false");
    textarea.addEventListener("input", () => this.onInput());
    textarea.addEventListener("keydown", (event) => this.onKeyDown(event));
    textarea.addEventListener("blur", () => setTimeout(() => this.close(), 150));
  }

  /** The "@prefix" just before the caret, or null. */
  mentionAtCaret() {
    const { value, selectionStart, selectionEnd } = this.textarea;
    if (selectionStart !== selectionEnd) return null;
    const match = MENTION_BEFORE_CARET.exec(value.slice(0, selectionStart));
    if (!match) return null;
    return { prefix: match[2], start: selectionStart - match[2].length - 1, end: selectionStart };
  }

  onInput() {
    // A short pause between keystrokes before asking the server: one request per word, not per letter.
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.lookup(), 120);
  }

  async lookup() {
    const mention = this.mentionAtCaret();
    if (!mention) {
      this.close();
      return;
    }
    const number = ++this.requestNumber;
    let people;
    try {
      people = await api(`/api/v1/graphs/${this.graphId}/people/?q=${encodeURIComponent(mention.prefix)}`);
    } catch {
      return; // No completion is a fine answer when the network fails; typing goes on.
    }
    // An older answer must not overwrite a newer one.
    if (number !== this.requestNumber) return;
    const results = Array.isArray(people) ? people : people.results || [];
    this.show(results);
  }

  show(people) {
    this.options = people;
    fill(this.list,
      ...people.map((person, index) => {
        const option = document.createElement("li");
        option.id = `${this.list.id}-${index}`;
        option.setAttribute("role", "option");
        option.dataset.testid = "mention-option";
        option.textContent = `@${person.username}`;
        option.addEventListener("mousedown", (event) => {
          event.preventDefault(); // keep the focus in the textarea
          this.take(index);
        });
        return option;
      }),
    );
    if (people.length === 0) {
      this.close();
      return;
    }
    this.list.hidden = false;
    this.textarea.setAttribute("aria-expanded", "true");
    this.setActive(0);
  }

  setActive(index) {
    this.active = index;
    [...this.list.children].forEach((option, i) => option.setAttribute("aria-selected", String(i === index)));
    if (index >= 0) this.textarea.setAttribute("aria-activedescendant", `${this.list.id}-${index}`);
    else this.textarea.removeAttribute("aria-activedescendant");
  }

  onKeyDown(event) {
    if (this.list.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.setActive((this.active + step + this.options.length) % this.options.length);
    } else if (event.key === "Enter" || event.key === "Tab") {
      if (this.active < 0) return;
      event.preventDefault();
      event.stopPropagation();
      this.take(this.active);
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      this.close();
    }
  }

  take(index) {
    const person = this.options[index];
    const mention = this.mentionAtCaret();
    if (!person || !mention) return;
    const { value } = this.textarea;
    const inserted = `@${person.username} `;
    this.textarea.value = value.slice(0, mention.start) + inserted + value.slice(mention.end);
    const caret = mention.start + inserted.length;
    this.textarea.setSelectionRange(caret, caret);
    this.close();
    this.textarea.focus();
  }

  close() {
    clearTimeout(this.timer);
    this.requestNumber++;
    this.list.hidden = true;
    this.options = [];
    this.textarea.setAttribute("aria-expanded", "false");
    this.setActive(-1);
  }
}
