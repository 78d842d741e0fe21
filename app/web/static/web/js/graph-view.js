// The drawing: Cytoscape.js with our styles, selection (tap, shift/ctrl-tap, box select), comment badges and
// the highlight of a comment's anchor.

import cytoscape from "../../vendor/cytoscape/cytoscape.esm.min.js";

const BADGE_SIZE = 20;

/** A round badge with a number, as an SVG data URI (img-src allows data:, and no markup reaches the DOM). */
function badgeImage(count, open) {
  const text = count > 99 ? "99+" : String(count);
  const fill = open ? "#c2410c" : "#6b7280";
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${BADGE_SIZE}" height="${BADGE_SIZE}">` +
    `<circle cx="10" cy="10" r="9.5" fill="${fill}"/>` +
    `<text x="10" y="14" font-family="sans-serif" font-size="${text.length > 1 ? 9 : 12}" font-weight="bold" ` +
    `fill="#fff" text-anchor="middle">${text}</text></svg>`;
  return `data:image/svg+xml;utf8,${encodeURIComponent(svg)}`;
}

const STYLE = [
  {
    selector: "node",
    style: {
      "background-color": "#7aa6c2",
      "border-width": 1,
      "border-color": "#3d6a85",
      label: "data(cc_label)",
      "font-size": 11,
      "font-family": "system-ui, sans-serif",
      color: "#1f2937",
      "text-valign": "bottom",
      "text-margin-y": 3,
      "text-outline-color": "#ffffff",
      "text-outline-width": 2,
      width: 26,
      height: 26,
    },
  },
  {
    selector: "edge",
    style: {
      width: 2,
      "line-color": "#9ca3af",
      "target-arrow-color": "#9ca3af",
      "target-arrow-shape": "triangle",
      "curve-style": "bezier",
      "arrow-scale": 0.8,
    },
  },
  {
    selector: "node.has-comments",
    style: {
      "border-width": 3,
      "border-color": "#c2410c",
      "background-image": "data(cc_badge)",
      "background-width": BADGE_SIZE,
      "background-height": BADGE_SIZE,
      "background-position-x": "100%",
      "background-position-y": "0%",
      "background-offset-x": BADGE_SIZE / 2,
      "background-offset-y": -BADGE_SIZE / 2,
      "background-clip": "none",
      "background-image-containment": "over",
      "bounds-expansion": BADGE_SIZE,
    },
  },
  { selector: "node.has-comments.all-resolved", style: { "border-color": "#6b7280" } },
  {
    selector: "edge.has-comments",
    style: {
      width: 3,
      "line-color": "#c2410c",
      "target-arrow-color": "#c2410c",
      label: "data(cc_count)",
      "font-size": 10,
      color: "#ffffff",
      "text-background-color": "#c2410c",
      "text-background-opacity": 1,
      "text-background-shape": "round-rectangle",
      "text-background-padding": 2,
    },
  },
  {
    selector: "edge.has-comments.all-resolved",
    style: { "line-color": "#6b7280", "target-arrow-color": "#6b7280", "text-background-color": "#6b7280" },
  },
  {
    selector: ":selected",
    style: {
      "overlay-color": "#2563eb",
      "overlay-opacity": 0.25,
      "overlay-padding": 4,
    },
  },
  { selector: "node:selected", style: { "overlay-shape": "ellipse", "background-color": "#2563eb", "border-color": "#1e3a8a" } },
  { selector: "edge:selected", style: { "line-color": "#2563eb", "target-arrow-color": "#2563eb", width: 4 } },
  { selector: ".faded", style: { opacity: 0.2 } },
  {
    selector: "node.highlighted",
    style: { "underlay-shape": "ellipse", "underlay-color": "#facc15", "underlay-opacity": 0.8, "underlay-padding": 8, "z-index": 10 },
  },
  {
    selector: "edge.highlighted",
    style: { "underlay-color": "#facc15", "underlay-opacity": 0.8, "underlay-padding": 6, width: 4, "z-index": 10 },
  },
];

export class GraphView extends EventTarget {
  /** Events: "select" (detail: {nodes: [ids], edges: [ids]}), "layoutstop". */
  constructor(container, elements) {
    super();
    const nodes = (elements.nodes || []).map((n) => withLabel(n));
    const edges = (elements.edges || []).map((e) => withLabel(e));
    const positioned = nodes.length > 0 && nodes.every((n) => n.position);
    this.cy = cytoscape({
      container,
      elements: { nodes, edges },
      style: STYLE,
      layout: { name: "preset" },
      boxSelectionEnabled: true,
      selectionType: "single",
      minZoom: 0.1,
      maxZoom: 4,
    });
    // For tests and for debugging from the console; nothing else reads it.
    container.cy = this.cy;
    this.positioned = positioned;
    this.bindSelection();
  }

  /** Lay the graph out (unless it came with positions) and resolve when done. */
  layout(force = false) {
    return new Promise((resolve) => {
      const options =
        this.positioned && !force
          ? { name: "preset", fit: true, padding: 30 }
          : {
              name: "cose",
              animate: false,
              // Start from random spots inside a box of the canvas's shape: the result then fills a wide screen
              // instead of coming out as tall as it is wide (and drawn small).
              randomize: true,
              boundingBox: this.layoutBox(),
              fit: true,
              padding: 30,
              nodeDimensionsIncludeLabels: true,
              // Longer springs and stronger repulsion than the defaults: biological networks have hubs (TP53)
              // whose neighbours otherwise pile up on top of each other.
              idealEdgeLength: () => 70,
              nodeRepulsion: () => 60000,
              nodeOverlap: 20,
              numIter: 1500,
            };
      const layout = this.cy.layout(options);
      layout.one("layoutstop", () => {
        // A small graph fitted to a large canvas would be drawn huge; keep it at a readable size, centred.
        if (this.cy.zoom() > 1.25) {
          this.cy.zoom(1.25);
          this.cy.center();
        }
        this.dispatchEvent(new Event("layoutstop"));
        resolve();
      });
      layout.run();
    });
  }

  /** A box of the canvas's shape with room for about 110 × 110 px per node: small graphs stay compact. */
  layoutBox() {
    const width = Math.max(this.cy.width(), 300);
    const height = Math.max(this.cy.height(), 200);
    const scale = Math.min(1, Math.sqrt((this.cy.nodes().size() * 110 * 110) / (width * height)));
    return { x1: 0, y1: 0, w: width * scale, h: height * scale };
  }

  bindSelection() {
    // Cytoscape's "single" selection is the usual rule: a tap selects only what was tapped, shift/ctrl/meta-tap
    // adds or removes, shift-drag on the background box-selects, a tap on the background clears.
    this.cy.on("tapstart", (event) => {
      if (event.target === this.cy) this.dispatchEvent(new Event("backgroundtap"));
    });
    let queued = false;
    // Many select/unselect events fire for one gesture; announce the resulting selection once.
    this.cy.on("select unselect", () => {
      if (queued) return;
      queued = true;
      queueMicrotask(() => {
        queued = false;
        this.dispatchEvent(new CustomEvent("select", { detail: this.selection() }));
      });
    });
  }

  selection() {
    const selected = this.cy.$(":selected");
    return {
      nodes: selected.nodes().map((n) => n.id()),
      edges: selected.edges().map((e) => e.id()),
    };
  }

  setSelected(ids) {
    const wanted = new Set(ids);
    this.cy.batch(() => {
      this.cy.elements().forEach((element) => {
        if (wanted.has(element.id())) element.select();
        else element.unselect();
      });
    });
  }

  toggleSelected(id, selected) {
    const element = this.cy.getElementById(id);
    if (element.empty()) return;
    if (selected) element.select();
    else element.unselect();
  }

  clearSelection() {
    this.cy.elements().unselect();
  }

  /** Show each element's thread count (Map id -> {threads, open}). */
  setBadges(counts) {
    this.cy.batch(() => {
      this.cy.elements().forEach((element) => {
        const entry = counts.get(element.id());
        if (entry && entry.threads > 0) {
          element.data("cc_count", String(entry.threads));
          if (element.isNode()) element.data("cc_badge", badgeImage(entry.threads, entry.open > 0));
          element.addClass("has-comments");
          element.toggleClass("all-resolved", entry.open === 0);
        } else {
          element.removeClass("has-comments all-resolved");
          element.removeData("cc_count cc_badge");
        }
      });
    });
  }

  /** Highlight the anchor of a comment (fading the rest) and bring it into view if it is not; an empty anchor
   * (the whole graph) clears the highlight. */
  highlight(nodeIds, edgeIds, { move = true } = {}) {
    const ids = [...nodeIds, ...edgeIds];
    const anchor = this.cy.collection(ids.map((id) => this.cy.getElementById(id)).filter((e) => e.nonempty()));
    this.cy.batch(() => {
      this.cy.elements().removeClass("highlighted faded");
      if (anchor.nonempty()) {
        // An edge's ends stay visible, so that the highlighted edge is readable.
        const context = anchor.union(anchor.edges().connectedNodes());
        this.cy.elements().not(context).addClass("faded");
        anchor.addClass("highlighted");
      }
    });
    if (!move) return anchor.size();
    if (anchor.nonempty()) {
      const extent = anchor.union(anchor.edges().connectedNodes());
      // Already in view: leave the camera alone, the fading says enough.
      const seen = extent.renderedBoundingBox();
      if (seen.x1 >= 0 && seen.y1 >= 0 && seen.x2 <= this.cy.width() && seen.y2 <= this.cy.height()) return anchor.size();
      // Else bring it into view, zooming in no further than a comfortable reading size.
      const box = extent.boundingBox();
      const fitZoom = Math.min((this.cy.width() - 160) / Math.max(box.w, 1), (this.cy.height() - 160) / Math.max(box.h, 1));
      const zoom = Math.max(this.cy.minZoom(), Math.min(1.2, fitZoom));
      this.cy.animate({ zoom, center: { eles: extent }, duration: 250 });
    }
    return anchor.size();
  }

  clearHighlight() {
    this.cy.elements().removeClass("highlighted faded");
  }

  fit() {
    this.cy.animate({ fit: { eles: this.cy.elements(), padding: 30 }, duration: 200 });
  }

  label(id) {
    const element = this.cy.getElementById(id);
    return element.nonempty() ? element.data("cc_name") : id;
  }

  nodes() {
    return this.cy.nodes().map((n) => ({ id: n.id(), label: n.data("cc_name") }));
  }

  edges() {
    return this.cy.edges().map((e) => ({
      id: e.id(),
      label: `${this.label(e.data("source"))} → ${this.label(e.data("target"))}`,
    }));
  }
}

/** A copy of an element with our display fields (cc_ prefix: never clashes with the graph's own data). */
function withLabel(element) {
  const data = { ...element.data };
  const name = data.label ?? data.name ?? data.id;
  data.cc_name = String(name);
  data.cc_label = element.group === "edges" || "source" in data ? "" : String(name);
  return { ...element, data, group: "source" in data ? "edges" : "nodes" };
}
