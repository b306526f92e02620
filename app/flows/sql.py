"""User SQL, checked with a real parser (sqlglot, DuckDB dialect) before a flow exists.

Each transform is one read-only query: a SELECT (with CTEs, set operations, subqueries),
nothing else. It may read only the flow's source tables and other transforms, by bare
name: no schema or catalog, no table functions (``read_csv('/etc/passwd')``, ``glob``),
no string or function in a FROM (DuckDB would read a file), no functions that reach
outside (``getenv``, ``read_text``...). The edges of the graph are the tables each query
reads. The engine enforces the same at run time (external access off, configuration
locked), so what the parser cannot see is still refused.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

DIALECT = "duckdb"
# Functions that read files or URLs, reach the environment or run other SQL.
FORBIDDEN_FUNCTIONS = frozenset(
    {
        "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json",
        "read_json_auto", "read_json_objects", "read_ndjson", "read_ndjson_auto",
        "read_ndjson_objects", "read_text", "read_blob", "glob", "sniff_csv",
        "parquet_metadata", "parquet_schema", "parquet_file_metadata", "parquet_kv_metadata",
        "iceberg_scan", "delta_scan", "sqlite_scan", "postgres_scan", "mysql_scan",
        "postgres_query", "mysql_query", "query", "query_table", "getenv", "read_xlsx",
        "st_read", "load_aws_credentials", "duckdb_secrets", "duckdb_settings",
        "duckdb_extensions", "pragma_database_list", "which_secret", "csv_scan",
    }
)  # fmt: skip
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
QUERY_TYPES = (exp.Select, exp.Union, exp.Intersect, exp.Except)
PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"<Token token_type: TokenType\.\w+, text: (.*?), line: \d+.*?>")
# sqlglot warns on the log when it falls back to a generic command (LOAD, CALL): the
# statement is refused anyway, with a message to the client.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


@dataclasses.dataclass
class SqlProblem(Exception):
    """A mistake in one query, with where it is (1-based line and column)."""

    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line}, column {self.column})" if self.line else ""
        return f"{self.message}{where}"

    def as_details(self) -> dict[str, Any]:
        return {"message": self.message, "line": self.line, "column": self.column}


def _position(node: exp.Expression) -> tuple[int | None, int | None]:
    for candidate in (node, node.args.get("this"), *node.find_all(exp.Identifier)):
        meta = getattr(candidate, "meta", None) if isinstance(candidate, exp.Expression) else None
        if meta and "line" in meta:
            end_col = meta.get("col")
            start = meta.get("start")
            end = meta.get("end")
            width = (end - start + 1) if start is not None and end is not None else 1
            column = max(1, end_col - width + 1) if end_col is not None else None
            return meta["line"], column
    return None, None


def _problem(message: str, node: exp.Expression) -> SqlProblem:
    line, column = _position(node)
    return SqlProblem(message, line, column)


def parse_query(sql: str) -> exp.Expression:
    """Parse one read-only query; SqlProblem (with line and column) otherwise."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        description = first.get("description") or str(exc).splitlines()[0]
        description = _TOKEN.sub(lambda m: repr(m.group(1)), description)
        column = first.get("col")
        if column is not None and first.get("highlight"):
            column = max(1, column - len(first["highlight"]) + 1)
        raise SqlProblem(f"SQL does not parse: {description}", first.get("line"), column) from None
    except TokenError as exc:
        raise SqlProblem(f"SQL does not parse: {exc}") from None
    if not statements:
        raise SqlProblem("The query is empty")
    if len(statements) > 1:
        raise _problem("Only one statement is allowed (a single SELECT)", statements[1])
    statement = statements[0]
    if not isinstance(statement, QUERY_TYPES):
        keyword = (
            statement.key.upper()
            if not isinstance(statement, exp.Command)
            else (str(statement.this).upper())
        )
        raise SqlProblem(f"Only a single SELECT is allowed, not {keyword}", 1, 1)
    return statement


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    name = node.sql_name() if hasattr(node, "sql_name") else node.key
    return name.lower()


def tables_read(statement: exp.Expression) -> list[tuple[str, exp.Expression]]:
    """The bare table names a query reads (CTEs excluded), each with its node; refuses
    qualified names, table functions and forbidden functions."""
    _refuse_forbidden(statement)
    found: list[tuple[str, exp.Expression]] = []
    for table in statement.find_all(exp.Table):
        inner = table.args.get("this")
        if not isinstance(inner, exp.Identifier):
            if isinstance(inner, (exp.Func, exp.Anonymous)):
                name = _function_name(inner)
                if name in ALLOWED_TABLE_FUNCTIONS:
                    continue
                raise _problem(f"Table function {name}() is not allowed", table)
            raise _problem("Only tables can be read, by name (no files or strings in FROM)", table)
        if table.args.get("db") or table.args.get("catalog"):
            raise _problem(
                f"Table {table.sql(dialect=DIALECT)}: name tables without a schema or "
                "database (sources and transforms are all in one namespace)",
                table,
            )
        if not PLAIN_NAME.match(table.name):
            raise _problem(
                f"{table.name!r} is not a table name: files and URLs cannot be read", table
            )
        name = table.name.lower()
        if not _names_a_cte(table, name):
            found.append((name, table))
    return found


def _names_a_cte(table: exp.Table, name: str) -> bool:
    """Whether ``name`` at ``table`` means a CTE in scope, as DuckDB resolves it: one of an
    enclosing WITH, and, inside a CTE's own body, only the CTEs before it (that CTE too if
    RECURSIVE). ``WITH meters AS (SELECT * FROM meters ...)`` reads the table meters."""
    node: exp.Expression = table
    inside: exp.CTE | None = None  # the CTE whose body holds the reference, at this level
    while node.parent is not None:
        parent = node.parent
        if isinstance(node, exp.CTE):
            inside = node
        with_ = parent.args.get("with_") or parent.args.get("with")
        if isinstance(with_, exp.With):
            ctes = list(with_.expressions)
            if node is with_ and inside in ctes:
                index = ctes.index(inside)
                ctes = ctes[: index + 1] if with_.args.get("recursive") else ctes[:index]
            if any(cte.alias_or_name.lower() == name for cte in ctes):
                return True
        node = parent
    return False


def _refuse_forbidden(statement: exp.Expression) -> None:
    """Refuse functions that reach outside and commands nested anywhere in the query."""
    for node in statement.walk():
        if isinstance(node, (exp.Func, exp.Anonymous)):
            name = _function_name(node)
            if name in FORBIDDEN_FUNCTIONS:
                raise _problem(f"Function {name}() is not allowed: it reads outside the flow", node)
        if isinstance(node, exp.Command) or (
            isinstance(node, exp.Expression)
            and node.key in {"attach", "copy", "pragma", "set", "install", "load", "detach", "use"}
        ):
            raise _problem(f"{node.key.upper()} is not allowed in a transform", node)


def graph(
    transforms: list[tuple[str, str]], source_tables: set[str]
) -> tuple[dict[str, list[str]], dict[str, SqlProblem]]:
    """Per transform, the tables it reads; and the problem of each transform that has one.

    ``transforms`` are (name, sql); names are compared case-insensitively, as DuckDB does.
    """
    names = {name.lower() for name, _ in transforms}
    edges: dict[str, list[str]] = {}
    problems: dict[str, SqlProblem] = {}
    for name, sql in transforms:
        try:
            statement = parse_query(sql)
            reads = tables_read(statement)
        except SqlProblem as problem:
            problems[name] = problem
            continue
        deps: list[str] = []
        for table, node in reads:
            if table == name.lower():
                problems[name] = _problem(f"Transform {name} cannot read itself", node)
                break
            if table not in names and table not in source_tables:
                problems[name] = _problem(
                    f"Table {table} is neither a source table nor a transform "
                    f"(known: {', '.join(sorted(names | source_tables))})",
                    node,
                )
                break
            if table in names and table not in deps:
                deps.append(table)
        else:
            edges[name.lower()] = deps
    return edges, problems


def find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A cycle as a path in data-flow order (``a, b, c, a``: a feeds b...), or None.

    ``edges`` point from a transform to the transforms it reads.
    """
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in edges.get(node, []):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if state.get(dep) is None:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if state.get(node) is None:
            found = visit(node)
            if found:
                return list(reversed(found))
    return None


def run_order(edges: dict[str, list[str]]) -> list[str]:
    """Transforms in dependency order (stable: definition order among equals)."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(node: str) -> None:
        if node in seen:
            return
        seen.add(node)
        for dep in edges.get(node, []):
            visit(dep)
        done.append(node)

    for node in edges:
        visit(node)
    return done
