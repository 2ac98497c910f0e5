"""Accuracy of the resolved persons against ground truth: pairwise and B-cubed; and
of the association networks against the planted offending networks."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb
import pyarrow as pa

from veracity.errors import LakeError
from veracity.lake import Lake
from veracity.matching.blocking import blocking_recall
from veracity.sql import connect

# True persons whose records the blocking recall is measured on, at most.
BLOCKING_SAMPLE_PERSONS = 100_000


@dataclass
class Scores:
    precision: float
    recall: float
    f1: float


@dataclass
class Evaluation:
    records: int
    true_persons: int
    predicted_persons: int
    pairwise: Scores
    bcubed: Scores
    persons_with_two_pnc_ids: int | None = None
    blocking: dict | None = None  # BlockingRecall.as_dict() and the share of persons it was measured on
    networks: dict | None = None  # network_recovery(): planted networks recovered, as an adjusted Rand index

    def as_dict(self) -> dict:
        return asdict(self)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score(con: duckdb.DuckDBPyConnection) -> Evaluation:
    """Scores for a connection holding ``predicted(record_key, cluster)`` and ``truth(record_key, cluster)``."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE joined AS
        SELECT p.record_key, p.cluster AS predicted, t.cluster AS actual
        FROM predicted p JOIN truth t USING (record_key)
        """
    )
    n, true_n, pred_n, tp, pp, ap = con.execute(
        """
        WITH cells AS (SELECT predicted, actual, count(*) AS n FROM joined GROUP BY ALL),
             pred AS (SELECT predicted, count(*) AS n FROM joined GROUP BY ALL),
             act AS (SELECT actual, count(*) AS n FROM joined GROUP BY ALL)
        SELECT (SELECT count(*) FROM joined), (SELECT count(*) FROM act), (SELECT count(*) FROM pred),
               (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM cells),
               (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM pred),
               (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM act)
        """
    ).fetchone()
    if not n:
        raise LakeError("no resolved record has ground truth: is this a synthetic lake?")
    # B-cubed: per record, the share of its predicted cluster that is truly its person
    # (precision) and the share of its true person found in its cluster (recall).
    b_p, b_r = con.execute(
        """
        WITH cells AS (SELECT predicted, actual, count(*) AS n FROM joined GROUP BY ALL),
             pred AS (SELECT predicted, count(*) AS n FROM joined GROUP BY ALL),
             act AS (SELECT actual, count(*) AS n FROM joined GROUP BY ALL)
        SELECT sum(c.n * c.n / p.n) / sum(c.n), sum(c.n * c.n / a.n) / sum(c.n)
        FROM cells c JOIN pred p USING (predicted) JOIN act a USING (actual)
        """
    ).fetchone()
    p = tp / pp if pp else 1.0
    r = tp / ap if ap else 1.0
    return Evaluation(n, true_n, pred_n, Scores(p, r, _f1(p, r)), Scores(b_p, b_r, _f1(b_p, b_r)))


def evaluate(lake: Lake) -> Evaluation:
    if not lake.exists("truth", "records"):
        raise LakeError(f"no ground truth under {lake.display('truth')}: evaluate needs a synthetic lake")
    con = connect(lake)
    truth = lake.read_table("truth", "records")
    con.register("truth_records", truth)
    con.execute(
        "CREATE TEMP VIEW truth AS SELECT DISTINCT source_system || ':' || source_record_id AS record_key, person_id AS cluster FROM truth_records"
    )
    con.execute(
        "CREATE TEMP VIEW predicted AS SELECT source_system || ':' || source_record_id AS record_key, person_id AS cluster FROM person_xref"
    )
    result = score(con)
    result.persons_with_two_pnc_ids = con.execute(
        """
        SELECT count(*) FROM (
            SELECT x.person_id FROM person_xref x JOIN clean_person c USING (source_system, source_record_id)
            WHERE c.pnc_id IS NOT NULL GROUP BY x.person_id HAVING count(DISTINCT c.pnc_id) > 1)
        """
    ).fetchall()[0][0]
    # Blocking recall on a sample of the true persons (every record of each): at ten
    # million records the compared true pairs alone would not fit in memory.
    persons = con.execute("SELECT count(DISTINCT cluster) FROM truth").fetchall()[0][0]
    share = min(1.0, BLOCKING_SAMPLE_PERSONS / max(persons, 1))
    con.execute(f"""
        CREATE TEMP TABLE sampled_truth AS SELECT record_key AS unique_id, cluster AS true_id FROM truth
        WHERE hash(cluster) % 1000000 < {round(share * 1_000_000)}
    """)
    records = con.sql("SELECT c.* FROM clean_person c SEMI JOIN sampled_truth s ON s.unique_id = c.unique_id").to_arrow_table()
    truth_ids = con.sql("SELECT * FROM sampled_truth").to_arrow_table()
    result.blocking = {**blocking_recall(duckdb.connect(), records, truth_ids).as_dict(), "share_of_persons": round(share, 4)}
    result.networks = network_recovery(con, lake)
    return result


def adjusted_rand_index(truth: list, predicted: list) -> float:
    """Hubert and Arabie's adjusted Rand index of two labellings of the same items."""
    from collections import Counter
    from math import comb

    n = len(truth)
    pairs = sum(comb(c, 2) for c in Counter(zip(truth, predicted, strict=True)).values())
    truth_pairs = sum(comb(c, 2) for c in Counter(truth).values())
    predicted_pairs = sum(comb(c, 2) for c in Counter(predicted).values())
    expected = truth_pairs * predicted_pairs / comb(n, 2) if n > 1 else 0.0
    best = (truth_pairs + predicted_pairs) / 2
    return 1.0 if best == expected else (pairs - expected) / (best - expected)


def network_recovery(con: duckdb.DuckDBPyConnection, lake: Lake) -> dict | None:
    """How well ``network_member`` recovers the planted networks, over their members: each
    true member is labelled with the network of the person holding most of its records
    (or a label of its own when that person is in none)."""
    if not lake.exists("truth", "networks"):
        return None
    con.register("truth_networks", lake.read_table("truth", "networks"))
    rows = con.sql("""
        WITH held AS (
            SELECT t.person_id AS true_id, x.person_id, count(*) AS records
            FROM truth_records t JOIN person_xref x USING (source_system, source_record_id)
            GROUP BY t.person_id, x.person_id
        ), holder AS (
            SELECT * FROM held QUALIFY row_number() OVER (PARTITION BY true_id ORDER BY records DESC, person_id) = 1
        )
        SELECT n.network_id AS planted, coalesce(m.network_id, 'alone:' || n.person_id) AS found
        FROM truth_networks n
        LEFT JOIN holder h ON h.true_id = n.person_id
        LEFT JOIN network_member m ON m.person_id = h.person_id
    """).fetchall()
    if not rows:
        return None
    planted, found = [r[0] for r in rows], [r[1] for r in rows]
    return {"adjusted_rand_index": round(adjusted_rand_index(planted, found), 4), "members": len(rows),
            "planted_networks": len(set(planted)),
            "networks_found": con.sql("SELECT count(DISTINCT network_id) FROM network_member").fetchall()[0][0]}


def score_tables(predicted: pa.Table, truth: pa.Table) -> Evaluation:
    """Score two (record_key, cluster) tables; used by tests and benchmarks."""
    con = duckdb.connect()
    con.register("predicted", predicted)
    con.register("truth", truth)
    return score(con)
