"""Athena SQL over the published snapshot, on the embedded engine.

Queries are written in Athena's (Trino) dialect, as an analyst would write them in
the console; sqlglot transpiles them to DuckDB, which reads the snapshot's files.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import sqlglot
import sqlglot.errors

from veracity import snapshots
from veracity.errors import VeracityError
from veracity.lake import Lake


def transpile(sql: str) -> str:
    """Athena (Trino) SQL -> DuckDB SQL. Raises VeracityError on a syntax error."""
    try:
        statements = sqlglot.transpile(sql, read="athena", write="duckdb")
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first else ""
        raise VeracityError(f"SQL syntax error{where}: {first.get('description', exc)}") from None
    statements = [s for s in statements if s.strip()]
    if len(statements) != 1:
        raise VeracityError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


def connect(lake: Lake, run_id: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per table of the (current) snapshot."""
    con = duckdb.connect()
    snapshots.register(con, lake, snapshots.read_snapshot(lake, run_id))
    return con


def query(lake: Lake, sql: str, run_id: str | None = None) -> pa.Table:
    duck_sql = transpile(sql)
    con = connect(lake, run_id)
    try:
        return con.sql(duck_sql).to_arrow_table()
    except duckdb.CatalogException as exc:
        tables = ", ".join(sorted(n for n, in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()))
        message = str(exc).splitlines()[0]
        raise VeracityError(f"{message}. Tables: {tables}") from None
    except duckdb.Error as exc:
        raise VeracityError(f"query failed: {str(exc).splitlines()[0]}") from None
