"""Each workflow run's DAG as a ``dag.Graph``, kept per process.

A run's DAG is fixed when the run starts (editing the workflow never changes it), so a
graph cached under the run's id can never be out of date. Advancing a run at every node
end and answering GET on it both use it instead of re-reading and re-indexing a
1,000-node document each time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from app.workflows import dag
from app.workflows.models import WorkflowRun

_GRAPHS: OrderedDict[str, dag.Graph] = OrderedDict()
_GRAPHS_LOCK = threading.Lock()
_GRAPHS_KEPT = 64


def graph_of(run: WorkflowRun) -> dag.Graph:
    """The run's DAG as a graph (the most recently used runs' are kept)."""
    with _GRAPHS_LOCK:
        graph = _GRAPHS.get(run.id)
        if graph is not None:
            _GRAPHS.move_to_end(run.id)
            return graph
    graph = dag.Graph(run.dag)
    with _GRAPHS_LOCK:
        _GRAPHS[run.id] = graph
        while len(_GRAPHS) > _GRAPHS_KEPT:
            _GRAPHS.popitem(last=False)
    return graph
