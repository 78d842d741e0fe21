// The page's copy of a graph's discussion. Comments come from REST (initial load, our own writes) and from
// numbered events (WebSocket, or REST /events/ to fill a gap). Applying anything twice changes nothing: events
// are taken in seq order exactly once, and a comment is only replaced by a version at least as new (its seq).

export class CommentStore extends EventTarget {
  constructor() {
    super();
    this.comments = new Map();
    // The seq of the last event applied; every event up to it has been seen, none after it.
    this.lastSeq = 0;
    // Events that arrived ahead of a gap, by seq, until the gap is filled.
    this.pending = new Map();
  }

  /** Take a comment; returns true when it changed what the page shows. Emits "change" (detail: {comment, old}). */
  upsert(comment) {
    const old = this.comments.get(comment.id);
    if (old && old.seq > comment.seq) return false;
    // "pinned" is per user and only REST answers carry it; events (shared by everyone) leave it as it was.
    const merged = "pinned" in comment ? comment : { ...comment, pinned: old ? old.pinned : false };
    this.comments.set(comment.id, merged);
    this.dispatchEvent(new CustomEvent("change", { detail: { comment: merged, old } }));
    return true;
  }

  /**
   * Take an event. Returns "applied", "duplicate" (seq already seen) or "gap" (an earlier event is missing: the
   * caller fetches the missing ones and the event is applied once they are in).
   */
  applyEvent(event) {
    if (event.seq <= this.lastSeq) return "duplicate";
    if (event.seq > this.lastSeq + 1) {
      this.pending.set(event.seq, event);
      return "gap";
    }
    this.lastSeq = event.seq;
    this.upsert(event.comment);
    this.dispatchEvent(new CustomEvent("event", { detail: event }));
    // Drain what waited behind the gap.
    while (this.pending.has(this.lastSeq + 1)) {
      const next = this.pending.get(this.lastSeq + 1);
      this.pending.delete(next.seq);
      this.lastSeq = next.seq;
      this.upsert(next.comment);
      this.dispatchEvent(new CustomEvent("event", { detail: next }));
    }
    for (const seq of this.pending.keys()) if (seq <= this.lastSeq) this.pending.delete(seq);
    return "applied";
  }

  get hasGap() {
    return this.pending.size > 0;
  }

  get(id) {
    return this.comments.get(id);
  }

  threads() {
    return [...this.comments.values()].filter((c) => c.parent === null).sort(byCreation);
  }

  replies(threadId) {
    return [...this.comments.values()].filter((c) => c.parent === threadId).sort(byCreation);
  }

  /** Element id -> {threads, open}: threads (not deleted) anchored on each node or edge, for the badges. */
  countsByElement() {
    const counts = new Map();
    for (const comment of this.comments.values()) {
      if (comment.parent !== null || comment.deleted) continue;
      for (const id of anchorIds(comment)) {
        const entry = counts.get(id) || { threads: 0, open: 0 };
        entry.threads += 1;
        if (!comment.resolved) entry.open += 1;
        counts.set(id, entry);
      }
    }
    return counts;
  }
}

export function anchorIds(comment) {
  const anchor = comment.anchor || {};
  return [...(anchor.nodes || []), ...(anchor.edges || [])];
}

function byCreation(a, b) {
  return a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id - b.id;
}
