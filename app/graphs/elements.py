"""Validation of graphs imported as Cytoscape.js JSON.

Accepted: `{"nodes": [...], "edges": [...]}` or a whole Cytoscape export `{"elements": {...}, ...}`. Each element is
an object with `data.id`; edges also name `data.source` and `data.target`. A bad graph is refused with a message
that names the element at fault, so that the person importing it can fix it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError

MAX_ID_LENGTH = 255


@dataclass(frozen=True)
class ParsedElements:
    elements: dict
    node_ids: list[str]
    edge_ids: list[str]


def _element_id(element: object, kind: str, index: int) -> str:
    if not isinstance(element, dict) or not isinstance(element.get("data"), dict):
        raise ValidationError(f"{kind} #{index}: each element must be an object with a 'data' object.")
    element_id = element["data"].get("id")
    if not isinstance(element_id, str) or not element_id.strip():
        raise ValidationError(f"{kind} #{index}: data.id must be a non-empty string.")
    if len(element_id) > MAX_ID_LENGTH:
        raise ValidationError(f"{kind} #{index}: data.id is longer than {MAX_ID_LENGTH} characters.")
    return element_id


def parse_elements(value: object) -> ParsedElements:
    """Check a Cytoscape.js graph and return it with the ids of its nodes and edges."""
    if isinstance(value, dict) and "elements" in value:
        value = value["elements"]
    if not isinstance(value, dict):
        raise ValidationError('elements must be an object like {"nodes": [...], "edges": [...]}.')
    unknown = set(value) - {"nodes", "edges"}
    if unknown:
        raise ValidationError(f"elements has unknown keys: {', '.join(sorted(unknown))}.")
    nodes = value.get("nodes", [])
    edges = value.get("edges", [])
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise ValidationError("elements.nodes and elements.edges must be lists.")
    if not nodes:
        raise ValidationError("A graph needs at least one node.")
    if len(nodes) + len(edges) > settings.GRAPH_MAX_ELEMENTS:
        raise ValidationError(
            f"The graph has {len(nodes) + len(edges)} elements; the limit is {settings.GRAPH_MAX_ELEMENTS}."
        )
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > settings.GRAPH_MAX_BYTES:
        raise ValidationError(f"The graph is {size} bytes of JSON; the limit is {settings.GRAPH_MAX_BYTES}.")

    seen: set[str] = set()
    node_ids: list[str] = []
    for index, node in enumerate(nodes):
        node_id = _element_id(node, "node", index)
        if node_id in seen:
            raise ValidationError(f"node {node_id}: the id is used twice.")
        seen.add(node_id)
        node_ids.append(node_id)
    node_set = set(node_ids)
    edge_ids: list[str] = []
    for index, edge in enumerate(edges):
        edge_id = _element_id(edge, "edge", index)
        if edge_id in seen:
            raise ValidationError(f"edge {edge_id}: the id is used twice.")
        seen.add(edge_id)
        for end in ("source", "target"):
            endpoint = edge["data"].get(end)
            if not isinstance(endpoint, str) or endpoint not in node_set:
                raise ValidationError(f"edge {edge_id}: {end} {endpoint!r} is not a node of this graph.")
        edge_ids.append(edge_id)
    return ParsedElements({"nodes": nodes, "edges": edges}, node_ids, edge_ids)
