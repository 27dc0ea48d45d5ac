"""Small directed graphs drawn as SVG by the server: a pipeline run's steps, a dataset's lineage.

Nodes come parents first; each sits one column right of its parent (a root in column 0) and
below the nodes already in its column. No layout engine and no script: a graph here is a tree
or close to one, and its page must render without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BOX_H", "BOX_W", "LABEL_GAP", "Graph", "Node", "layered"]

BOX_W, BOX_H, COL_W, ROW_H, PAD = 180, 56, 240, 80, 12
LABEL_GAP = 200  # room for an edge's label of ~30 characters


@dataclass(frozen=True, slots=True)
class Node:
    key: str
    title: str
    status: str  # a CSS class: a run status, "input", "version"
    href: str | None = None
    subtitle: str = ""  # the second line (the status when empty)
    parent: str | None = None
    edge_label: str = ""  # written on the edge from its parent
    edge_href: str | None = None


@dataclass(frozen=True, slots=True)
class Placed:
    node: Node
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int
    label: str
    href: str | None


@dataclass(frozen=True, slots=True)
class Graph:
    boxes: list[Placed]
    edges: list[Edge]
    width: int
    height: int


def layered(nodes: list[Node], gap: int = COL_W - BOX_W) -> Graph:
    """`gap`: the room between two columns (wider when the edges carry labels)."""
    col_w = BOX_W + gap
    depth: dict[str, int] = {}
    rows: dict[int, int] = {}
    placed: dict[str, Placed] = {}
    for node in nodes:
        column = depth[node.parent] + 1 if node.parent in depth else 0
        depth[node.key] = column
        row = rows.get(column, 0)
        rows[column] = row + 1
        placed[node.key] = Placed(node, PAD + column * col_w, PAD + row * ROW_H)
    edges = []
    for box in placed.values():
        parent = placed.get(box.node.parent or "")
        if parent is not None:
            edges.append(Edge(parent.x + BOX_W, parent.y + BOX_H // 2, box.x, box.y + BOX_H // 2,
                              box.node.edge_label, box.node.edge_href))  # fmt: skip
    columns = max(depth.values(), default=0)
    width = PAD * 2 + columns * col_w + BOX_W
    height = PAD * 2 + (max(rows.values(), default=1) - 1) * ROW_H + BOX_H
    return Graph(list(placed.values()), edges, width, height)
