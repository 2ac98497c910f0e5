"""Blocking recall against ground truth: how many truly matching record pairs the
prediction blocking rules bring together.

Two figures: ``direct`` counts pairs some rule compares; ``reachable`` counts pairs
joined through a chain of compared true pairs (a and c are reachable when a-b and
b-c are compared), which is what clustering needs to put them in one person.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb
import pyarrow as pa

from veracity.matching import model


@dataclass
class BlockingRecall:
    true_pairs: int
    direct_pairs: int
    reachable_pairs: int

    @property
    def direct(self) -> float:
        return self.direct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def reachable(self) -> float:
        return self.reachable_pairs / self.true_pairs if self.true_pairs else 1.0

    def as_dict(self) -> dict:
        return {**asdict(self), "direct": round(self.direct, 5), "reachable": round(self.reachable, 5)}


def blocking_recall(con: duckdb.DuckDBPyConnection, records: pa.Table, truth: pa.Table,
                    rules: tuple[tuple[str, ...], ...] = model.PREDICTION_BLOCKING_COLUMNS) -> BlockingRecall:
    """``records`` has clean_person columns; ``truth`` maps unique_id -> true_id."""
    con.register("blocking_records", records)
    con.register("blocking_truth", truth)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE blocking_r AS "
        "SELECT r.*, t.true_id FROM blocking_records r JOIN blocking_truth t USING (unique_id)"
    )
    compared = " OR ".join(
        "(" + " AND ".join(f"l.{c} = r.{c}" for c in columns) + ")" for columns in rules
    )
    edges = con.sql(
        f"SELECT l.unique_id AS a, r.unique_id AS b FROM blocking_r l JOIN blocking_r r "
        f"ON l.true_id = r.true_id AND l.unique_id < r.unique_id WHERE {compared}"
    ).fetchall()
    parent: dict[str, str] = {}

    def root(u: str) -> str:
        parent.setdefault(u, u)
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    con.register("blocking_components", pa.table({
        "unique_id": pa.array(list(parent), pa.string()), "component": pa.array([root(u) for u in parent], pa.string()),
    }))
    true_pairs, reachable = con.execute(
        """
        SELECT (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM (SELECT count(*) AS n FROM blocking_r GROUP BY true_id)),
               (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM (
                    SELECT count(*) AS n FROM blocking_r JOIN blocking_components USING (unique_id) GROUP BY true_id, component))
        """
    ).fetchone()
    return BlockingRecall(int(true_pairs), len(edges), int(reachable))
