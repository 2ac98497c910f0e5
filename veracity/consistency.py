"""How far two resolutions of the same records agree: a full run against the
incremental state it replaces."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa


@dataclass
class Consistency:
    records_compared: int  # records in both resolutions
    pairs_in_either: int  # record pairs placed in one person by either resolution
    pairs_in_both: int
    persons_differing: int  # persons of the second resolution whose records are not exactly one person of the first

    @property
    def pairwise_agreement(self) -> float:
        """Pairs both resolutions put together over pairs either does (1 when neither links any)."""
        return self.pairs_in_both / self.pairs_in_either if self.pairs_in_either else 1.0


def compare_partitions(con: duckdb.DuckDBPyConnection, first: pa.Table, second: pa.Table) -> Consistency:
    """Compare two (unique_id, person_id) tables over the records both hold."""
    con.register("first_resolution", first.select(["unique_id", "person_id"]))
    con.register("second_resolution", second.select(["unique_id", "person_id"]))
    row = con.execute("""
        WITH both_ AS (
            SELECT a.unique_id, a.person_id AS first_id, b.person_id AS second_id
            FROM first_resolution a JOIN second_resolution b USING (unique_id)
        ), cells AS (SELECT first_id, second_id, count(*) AS n FROM both_ GROUP BY ALL),
        firsts AS (SELECT first_id, sum(n) AS n FROM cells GROUP BY ALL),
        seconds AS (SELECT second_id, sum(n) AS n, count(*) AS parts, max(n) AS largest FROM cells GROUP BY ALL),
        totals AS (
            SELECT (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM cells) AS together,
                   (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM firsts) AS first_pairs,
                   (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM seconds) AS second_pairs
        )
        SELECT (SELECT coalesce(sum(n), 0) FROM cells), first_pairs + second_pairs - together, together,
               (SELECT count(DISTINCT s.second_id) FROM seconds s JOIN cells c ON c.second_id = s.second_id
                JOIN firsts f ON f.first_id = c.first_id
                WHERE s.parts > 1 OR f.n <> s.n)
        FROM totals
    """).fetchall()[0]
    return Consistency(records_compared=int(row[0]), pairs_in_either=int(row[1]), pairs_in_both=int(row[2]),
                       persons_differing=row[3])
