from pathlib import Path

import pytest

from veracity.errors import VeracityError
from veracity.sql import query, transpile

SQL_FILES = sorted((Path(__file__).resolve().parent.parent / "sql").rglob("*.sql"))


def test_athena_functions_transpile_to_duckdb():
    duck = transpile("SELECT approx_distinct(person_id), date_format(last_seen, '%Y-%m') FROM person")
    assert "APPROX_COUNT_DISTINCT" in duck.upper() and "STRFTIME" in duck.upper()


def test_more_than_one_statement_is_refused():
    with pytest.raises(VeracityError, match="one SQL statement"):
        transpile("SELECT 1; SELECT 2")


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.name)
def test_shipped_sql_runs_over_pipeline_output(path, resolved_lake):
    lake, summary = resolved_lake
    result = query(lake, path.read_text())
    assert result.num_rows > 0


def test_records_per_system_adds_up(resolved_lake):
    lake, summary = resolved_lake
    sql = (Path(__file__).resolve().parent.parent / "sql" / "examples" / "records_per_system.sql").read_text()
    result = query(lake, sql)
    assert sum(result.column("records").to_pylist()) == summary.totals.records_clean
    assert all(0 <= s <= 1 for s in result.column("share_seen_elsewhere").to_pylist())


def test_sql_files_exist():
    assert SQL_FILES
