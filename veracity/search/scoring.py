"""Scoring a search query against candidate records with the pipeline's linkage model.

Splink writes the scoring SQL (``score_pairs``, with the trained m, u and λ and the
term frequencies supplied as columns); it is captured once and then run by DuckDB
for each search over two small in-memory tables, so a search pays for the
comparisons, not for building Splink's pipeline.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker

from veracity.matching import model
from veracity.matching.resolve import _quiet

QUERY_TABLE = "search_query"
CANDIDATES_TABLE = "search_candidates"
_CREATE = re.compile(r"^\s*CREATE TABLE \S+ AS\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Level:
    comparison: str
    label: str


class _CapturingAPI(DuckDBAPI):
    """Splink's DuckDB API, keeping the SQL that creates each table."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        super().__init__(connection=con)
        self.created: list[str] = []

    def _execute_sql_against_backend(self, final_sql: str):
        if _CREATE.match(final_sql):
            self.created.append(final_sql)
        return super()._execute_sql_against_backend(final_sql)


def tf_columns(trained: dict) -> list[str]:
    """The columns whose match weights the model adjusts by term frequency."""
    settings = model.settings_dict(model.BASE_DIALECT, trained)
    return sorted({level["tf_adjustment_column"] for comparison in settings["comparisons"]
                   for level in comparison["comparison_levels"] if level.get("tf_adjustment_column")})


class Scorer:
    """``score(query, candidates)``: both prepared records (``model.prepare``) with a
    ``tf_<column>`` column per ``tf_columns``; returns one row per candidate with
    ``match_weight``, ``match_probability`` and each comparison's ``gamma_``/``mw_``."""

    def __init__(self, trained: dict, sample: pa.Table):
        _quiet()
        self.tf_columns = tf_columns(trained)
        con = duckdb.connect()
        api = _CapturingAPI(con)
        sample = sample.slice(0, 1)
        settings = model.settings_dict(model.BASE_DIALECT, trained)
        settings["retain_matching_columns"] = False
        linker = Linker(api.register(sample, table_name="search_sample"), settings, log_level=50)
        before = len(api.created)
        linker.inference.score_pairs(api.register(sample, table_name=QUERY_TABLE),
                                     api.register(sample, table_name=CANDIDATES_TABLE))
        scoring = [sql for sql in api.created[before:] if "__splink__df_predict" in sql.split(" AS ", 1)[0]]
        self._sql = _CREATE.sub("", scoring[-1], count=1)
        con.close()
        self.levels = {
            (c.output_column_name, lv.comparison_vector_value): Level(c.output_column_name, lv.label_for_charts)
            for c in linker._settings_obj.comparisons for lv in c.comparison_levels
        }
        self.comparisons = [c.output_column_name for c in linker._settings_obj.comparisons]
        # Kept prepared over two tables refilled per search: planning Splink's SQL
        # costs more than running it on a few hundred rows.
        outputs = ["unique_id_r", "match_weight", "match_probability"] + [
            f"{kind}_{name}" for name in self.comparisons for kind in ("gamma", "mw")] + [
            f"mw_tf_adj_{column}" for column in self.tf_columns]
        self._con = duckdb.connect()
        self._con.execute("SET threads = 1")
        self._con.register("search_sample", sample)
        for table in (QUERY_TABLE, CANDIDATES_TABLE):
            self._con.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM search_sample LIMIT 0")
        self._con.unregister("search_sample")
        self.columns = [c for c in sample.column_names]
        self._con.execute(f"PREPARE search_score AS SELECT {', '.join(outputs)} FROM ({self._sql})")
        self._lock = threading.Lock()

    def score(self, query: pa.Table, candidates: pa.Table) -> pa.Table:
        with self._lock:  # one connection, one search at a time
            for table, rows in ((QUERY_TABLE, query), (CANDIDATES_TABLE, candidates)):
                self._con.execute(f"DELETE FROM {table}")
                self._con.register("search_rows", rows.select(self.columns))
                self._con.execute(f"INSERT INTO {table} SELECT * FROM search_rows")
                self._con.unregister("search_rows")
            return self._con.sql("EXECUTE search_score").to_arrow_table()
