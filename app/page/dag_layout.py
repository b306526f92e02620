"""A layered drawing of a DAG, computed on the server so the page only paints it.

Each node's layer is its longest path from a root; within a layer nodes are ordered by the
mean position of their upstream nodes (one barycentre pass), which keeps most edges short
and uncrossed for the DAGs workflows have. Linear in nodes plus edges: a 1,000-node DAG
lays out in a few milliseconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from html import escape

NODE_WIDTH = 180
NODE_HEIGHT = 54
GAP_X = 60
GAP_Y = 18
MARGIN = 10


@dataclasses.dataclass(frozen=True)
class Box:
    name: str
    x: int
    y: int


@dataclasses.dataclass(frozen=True)
class Layout:
    boxes: dict[str, Box]
    edges: list[tuple[str, str]]  # (upstream, node)
    width: int
    height: int
    node_width: int = NODE_WIDTH


def layout(nodes: Sequence[tuple[str, Sequence[str]]], node_width: int = NODE_WIDTH) -> Layout:
    """Boxes for ``(name, upstream names)`` pairs given in topological order."""
    layer: dict[str, int] = {}
    for name, upstream in nodes:
        layer[name] = 1 + max((layer[u] for u in upstream if u in layer), default=-1)
    rows: dict[int, list[str]] = {}
    position: dict[str, float] = {}
    ups = dict(nodes)
    for name, _ in nodes:
        rows.setdefault(layer[name], []).append(name)
    for depth in sorted(rows):
        members = rows[depth]
        members.sort(key=lambda n: _barycentre(n, ups[n], position))
        rows[depth] = members
        for index, name in enumerate(members):
            position[name] = index
    boxes = {
        name: Box(
            name,
            MARGIN + depth * (node_width + GAP_X),
            MARGIN + index * (NODE_HEIGHT + GAP_Y),
        )
        for depth, members in rows.items()
        for index, name in enumerate(members)
    }
    edges = [(u, name) for name, upstream in nodes for u in upstream if u in boxes]
    depth_count = len(rows)
    widest = max((len(members) for members in rows.values()), default=0)
    return Layout(
        boxes,
        edges,
        2 * MARGIN + depth_count * node_width + max(0, depth_count - 1) * GAP_X,
        2 * MARGIN + widest * NODE_HEIGHT + max(0, widest - 1) * GAP_Y,
        node_width,
    )


def _barycentre(name: str, upstream: Sequence[str], position: dict[str, float]) -> float:
    placed = [position[u] for u in upstream if u in position]
    return sum(placed) / len(placed) if placed else float("inf")


@dataclasses.dataclass(frozen=True)
class DrawnNode:
    name: str
    state: str
    detail: str  # after the state: "· 3 instances"
    href: str


def svg(drawing: Layout, nodes: Sequence[DrawnNode], label: str = "Workflow DAG") -> str:
    """The DAG as SVG markup (escaped here): a string join, not a template loop, because
    a 1,000-node DAG is 40,000 template expressions (half a second) but 20 ms this way."""
    half = NODE_HEIGHT // 2
    width = drawing.node_width
    fits = width // 8  # characters of a name that fit in its box
    parts = [
        f'<svg id="dag" width="{drawing.width}" height="{drawing.height}" '
        f'viewBox="0 0 {drawing.width} {drawing.height}" role="group" '
        f'aria-label="{escape(label)}"><g class="edges">'
    ]
    for up, down in drawing.edges:
        a, b = drawing.boxes[up], drawing.boxes[down]
        x1, y1, x2, y2 = a.x + width, a.y + half, b.x, b.y + half
        parts.append(f'<path d="M{x1},{y1} C{x1 + 30},{y1} {x2 - 30},{y2} {x2},{y2}"/>')
    parts.append("</g>")
    for node in nodes:
        box = drawing.boxes[node.name]
        name, state, detail = escape(node.name), escape(node.state), escape(node.detail)
        shown = escape(node.name if len(node.name) <= fits else node.name[: fits - 1] + "…")
        parts.append(
            f'<a class="node state-{state}" data-node="{name}" href="{escape(node.href)}" '
            f'aria-label="{name}: {state}{detail}"><rect x="{box.x}" y="{box.y}" '
            f'width="{width}" height="{NODE_HEIGHT}" rx="6"/>'
            f'<text x="{box.x + 8}" y="{box.y + 20}" class="name">{shown}</text>'
            f'<text x="{box.x + 8}" y="{box.y + 40}" '
            f'class="state-text">{state}{detail}</text></a>'
        )
    parts.append("</svg>")
    return "".join(parts)
