"""Which tables a transform reads, resolved as DuckDB resolves names: a CTE hides a table
only where it is in scope (the graph, and so the run order, depends on it)."""

from __future__ import annotations

import pytest

from app.flows import sql


@pytest.mark.parametrize(
    ("query", "reads"),
    [
        # Inside its own body a (non-recursive) CTE is not yet defined: the table is read.
        ("WITH meters AS (SELECT * FROM meters WHERE kwh > 0) SELECT * FROM meters", ["meters"]),
        ("WITH a AS (SELECT 1 AS x), b AS (SELECT * FROM a) SELECT * FROM b", []),
        ("WITH b AS (SELECT * FROM a), a AS (SELECT 1 AS x) SELECT * FROM b", ["a"]),
        ("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
         "SELECT * FROM r", []),
        # A WITH inside a subquery is in scope only there.
        ("WITH b AS (SELECT * FROM a) SELECT * FROM b, (WITH a AS (SELECT 1) SELECT * FROM a) z",
         ["a"]),
        ("SELECT * FROM t JOIN (WITH c AS (SELECT 2) SELECT * FROM c) q ON true", ["t"]),
    ],
)  # fmt: skip
def test_tables_read_resolve_ctes_by_scope(query, reads):
    assert sorted(name for name, _ in sql.tables_read(sql.parse_query(query))) == reads


def test_a_cte_named_like_a_transform_it_reads_keeps_the_edge():
    edges, problems = sql.graph(
        [("b", "WITH a AS (SELECT * FROM a) SELECT * FROM a"), ("a", "SELECT 1 AS x")], set()
    )
    assert problems == {} and edges == {"b": ["a"], "a": []}
    assert sql.run_order(edges) == ["a", "b"]
