"""The workflow document as a graph: edges, validation, order and sweep instances.

Pure functions over the ``nodes`` list a client sends (already shaped by the schema);
nothing here touches the database.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

Node = dict[str, Any]
ALL_SUCCESS, ALL_DONE = "all_success", "all_done"
MAX_INSTANCES = 1000  # sweep combinations of one node
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def upstream(node: Node) -> list[str]:
    """Nodes this one waits for: those it takes inputs from, then ``depends_on``."""
    names = [item["from"]["node"] for item in node.get("inputs", [])]
    names += node.get("depends_on", [])
    return list(dict.fromkeys(names))


def dependants(nodes: Iterable[Node]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for node in nodes:
        for name in upstream(node):
            found.setdefault(name, []).append(node["name"])
    return found


def by_name(nodes: Iterable[Node]) -> dict[str, Node]:
    return {node["name"]: node for node in nodes}


class Graph:
    """A run's DAG with the lookups a decision needs, built once: a run's DAG never
    changes, and rebuilding them from 1,000 nodes at every node end cost milliseconds."""

    def __init__(self, nodes: list[Node]):
        self.nodes = by_name(nodes)
        self.upstream = {name: upstream(node) for name, node in self.nodes.items()}
        self.upstream_set = {name: frozenset(names) for name, names in self.upstream.items()}
        self.dependants = dependants(nodes)
        self.order = topological_order(nodes)
        self._shorter: dict[frozenset[str], tuple[bool, list[str]]] = {}
        # What a run's view says of each node whatever its state (queries.node_view).
        self.outline = [
            {
                "name": node["name"],
                "pipeline_id": node.get("pipeline_id"),
                "job_kind": node.get("job_kind"),
                "trigger": node.get("trigger", ALL_SUCCESS),
                "upstream": tuple(self.upstream[node["name"]]),
            }
            for node in nodes
        ]

    def shorter(self, names: frozenset[str]) -> tuple[bool, list[str]]:
        """``names`` as the shorter of (True, the names) and (False, every other node)."""
        found = self._shorter.get(names)
        if found is None:
            others = sorted(self.nodes.keys() - names)
            found = (True, sorted(names)) if len(names) <= len(others) else (False, others)
            self._shorter[names] = found
        return found


def topological_order(nodes: list[Node]) -> list[str]:
    """Node names, every node after all of its upstream nodes (the DAG has no cycle)."""
    order: list[str] = []
    seen: set[str] = set()
    graph = by_name(nodes)

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for parent in upstream(graph[name]):
            visit(parent)
        order.append(name)

    for node in nodes:
        visit(node["name"])
    return order


def find_cycle(nodes: list[Node]) -> list[str] | None:
    """A cycle as the path of its nodes in edge direction (``[a, b, c, a]``), or None."""
    graph = {name: [] for name in by_name(nodes)}
    for node in nodes:
        for parent in upstream(node):
            if parent in graph:
                graph[parent].append(node["name"])
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for child in graph[name]:
            if state.get(child) == 1:
                return path[path.index(child) :] + [child]
            if child not in state and (cycle := visit(child)):
                return cycle
        state[name] = 2
        path.pop()
        return None

    for name in graph:
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


def problems(
    nodes: list[Node], known_pipelines: set[str], known_kinds: set[str] = frozenset()
) -> dict[str, Any]:
    """Field errors of a workflow's nodes: ``{"nodes": {"<index>": {...}, "_graph": [...]}}``."""
    errors: dict[str, Any] = {}
    names = {node["name"] for node in nodes}
    seen: set[str] = set()
    for index, node in enumerate(nodes):
        found = _node_problems(node, names, known_pipelines, known_kinds)
        if node["name"] in seen:
            found.setdefault("name", []).append(f"Duplicate node name {node['name']!r}")
        seen.add(node["name"])
        if found:
            errors[str(index)] = found
    if not errors:
        cycle = find_cycle(nodes)
        if cycle:
            errors["_graph"] = [f"cycle: {' -> '.join(cycle)}"]
    return {"nodes": errors} if errors else {}


def _node_problems(
    node: Node, names: set[str], known_pipelines: set[str], known_kinds: set[str]
) -> dict[str, list]:
    name, found = node["name"], {}
    if "job_kind" in node:
        if node["job_kind"] not in known_kinds:
            have = ", ".join(sorted(known_kinds)) or "none"
            found["job_kind"] = [f"Node {name!r}: no job kind {node['job_kind']!r} ({have})"]
    elif node["pipeline_id"] not in known_pipelines:
        found["pipeline_id"] = [f"Node {name!r}: no pipeline {node['pipeline_id']}"]
    for position, item in enumerate(node.get("inputs", [])):
        source = item["from"]["node"]
        if source not in names:
            found[f"inputs.{position}.from.node"] = [f"Node {name!r}: no node {source!r}"]
    unknown = [source for source in node.get("depends_on", []) if source not in names]
    if unknown:
        found["depends_on"] = [f"Node {name!r}: no node {source!r}" for source in unknown]
    if name in upstream(node):
        found.setdefault("depends_on", []).append(f"Node {name!r} depends on itself")
    return found


def sweep_instances(node: Node) -> list[dict[str, str]]:
    """The parameter values of each instance: the product of the sweep's lists."""
    sweep: dict[str, list[str]] = node.get("sweep") or {}
    if not sweep:
        return [{}]
    keys = sorted(sweep)
    combinations = itertools.product(*(sweep[key] for key in keys))
    return [dict(zip(keys, values, strict=True)) for values in combinations]


def instance_count(node: Node) -> int:
    count = 1
    for values in (node.get("sweep") or {}).values():
        count *= len(values)
    return count


def instance_label(values: dict[str, str]) -> str:
    """A folder name that says which sweep instance a file came from: ``LOAD_SCALE-0.8``."""
    parts = [f"{key}-{values[key]}" for key in sorted(values)]
    label = _UNSAFE.sub("_", "_".join(parts))
    return label if label[:1].isalnum() else f"_{label}"
