"""Athena SQL over the published snapshot, on the embedded engine.

Queries are written in Athena's (Trino) dialect, as an analyst would write them in
the console; sqlglot transpiles them to DuckDB, which reads the snapshot's files.
The reporting views (``sql/views/<name>.sql``, one query each, deployed to Athena by
the analytics stack) are views here too, under the same names.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import sqlglot
import sqlglot.errors

from veracity import snapshots
from veracity.errors import VeracityError
from veracity.lake import Lake

VIEWS_DIR = Path(__file__).resolve().parent.parent / "sql" / "views"


def view_queries(views_dir: Path = VIEWS_DIR) -> dict[str, str]:
    """Each reporting view's query (Athena SQL), by view name."""
    return {path.stem: path.read_text() for path in sorted(views_dir.glob("*.sql"))} if views_dir.is_dir() else {}


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
    """A DuckDB connection with one view per table of the (current) snapshot, and the
    reporting views."""
    return _connect(lake, run_id)[0]


def _connect(lake: Lake, run_id: str | None) -> tuple[duckdb.DuckDBPyConnection, dict[str, str]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # timestamps read as Athena reads them
    snapshots.register(con, lake, snapshots.read_snapshot(lake, run_id))
    return con, create_views(con, view_queries())


def query(lake: Lake, sql: str, run_id: str | None = None) -> pa.Table:
    duck_sql = transpile(sql)
    con, unavailable = _connect(lake, run_id)
    try:
        return con.sql(duck_sql).to_arrow_table()
    except duckdb.CatalogException as exc:
        tables = ", ".join(sorted(n for n, in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()))
        message = str(exc).splitlines()[0]
        missing = "".join(f". View {name} is unavailable here: {error}" for name, error in unavailable.items())
        raise VeracityError(f"{message}. Tables and views: {tables}{missing}") from None
    except duckdb.Error as exc:
        raise VeracityError(f"query failed: {str(exc).splitlines()[0]}") from None


def create_views(con: duckdb.DuckDBPyConnection, queries: dict[str, str]) -> dict[str, str]:
    """Create the views, a view that reads another after it. Those that cannot be made
    (a snapshot without a table they read) are left out: their errors, by view name."""
    pending = {name: transpile(sql) for name, sql in queries.items()}
    while pending:
        failed: dict[str, str] = {}
        for name, sql in pending.items():
            try:
                con.execute(f'CREATE VIEW "{name}" AS {sql}')
            except duckdb.CatalogException as exc:
                failed[name] = str(exc).splitlines()[0]
        if len(failed) == len(pending):
            return failed
        pending = {name: pending[name] for name in failed}
    return {}
