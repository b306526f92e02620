"""Each workflow run's DAG as a ``dag.Graph``, kept per process.

A run's DAG is fixed when the run starts (editing the workflow never changes it, a retry
is a new run), so a graph cached under the run's id can never be out of date. Advancing a
run at every node end and answering GET on it both use it instead of re-reading and
re-indexing a 1,000-node document each time.
"""

from __future__ import annotations

import threading

from cachetools import LRUCache

from app.workflows import dag
from app.workflows.models import WorkflowRun

#: The most recently used runs' graphs (a few MB at most for 1,000-node runs).
_GRAPHS: LRUCache[str, dag.Graph] = LRUCache(maxsize=64)
_GRAPHS_LOCK = threading.Lock()  # cachetools' caches are not thread-safe


def graph_of(run: WorkflowRun) -> dag.Graph:
    """The run's DAG as a graph, built once per process while it is in use."""
    with _GRAPHS_LOCK:
        graph = _GRAPHS.get(run.id)
    if graph is None:
        graph = dag.Graph(run.dag)
        with _GRAPHS_LOCK:
            _GRAPHS[run.id] = graph
    return graph
