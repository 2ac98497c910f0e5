"""Scoring a search query against candidate records with the pipeline's linkage model.

Splink writes the SQL (``score_pairs``, term frequencies supplied as columns); it is
captured once. Per search DuckDB runs its comparison vectors (the level each pair
reaches on each comparison), and the match weights are the trained model's for those
levels, summed as Splink's prediction sums them (its log2 Bayes factors and
term-frequency adjustments, read from Splink's own level objects). Binding Splink's
whole prediction SQL costs more than the search; ``score_with_splink`` runs it, and the
tests hold the two to the same figures.
"""

from __future__ import annotations

import math
import re
import threading
import warnings
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from splink import DuckDBAPI, Linker

from veracity.matching import model
from veracity.matching.resolve import _quiet

QUERY_TABLE = "search_query"
CANDIDATES_TABLE = "search_candidates"
VECTORS_END = "__splink__df_match_weight_parts as"  # the CTE after Splink's comparison vectors
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
        self.splink_sql = _CREATE.sub("", scoring[-1], count=1)
        con.close()
        comparisons = linker._settings_obj.comparisons
        self.comparisons = [c.output_column_name for c in comparisons]
        self.levels = {(c.output_column_name, lv.comparison_vector_value): Level(c.output_column_name, lv.label_for_charts)
                       for c in comparisons for lv in c.comparison_levels}
        self._weights = {c.output_column_name: _level_weights(c) for c in comparisons}
        # Per comparison, its gamma values and their weights, for a lookup per search.
        self._level_arrays = {name: (pa.array(list(levels), pa.int64()),
                                     pa.array([level.weight for level in levels.values()], pa.float64()))
                              for name, levels in self._weights.items()}
        prior = linker._settings_obj._probability_two_random_records_match
        self.prior_weight = math.log2(prior / (1 - prior))
        # Splink's comparison vectors: its prediction SQL up to the match weights.
        cut = self.splink_sql.index(VECTORS_END)
        vectors = self.splink_sql[:cut].rstrip().rstrip(",")
        outputs = ["unique_id_r"] + [f"gamma_{name}" for name in self.comparisons] + [
            f"tf_{column}_{side}" for column in self.tf_columns for side in ("l", "r")]
        self.columns = list(sample.column_names)
        self._con = duckdb.connect()
        self._con.execute("SET threads = 1")
        self._vectors_sql = f"{vectors}\nSELECT {', '.join(outputs)} FROM __splink__df_comparison_vectors"
        self._lock = threading.Lock()

    def _run(self, sql: str, query: pa.Table, candidates: pa.Table) -> pa.Table:
        with self._lock:  # one connection, one search at a time
            self._con.register(QUERY_TABLE, query.select(self.columns))
            self._con.register(CANDIDATES_TABLE, candidates.select(self.columns))
            try:
                with warnings.catch_warnings():
                    # execute() binds Splink's SQL faster than sql(); the copy it warns of is of a few rows.
                    warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
                    return self._con.execute(sql).to_arrow_table()
            finally:
                self._con.unregister(QUERY_TABLE)
                self._con.unregister(CANDIDATES_TABLE)

    def score(self, query: pa.Table, candidates: pa.Table) -> pa.Table:
        vectors = self._run(self._vectors_sql, query, candidates)
        out = {"unique_id_r": vectors.column("unique_id_r"), "match_weight": None, "match_probability": None}
        zeros = pa.repeat(pa.scalar(0.0), vectors.num_rows)
        total = pc.add(zeros, self.prior_weight)
        sides: dict[str, tuple[pa.ChunkedArray, pa.ChunkedArray]] = {}
        for name in self.comparisons:
            gamma = vectors.column(f"gamma_{name}").combine_chunks()
            levels = self._weights[name]
            values, weights = self._level_arrays[name]
            weight = pc.take(weights, pc.index_in(gamma, value_set=values.cast(gamma.type)))
            adjustment = zeros
            for value, level in levels.items():
                if not level.tf_column:
                    continue
                at = pc.equal(gamma, value)
                if pc.any(at).as_py():
                    if level.tf_column not in sides:  # read once per search, whichever levels adjust by it
                        sides[level.tf_column] = tuple(vectors.column(f"tf_{level.tf_column}_{side}").cast(pa.float64())
                                                       for side in ("l", "r"))
                    tf_l, tf_r = sides[level.tf_column]
                    # Splink's adjustment: against the rarer-looking side's u, never below the level's floor.
                    u = pc.max_element_wise(tf_l, tf_r, level.tf_minimum_u)
                    adjusted = pc.multiply(pc.subtract(level.tf_log2_u, pc.log2(u)), level.tf_weight)
                    adjusted = pc.if_else(pc.and_(pc.is_null(tf_l), pc.is_null(tf_r)), 0.0, adjusted)
                    adjustment = pc.if_else(at, adjusted, adjustment)
            out[f"gamma_{name}"] = gamma
            out[f"mw_{name}"] = weight
            if any(level.tf_column for level in levels.values()):
                out[f"mw_tf_adj_{name}"] = adjustment
            total = pc.add(total, pc.add(weight, adjustment))
        out["match_weight"] = total
        # 2^w / (1 + 2^w), computed without overflow for large |w|, as Splink does.
        small = pc.power(2.0, pc.negate(pc.abs(total)))
        out["match_probability"] = pc.if_else(pc.greater_equal(total, 0.0), pc.divide(1.0, pc.add(small, 1.0)),
                                              pc.divide(small, pc.add(small, 1.0)))
        return pa.table(out)

    def score_with_splink(self, query: pa.Table, candidates: pa.Table) -> pa.Table:
        """The same scores by Splink's whole prediction SQL (slower: for checking ``score``)."""
        return self._run(self.splink_sql, query, candidates)


@dataclass(frozen=True)
class _LevelWeight:
    weight: float  # log2 Bayes factor
    tf_column: str | None = None
    tf_weight: float = 0.0
    tf_log2_u: float = 0.0  # log2 of the u of the exact-match level the adjustment is against
    tf_minimum_u: float = 0.0


def _level_weights(comparison) -> dict[int, _LevelWeight]:
    levels = comparison.comparison_levels
    out = {}
    for level in levels:
        if level.is_null_level:
            out[level.comparison_vector_value] = _LevelWeight(0.0)
            continue
        adjusted = level._has_tf_adjustments and level._tf_adjustment_weight != 0 and not level._is_else_level
        out[level.comparison_vector_value] = _LevelWeight(
            level._log2_bayes_factor,
            level._tf_adjustment_input_column.unquote().name if adjusted else None,
            level._tf_adjustment_weight if adjusted else 0.0,
            math.log2(level._u_probability_corresponding_to_exact_match(levels)) if adjusted else 0.0,
            float(level._tf_minimum_u_value or 0.0) if adjusted else 0.0,
        )
    return out
