"""Resolve a new batch against the people already known, changing only those it touches.

The last snapshot holds the records it resolved (``clean_person``), their persons
(``person_xref``) and every scored pair (``match_pairs``). A run then:

1. finds the records to score: new records and new versions of known ones, and the
   known records a gone or rescored record stood for in scoring (``represented_by``);
2. scores them against each other and against the other current records (less those
   an identical record still stands for), with the saved model (Splink's
   ``predict_within`` and ``predict_between``), and keeps the earlier pairs between
   records that are unchanged;
3. re-clusters only the affected persons: those holding a record scored now, a record
   gone, a record a new link reaches, or a record a reviewer has decided on since;
   closed over the kept links, so no link crosses from an affected person to an
   untouched one.

Clustering, the constraints and the review candidates are ``resolve.cluster_scored``,
as in a full run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from veracity.matching import model
from veracity.matching.resolve import (
    DECISIONS_TABLE,
    RECORDS_TABLE,
    Resolution,
    cluster_scored,
    linker_for,
    links_sql,
    pairs_sql,
)

PREVIOUS_RECORDS = "veracity_previous_records"
PREVIOUS_PAIRS = "veracity_previous_pairs"
PREVIOUS_XREF = "veracity_previous_xref"
NEW_DECISIONS = "veracity_new_decisions"
# Rounds of widening the affected persons over kept links before giving up on a delta.
MAX_CLOSURE_ROUNDS = 50


@dataclass
class Increment:
    resolution: Resolution  # clusters, strongest links and review candidates of the affected records only
    affected_persons: pa.Table  # person_id: the previous persons re-clustered (their rows are replaced)
    nodes: pa.Table  # unique_id: the current records re-clustered
    scored: int  # records scored this run
    gone: int  # record versions of the last snapshot no longer current


def resolve_increment(con: duckdb.DuckDBPyConnection, records: pa.Table, previous_records: pa.Table, previous_xref: pa.Table,
                      previous_pairs: str | pa.Table, trained: dict, decisions: pa.Table, new_decisions: pa.Table,
                      out_dir: str, progress: Callable[[str], None] = lambda _m: None) -> Increment:
    """``records``: every current clean record; ``previous_records``: the versions
    (unique_id, batch_id, extracted_at) of the records the last snapshot resolved; ``previous_xref``: their (unique_id, person_id);
    ``previous_pairs``: its match_pairs (a Parquet path or a table); ``decisions``: every
    reviewer's decision in force, ``new_decisions``: those made since the last snapshot."""
    linker = linker_for(con, records, trained)
    db_api = linker._db_api
    con.register(DECISIONS_TABLE, decisions)
    con.register(NEW_DECISIONS, new_decisions)
    con.register(PREVIOUS_RECORDS, previous_records)
    con.register(PREVIOUS_XREF, previous_xref)
    if isinstance(previous_pairs, str):
        con.execute(f"CREATE VIEW {PREVIOUS_PAIRS} AS SELECT * FROM read_parquet('{previous_pairs}')")
    else:
        con.register(PREVIOUS_PAIRS, previous_pairs)

    # Versions the snapshot resolved that are no longer current: deleted or replaced.
    con.execute(f"""
        CREATE TABLE veracity_gone AS
        SELECT p.unique_id FROM {PREVIOUS_RECORDS} p
        ANTI JOIN {RECORDS_TABLE} c ON c.unique_id = p.unique_id AND c.batch_id = p.batch_id
                                   AND c.extracted_at = p.extracted_at
    """)
    con.execute(f"""
        CREATE TABLE veracity_to_score AS
        SELECT c.unique_id FROM {RECORDS_TABLE} c
        ANTI JOIN {PREVIOUS_RECORDS} p ON c.unique_id = p.unique_id AND c.batch_id = p.batch_id
                                      AND c.extracted_at = p.extracted_at
    """)
    _add_represented(con)
    con.execute(f"DELETE FROM veracity_to_score WHERE unique_id NOT IN (SELECT unique_id FROM {RECORDS_TABLE})")
    con.execute(f"CREATE TABLE veracity_new_records AS SELECT r.* FROM {RECORDS_TABLE} r SEMI JOIN veracity_to_score USING (unique_id)")
    con.execute(f"CREATE TABLE veracity_known_records AS SELECT r.* FROM {RECORDS_TABLE} r ANTI JOIN veracity_to_score USING (unique_id)")
    # Known records another stood for in scoring still are: only the others are scored against.
    con.execute(f"""
        CREATE TABLE veracity_representation AS
        SELECT x.unique_id, x.represented_by FROM {PREVIOUS_XREF} x SEMI JOIN veracity_known_records k USING (unique_id)
        WHERE x.represented_by IS NOT NULL
    """)
    con.execute("CREATE TABLE veracity_known_scored AS SELECT * FROM veracity_known_records ANTI JOIN veracity_representation USING (unique_id)")
    scored, gone = (con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("veracity_new_records", "veracity_gone"))
    progress(f"scoring {scored:,} new or changed records against the known ones ({gone:,} earlier versions gone)")

    # Pairs: the earlier ones between unchanged records, and the new records' own.
    con.execute(f"""
        CREATE TABLE veracity_pairs AS
        SELECT k.unique_id_l, k.unique_id_r, k.match_weight, k.match_probability, k.evidence FROM {PREVIOUS_PAIRS} k
        SEMI JOIN veracity_known_records l ON l.unique_id = k.unique_id_l
        SEMI JOIN veracity_known_records r ON r.unique_id = k.unique_id_r
    """)
    con.execute("CREATE TABLE veracity_kept_pairs AS SELECT * FROM veracity_pairs")
    # Links: every reviewer's must-link now, the new pairs' links as they are scored, and
    # the kept pairs' links once the affected records are known (only theirs are needed).
    con.execute(f"CREATE TABLE veracity_links AS {links_sql('(SELECT * FROM veracity_pairs LIMIT 0)', RECORDS_TABLE, DECISIONS_TABLE)}")
    comparisons = 0
    if scored:
        for name in (c.name.strip('"') for c in linker._settings_obj._term_frequency_columns):
            linker.table_management.compute_tf_table(name)
        new = db_api.register("veracity_new_records")
        known = db_api.register("veracity_known_scored")
        for against, predict in (("each other", lambda: linker.inference.predict_within(new, warning_mode="never")),
                                 ("the known records", lambda: linker.inference.predict_between(new, known, warning_mode="never"))):
            predictions = predict()  # every blocked pair, scored: counted, then kept above the floor
            progress(f"scored the new records against {against}")
            comparisons += con.execute(f"SELECT count(*) FROM {predictions.physical_name}").fetchall()[0][0]
            # predict_between puts the new record on the left: order each pair's ids as every pair is.
            columns = set(con.sql(f"SELECT * FROM {predictions.physical_name} LIMIT 0").columns)
            ordered = f"""(SELECT * REPLACE (least(unique_id_l, unique_id_r) AS unique_id_l,
                                             greatest(unique_id_l, unique_id_r) AS unique_id_r)
                           FROM {predictions.physical_name} WHERE match_probability >= {model.REVIEW_FLOOR})"""
            con.execute(f"INSERT INTO veracity_pairs {pairs_sql(ordered, columns)}")
            con.execute(f"INSERT INTO veracity_links {links_sql(ordered, RECORDS_TABLE, DECISIONS_TABLE, must_links=False)}")
            predictions.drop_table_from_database_and_remove_from_cache()
    progress("scored the new records")

    _affected(con)
    con.execute("CREATE VIEW veracity_nodes AS SELECT unique_id FROM veracity_affected_records")
    among_nodes = """(SELECT k.* FROM veracity_kept_pairs k
                      SEMI JOIN veracity_affected_records l ON l.unique_id = k.unique_id_l
                      SEMI JOIN veracity_affected_records r ON r.unique_id = k.unique_id_r)"""
    con.execute(f"INSERT INTO veracity_links {links_sql(among_nodes, RECORDS_TABLE, DECISIONS_TABLE, must_links=False)}")
    # Only links within the affected records are clustered (the closure leaves none leaving them).
    con.execute("""
        DELETE FROM veracity_links WHERE unique_id_l NOT IN (SELECT unique_id FROM veracity_affected_records)
                                      OR unique_id_r NOT IN (SELECT unique_id FROM veracity_affected_records)
    """)
    resolution = cluster_scored(con, db_api, decisions, out_dir, comparisons, progress)
    return Increment(
        resolution=resolution,
        affected_persons=con.sql("SELECT person_id FROM veracity_affected_persons").to_arrow_table(),
        nodes=con.sql("SELECT unique_id FROM veracity_affected_records").to_arrow_table(),
        scored=scored, gone=gone,
    )


def _add_represented(con: duckdb.DuckDBPyConnection) -> None:
    """Add to ``veracity_to_score`` the unchanged records a gone or rescored record stood
    for in scoring (``represented_by``): their one pair was with it."""
    con.execute(f"""
        INSERT INTO veracity_to_score
        SELECT x.unique_id FROM {PREVIOUS_XREF} x
        WHERE x.represented_by IN (SELECT unique_id FROM veracity_to_score UNION SELECT unique_id FROM veracity_gone)
        EXCEPT SELECT unique_id FROM veracity_to_score
    """)


def _affected(con: duckdb.DuckDBPyConnection) -> None:
    """``veracity_affected_persons`` (previous person ids) and ``veracity_affected_records``
    (current unique ids): the persons holding a record scored now or gone, a record a new
    link reaches or a reviewer has decided on since, widened over the links until no link
    leaves them."""
    # The links of the kept pairs are not worked out yet: their pairs at the threshold (a
    # superset) stand in for them, so the closure may take in a person more, never fewer.
    con.execute(f"""
        CREATE VIEW veracity_edges AS
        SELECT unique_id_l, unique_id_r FROM veracity_kept_pairs WHERE match_probability >= {model.LINK_THRESHOLD}
        UNION ALL SELECT unique_id_l, unique_id_r FROM veracity_links
    """)
    con.execute(f"""
        CREATE TABLE veracity_seeds AS
        SELECT unique_id FROM veracity_to_score
        UNION SELECT unique_id FROM veracity_gone
        UNION SELECT k.unique_id_r FROM veracity_links k SEMI JOIN veracity_to_score s ON s.unique_id = k.unique_id_l
        UNION SELECT k.unique_id_l FROM veracity_links k SEMI JOIN veracity_to_score s ON s.unique_id = k.unique_id_r
        UNION SELECT unique_id_l FROM {NEW_DECISIONS}
        UNION SELECT unique_id_r FROM {NEW_DECISIONS}
    """)
    con.execute(f"""
        CREATE TABLE veracity_affected_persons AS
        SELECT DISTINCT x.person_id FROM {PREVIOUS_XREF} x SEMI JOIN veracity_seeds s USING (unique_id)
    """)
    for _round in range(MAX_CLOSURE_ROUNDS):
        con.execute(f"""
            CREATE OR REPLACE TABLE veracity_affected_records AS
            SELECT unique_id FROM veracity_to_score
            UNION SELECT x.unique_id FROM {PREVIOUS_XREF} x SEMI JOIN veracity_affected_persons USING (person_id)
                  WHERE x.unique_id IN (SELECT unique_id FROM {RECORDS_TABLE})
            UNION SELECT unique_id_l FROM {NEW_DECISIONS} WHERE unique_id_l IN (SELECT unique_id FROM {RECORDS_TABLE})
            UNION SELECT unique_id_r FROM {NEW_DECISIONS} WHERE unique_id_r IN (SELECT unique_id FROM {RECORDS_TABLE})
        """)
        reached = con.execute(f"""
            INSERT INTO veracity_affected_persons
            SELECT DISTINCT x.person_id FROM (
                SELECT k.unique_id_r AS unique_id FROM veracity_edges k
                SEMI JOIN veracity_affected_records a ON a.unique_id = k.unique_id_l
                UNION
                SELECT k.unique_id_l FROM veracity_edges k
                SEMI JOIN veracity_affected_records a ON a.unique_id = k.unique_id_r
            ) reached JOIN {PREVIOUS_XREF} x USING (unique_id)
            WHERE x.person_id NOT IN (SELECT person_id FROM veracity_affected_persons)
        """).fetchall()[0][0]
        if not reached:
            return
    raise RuntimeError("the affected persons did not settle: run 'veracity run --full'")
