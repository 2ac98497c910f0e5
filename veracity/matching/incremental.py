"""Resolve new batches against the people already known, changing only those they touch.

Works over the last snapshot's tables in place (DuckDB views over its Parquet), so a
run costs little more than the delta: nothing of the population is copied. The caller
provides, in the connection:

- ``veracity_current``: every current record (clean_person columns);
- ``veracity_changed``: the records new since the snapshot or delivered again in a
  later version; ``veracity_gone`` (unique_id): the snapshot's records replaced or deleted;
- ``veracity_previous_xref`` (unique_id, person_id, represented_by, link_group),
  ``previous_match_pairs`` and ``previous_review_queue``: the snapshot's cross
  reference, scored pairs and review queue.

A run then:

1. finds the records to score: the changed ones, and the known records a gone or
   changed record stood for in scoring (``represented_by``);
2. scores them against each other and against the known records they share a
   blocking key with (Splink's ``predict_within`` and ``predict_between``, with the
   saved model and term frequencies counted over every current record);
3. re-clusters the affected records: the link groups (records joined by a chain of
   links, ``person_xref.link_group``) holding a record scored now or gone, a record a
   new link reaches, or a record a reviewer has decided on since. No link leaves a
   link group, so no other person can change.

Clustering, the constraints and the review candidates are ``resolve.cluster_scored``,
as in a full run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import duckdb
import pyarrow as pa

from veracity.matching import model, pair_keys
from veracity.matching.resolve import (
    DECISIONS_TABLE,
    RECORDS_TABLE,
    Resolution,
    cluster_scored,
    linker_for,
    links_sql,
    pairs_sql,
)
from veracity.schema import MATCH_PAIRS

NEW_DECISIONS = "veracity_new_decisions"
PREVIOUS_XREF = "veracity_previous_xref"
PREVIOUS_PAIRS = "previous_match_pairs"
PREVIOUS_QUEUE = "previous_review_queue"
# A pair without its evidence (its score and the cannot-link rules' verdict): what
# clustering reads of the earlier pairs.
SCORE_COLUMNS = ("unique_id_l", "unique_id_r", "match_weight", "match_probability", "refused_by_rule")


@dataclass
class PairLayer:
    """One layer of ``previous_match_pairs``: its relation, the relations of the removal
    keys that apply to it (``snapshots.layers``), and its Parquet file when DuckDB can
    read that itself (a local lake), so a pair's evidence is fetched by row number."""

    relation: str
    removed_by: list[str]
    file: str | None = None
    keyed: bool = False  # its records' keys (pair_keys) serve this run


@dataclass
class Increment:
    resolution: Resolution  # clusters, strongest links and review candidates of the affected records; new pairs only
    affected_persons: pa.Table  # person_id: the previous persons re-clustered (their rows are replaced)
    nodes: pa.Table  # unique_id: the current records re-clustered
    rescored: pa.Table  # unique_id: records whose earlier pairs are void (scored again, replaced or deleted)
    scored: int  # records scored this run
    gone: int  # record versions of the last snapshot no longer current


def resolve_increment(con: duckdb.DuckDBPyConnection, trained: dict, decisions: pa.Table, new_decisions: pa.Table,
                      pair_layers: list[PairLayer], out_dir: str,
                      progress: Callable[[str], None] = lambda _m: None) -> Increment:
    """``decisions``: every reviewer's decision in force; ``new_decisions``: those made
    since the last snapshot; ``pair_layers``: the layers of ``previous_match_pairs``,
    oldest first. The tables named in the module's docstring must exist in ``con``."""
    con.register(DECISIONS_TABLE, decisions)
    con.register(NEW_DECISIONS, new_decisions)
    con.execute("CREATE TABLE veracity_to_score AS SELECT unique_id FROM veracity_changed")
    # Known records a gone or changed record stood for: their one pair was with it.
    con.execute(f"""
        INSERT INTO veracity_to_score
        SELECT x.unique_id FROM {PREVIOUS_XREF} x
        WHERE x.represented_by IN (SELECT unique_id FROM veracity_to_score UNION ALL SELECT unique_id FROM veracity_gone)
          AND x.unique_id NOT IN (SELECT unique_id FROM veracity_to_score UNION ALL SELECT unique_id FROM veracity_gone)
    """)
    con.execute("CREATE TABLE veracity_rescored AS SELECT unique_id FROM veracity_to_score UNION SELECT unique_id FROM veracity_gone")
    scored, gone = (con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("veracity_to_score", "veracity_gone"))
    progress(f"scoring {scored:,} new or changed records against the known ones ({gone:,} earlier versions gone)")
    _candidates(con)
    progress(f"found {con.execute('SELECT count(*) FROM veracity_candidate_ids').fetchall()[0][0]:,} known records "
             "sharing a blocking key with them")
    records = con.sql("SELECT * FROM veracity_linker_records").to_arrow_table()
    con.execute("DROP TABLE veracity_linker_records")  # the linker keeps its own copy
    linker = linker_for(con, records, trained, as_table=True)
    db_api = linker._db_api
    _register_term_frequencies(con, linker)
    con.execute(f"CREATE VIEW veracity_new AS SELECT * FROM {RECORDS_TABLE} WHERE unique_id IN (SELECT unique_id FROM veracity_to_score)")
    con.execute(f"CREATE VIEW veracity_known AS SELECT * FROM {RECORDS_TABLE} WHERE unique_id NOT IN (SELECT unique_id FROM veracity_to_score)")

    con.register("veracity_no_pairs", MATCH_PAIRS.empty())
    con.execute("CREATE TABLE veracity_pairs AS SELECT * FROM veracity_no_pairs")
    comparisons = 0
    if scored:
        new, known = db_api.register("veracity_new"), db_api.register("veracity_known")
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
            con.execute(f"INSERT INTO veracity_pairs BY NAME {pairs_sql(ordered, columns, RECORDS_TABLE)}")
            predictions.drop_table_from_database_and_remove_from_cache()
    con.execute(f"CREATE TABLE veracity_links AS {links_sql('veracity_pairs', RECORDS_TABLE, DECISIONS_TABLE, must_links=False)}")

    _affected(con)
    nodes, persons = (con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("veracity_nodes", "veracity_affected_persons"))
    progress(f"{persons:,} persons affected: {nodes:,} records to cluster again")
    _add_node_records(con)
    progress("read the affected records")
    # The earlier pairs still valid that reach an affected record: those among them
    # are clustered again, the others may be review candidates.
    by_key = _touching(con, pair_layers)
    progress(f"found {con.execute('SELECT count(*) FROM veracity_touching').fetchall()[0][0]:,} earlier pairs of the affected records "
             f"(by their records' {'keys' if by_key else 'ids'})")
    among_nodes = """(SELECT * FROM veracity_touching
                      WHERE unique_id_l IN (SELECT unique_id FROM veracity_nodes)
                        AND unique_id_r IN (SELECT unique_id FROM veracity_nodes))"""
    con.execute(f"INSERT INTO veracity_links {links_sql(among_nodes, RECORDS_TABLE, DECISIONS_TABLE, must_links=False)}")
    con.execute(f"""INSERT INTO veracity_links
                    SELECT * FROM ({links_sql('(SELECT * FROM veracity_pairs LIMIT 0)', RECORDS_TABLE, DECISIONS_TABLE)})""")
    con.execute("""
        DELETE FROM veracity_links WHERE unique_id_l NOT IN (SELECT unique_id FROM veracity_nodes)
                                      OR unique_id_r NOT IN (SELECT unique_id FROM veracity_nodes)
    """)
    # Records an identical, unchanged record still stands for.
    con.execute(f"""
        CREATE TABLE veracity_representation AS
        SELECT x.unique_id, x.represented_by FROM {PREVIOUS_XREF} x
        WHERE x.represented_by IS NOT NULL AND x.unique_id IN (SELECT unique_id FROM veracity_nodes)
          AND x.unique_id NOT IN (SELECT unique_id FROM veracity_to_score)
    """)
    con.execute(f"""
        CREATE TABLE veracity_review_pairs AS
        SELECT * FROM veracity_pairs UNION ALL BY NAME SELECT {', '.join(SCORE_COLUMNS)} FROM veracity_touching
    """)
    con.execute(f"""
        CREATE TABLE veracity_outside AS
        SELECT x.unique_id, x.person_id AS cluster_id FROM {PREVIOUS_XREF} x
        SEMI JOIN (SELECT unique_id_l AS unique_id FROM veracity_review_pairs UNION SELECT unique_id_r FROM veracity_review_pairs
                   EXCEPT SELECT unique_id FROM veracity_nodes) USING (unique_id)
    """)
    resolution = cluster_scored(con, decisions, out_dir, comparisons, progress,
                                review_pairs="veracity_review_pairs", outside="veracity_outside")
    resolution = replace(resolution, review_candidates=_with_evidence(con, resolution.review_candidates, pair_layers, progress))
    return Increment(
        resolution=resolution,
        affected_persons=con.sql("SELECT person_id FROM veracity_affected_persons").to_arrow_table(),
        nodes=con.sql("SELECT unique_id FROM veracity_nodes").to_arrow_table(),
        rescored=con.sql("SELECT unique_id FROM veracity_rescored").to_arrow_table(),
        scored=scored, gone=gone,
    )


def _touching(con: duckdb.DuckDBPyConnection, pair_layers: list[PairLayer]) -> bool:
    """``veracity_touching``: the earlier pairs, still valid, with an affected record:
    their scores and where each lies (layer, row number), not their evidence, which
    ``_with_evidence`` fetches for the few a reviewer will see. Read layer by layer
    with one lookup per record (is it affected; is its pair void: rescored now, or
    removed by a later layer), as the pairs are many: by the records' integer keys
    where a layer has them, by their ids where it has not or two records share a
    key. Whether the keys served."""
    con.execute(f"CREATE TABLE veracity_touching AS SELECT {', '.join(SCORE_COLUMNS)}, 0 AS layer, 0::BIGINT AS file_row_number "
                f"FROM {PREVIOUS_PAIRS} LIMIT 0")
    keyed = [i for i, layer in enumerate(pair_layers) if layer.keyed]
    if keyed and not _touching_by_key(con, pair_layers, keyed):
        keyed = []
    for i, layer in enumerate(pair_layers):
        if i not in keyed:
            _insert_touching(con, layer, i, "unique_id", "unique_id_l", "unique_id_r", SCORE_COLUMNS, "veracity_touching")
    return bool(keyed)


def _layer_source(layer: PairLayer) -> str:
    """A layer's pairs with their row numbers in its file (null when read otherwise)."""
    return f"read_parquet('{layer.file}', file_row_number = true)" if layer.file else \
        f"(SELECT *, NULL::BIGINT AS file_row_number FROM {layer.relation})"


def _insert_touching(con: duckdb.DuckDBPyConnection, layer: PairLayer, i: int, by: str, left: str, right: str,
                     columns: tuple[str, ...], into: str) -> None:
    """Insert into ``into`` the ``columns`` (then the layer and file_row_number) of
    layer ``i``'s pairs that touch an affected record and are not void, matching each
    record's ``by`` (its id, or its key) from the pair's ``left`` and ``right``
    columns: one lookup per record, for the pairs are many. The pairs touching an
    affected record are found first: they are few, and only they are looked up
    again for void records."""
    record = "unique_id" if by == "unique_id" else f"{pair_keys.key_sql('unique_id')} AS {by}"
    removed = "".join(f" UNION ALL SELECT key, false, true FROM {keys}" for keys in layer.removed_by)
    con.execute(f"""
        CREATE OR REPLACE TABLE veracity_pair_roles_{i} AS
        SELECT {by}, bool_or(node) AS node, bool_or(void) AS void FROM (
            SELECT {record}, node, void FROM (
                SELECT unique_id, true AS node, false AS void FROM veracity_nodes
                UNION ALL SELECT unique_id, false, true FROM veracity_rescored{removed}))
        GROUP BY {by}
    """)
    affected = f"(SELECT {by} FROM veracity_pair_roles_{i} WHERE node)"
    con.execute(f"""
        CREATE OR REPLACE TABLE veracity_reaching AS
        SELECT {", ".join(f"p.{c}" for c in columns)}, p.file_row_number FROM {_layer_source(layer)} p
        WHERE p.{left} IN {affected} OR p.{right} IN {affected}
    """)
    con.execute(f"""
        INSERT INTO {into}
        SELECT {", ".join(f"p.{c}" for c in columns)}, {i}, p.file_row_number FROM veracity_reaching p
        LEFT JOIN veracity_pair_roles_{i} l ON l.{by} = p.{left}
        LEFT JOIN veracity_pair_roles_{i} r ON r.{by} = p.{right}
        WHERE NOT coalesce(l.void, false) AND NOT coalesce(r.void, false)
    """)
    con.execute("DROP TABLE veracity_reaching")


def _touching_by_key(con: duckdb.DuckDBPyConnection, pair_layers: list[PairLayer], keyed: list[int]) -> bool:
    """The touching pairs of the ``keyed`` layers, found by their records' keys, into
    ``veracity_touching`` with their ids; False (nothing added) when a key these pairs
    or the affected records use is shared by two records, or is no current record's."""
    scores = [c for c in SCORE_COLUMNS if c not in ("unique_id_l", "unique_id_r")]
    con.execute(f"CREATE TABLE veracity_touching_keys AS SELECT key_l, key_r, {', '.join(scores)}, 0 AS layer, "
                f"0::BIGINT AS file_row_number FROM {PREVIOUS_PAIRS} LIMIT 0")
    for i in keyed:
        _insert_touching(con, pair_layers[i], i, "key", "key_l", "key_r", ("key_l", "key_r", *scores), "veracity_touching_keys")
    # Every record a pair of a layer may name: current then, or removed since.
    removed = "".join(f" UNION ALL SELECT key FROM {keys}" for keys in sorted({k for i in keyed for k in pair_layers[i].removed_by}))
    con.execute(f"""
        CREATE TABLE veracity_key_ids AS
        SELECT DISTINCT key, unique_id FROM (
            SELECT {pair_keys.key_sql('unique_id')} AS key, unique_id FROM (
                SELECT unique_id FROM {PREVIOUS_XREF} UNION ALL SELECT unique_id FROM veracity_nodes
                UNION ALL SELECT unique_id FROM veracity_rescored{removed}))
        WHERE key IN (SELECT key_l FROM veracity_touching_keys UNION SELECT key_r FROM veracity_touching_keys
                      {"".join(f" UNION SELECT key FROM veracity_pair_roles_{i}" for i in keyed)})
    """)
    shared, unknown = con.execute("""
        SELECT (SELECT count(*) - count(DISTINCT key) FROM veracity_key_ids),
               (SELECT count(*) FROM veracity_touching_keys
                WHERE key_l NOT IN (SELECT key FROM veracity_key_ids) OR key_r NOT IN (SELECT key FROM veracity_key_ids))
    """).fetchall()[0]
    if shared or unknown:
        return False
    con.execute(f"""
        INSERT INTO veracity_touching
        SELECT l.unique_id, r.unique_id, {', '.join(f"t.{c}" for c in scores)}, t.layer, t.file_row_number
        FROM veracity_touching_keys t
        JOIN veracity_key_ids l ON l.key = t.key_l
        JOIN veracity_key_ids r ON r.key = t.key_r
    """)
    return True


def _with_evidence(con: duckdb.DuckDBPyConnection, candidates: pa.Table, pair_layers: list[PairLayer],
                   progress: Callable[[str], None]) -> pa.Table:
    """The review candidates, with the evidence of those found among the earlier pairs.
    Most were in the last snapshot's review queue (a pair between two persons then).
    The rest, pairs of one person then that a split has parted, are read from their
    layer by row number, which reads only the row groups holding them (a remote
    layer is searched whole)."""
    con.register("veracity_candidates_found", candidates)
    con.execute("""
        CREATE TABLE veracity_wanted AS
        SELECT t.unique_id_l, t.unique_id_r, t.layer, t.file_row_number
        FROM veracity_candidates_found c JOIN veracity_touching t USING (unique_id_l, unique_id_r)
        WHERE c.evidence IS NULL
    """)
    con.execute(f"""
        CREATE TABLE veracity_evidence AS
        SELECT q.unique_id_l, q.unique_id_r, any_value(q.evidence) AS evidence
        FROM {PREVIOUS_QUEUE} q SEMI JOIN veracity_wanted USING (unique_id_l, unique_id_r)
        GROUP BY ALL
    """)
    con.execute("DELETE FROM veracity_wanted w WHERE EXISTS (SELECT 1 FROM veracity_evidence e "
                "WHERE e.unique_id_l = w.unique_id_l AND e.unique_id_r = w.unique_id_r)")
    parted = con.execute("SELECT count(*) FROM veracity_wanted").fetchall()[0][0]
    for i, layer in enumerate(pair_layers if parted else []):
        if layer.file:
            fetched = f"""
                SELECT w.unique_id_l, w.unique_id_r, p.evidence
                FROM read_parquet('{layer.file}', file_row_number = true) p
                JOIN (SELECT * FROM veracity_wanted WHERE layer = {i}) w USING (file_row_number)"""
        else:
            fetched = f"""
                SELECT p.unique_id_l, p.unique_id_r, p.evidence FROM {layer.relation} p
                SEMI JOIN (SELECT * FROM veracity_wanted WHERE layer = {i}) w USING (unique_id_l, unique_id_r)"""
        con.execute(f"INSERT INTO veracity_evidence {fetched}")
    progress(f"read the evidence of the earlier pairs to review ({parted:,} of them parted by a split)")
    return con.sql("""
        SELECT c.* REPLACE (coalesce(c.evidence, e.evidence) AS evidence)
        FROM veracity_candidates_found c LEFT JOIN veracity_evidence e USING (unique_id_l, unique_id_r)
    """).to_arrow_table()


def _candidates(con: duckdb.DuckDBPyConnection) -> None:
    """``veracity_linker_records``: the records to score, as they are now, and the known
    records scored in their own right that share the key of some blocking rule with
    one (``veracity_candidate_ids``). Only these can be blocked with a record to
    score, so scoring against them alone gives the same pairs as against all."""
    columns = sorted({c for rule in model.PREDICTION_BLOCKING_COLUMNS for c in rule})
    # Records to score that are not new (an identical record stood for them): their
    # blocking columns first, their whole rows with the candidates' in one read below.
    blocking = ", ".join(f'"{c}"' for c in columns)
    con.execute(f"""
        CREATE TABLE veracity_unchanged AS
        SELECT unique_id, {blocking} FROM veracity_current
        WHERE unique_id IN (SELECT unique_id FROM veracity_to_score EXCEPT SELECT unique_id FROM veracity_changed)
    """)
    to_score = f"(SELECT unique_id, {blocking} FROM veracity_changed UNION ALL SELECT * FROM veracity_unchanged)"
    # Each column hashed once, each rule's key a hash of its columns' hashes: most
    # columns serve several rules, and hashing the values is most of a scan's work.
    hashed = ", ".join(f'hash("{c}") AS "hash_{c}"' for c in columns)
    keys = []
    for i, rule in enumerate(model.PREDICTION_BLOCKING_COLUMNS):
        key = "hash(" + ", ".join(f'"hash_{c}"' for c in rule) + ")"
        present = " AND ".join(f'"{c}" IS NOT NULL' for c in rule)
        con.execute(f"CREATE TABLE veracity_keys_{i} AS SELECT DISTINCT {key} AS k FROM "
                    f"(SELECT *, {hashed} FROM {to_score}) WHERE {present}")
        keys.append(f"{key} IN (SELECT k FROM veracity_keys_{i})")  # a hash collision only adds a candidate
    # The keys first (a narrow read of every record), then the whole rows.
    con.execute(f"""
        CREATE TABLE veracity_candidate_ids AS
        SELECT unique_id FROM (SELECT unique_id, {hashed} FROM veracity_current) c
        WHERE ({' OR '.join(keys)})
          AND c.unique_id NOT IN (SELECT unique_id FROM veracity_to_score)
          AND c.unique_id NOT IN (SELECT unique_id FROM {PREVIOUS_XREF} WHERE represented_by IS NOT NULL)
    """)
    con.execute("""
        CREATE TABLE veracity_linker_records AS
        SELECT * FROM veracity_changed
        UNION ALL SELECT c.* FROM veracity_current c
        SEMI JOIN (SELECT unique_id FROM veracity_candidate_ids UNION ALL SELECT unique_id FROM veracity_unchanged) USING (unique_id)
    """)


def _register_term_frequencies(con: duckdb.DuckDBPyConnection, linker) -> None:
    """Term frequencies over every current record, as Splink counts them in a full run
    (``term_frequencies_for_single_column_sql``: a value's records over the records
    with a value), for the linker over the records to score and their candidates.
    Every column is counted in one read of the records (grouping sets), as reading
    them is most of the work."""
    db_api = linker._db_api
    columns = linker._settings_obj._term_frequency_columns
    con.execute(f"""
        CREATE TABLE veracity_tf_counts AS
        SELECT {', '.join(c.name for c in columns)},
               {', '.join(f'grouping({c.name}) = 0 AS counted_{i}' for i, c in enumerate(columns))}, count(*) AS records
        FROM veracity_current GROUP BY GROUPING SETS ({', '.join(f'({c.name})' for c in columns)})
    """)
    for i, column in enumerate(columns):
        name = column.unquote().name
        con.execute(f"""
            CREATE TABLE veracity_tf_{name} AS
            SELECT {column.name}, CAST(records AS DOUBLE) / sum(records) OVER () AS {column.tf_name}
            FROM veracity_tf_counts WHERE counted_{i} AND {column.name} IS NOT NULL
        """)
        linker.table_management.register_term_frequency_lookup(db_api.register(f"veracity_tf_{name}"), name)
    con.execute("DROP TABLE veracity_tf_counts")


def _affected(con: duckdb.DuckDBPyConnection) -> None:
    """``veracity_affected_persons`` (previous person ids) and ``veracity_nodes``
    (current unique ids): the link groups holding a record scored now or gone, a record
    a new link reaches or a reviewer has decided on since."""
    con.execute(f"""
        CREATE TABLE veracity_affected_groups AS
        SELECT DISTINCT x.link_group FROM {PREVIOUS_XREF} x WHERE x.unique_id IN (
            SELECT unique_id FROM veracity_rescored
            UNION ALL SELECT unique_id_l FROM veracity_links UNION ALL SELECT unique_id_r FROM veracity_links
            UNION ALL SELECT unique_id_l FROM {NEW_DECISIONS} UNION ALL SELECT unique_id_r FROM {NEW_DECISIONS})
    """)
    con.execute(f"""
        CREATE TABLE veracity_affected_persons AS
        SELECT DISTINCT person_id FROM {PREVIOUS_XREF} WHERE link_group IN (SELECT link_group FROM veracity_affected_groups)
    """)
    con.execute(f"""
        CREATE TABLE veracity_nodes AS
        SELECT unique_id FROM veracity_to_score
        UNION SELECT unique_id FROM {PREVIOUS_XREF}
              WHERE link_group IN (SELECT link_group FROM veracity_affected_groups)
                AND unique_id NOT IN (SELECT unique_id FROM veracity_gone)
    """)


def _add_node_records(con: duckdb.DuckDBPyConnection) -> None:
    """Bring the affected records not yet among the linker's records into it, prepared:
    the reviewers' must-links, the constraints and the golden records read them."""
    missing = con.sql(f"""
        SELECT c.* FROM veracity_current c
        WHERE c.unique_id IN (SELECT unique_id FROM veracity_nodes)
          AND c.unique_id NOT IN (SELECT unique_id FROM {RECORDS_TABLE})
    """).to_arrow_table()
    con.register("veracity_missing_nodes", model.prepare(missing))
    # A new table in its place: appending Arrow rows to a DuckDB table takes several
    # times as long as building a table from both.
    con.execute(f"""CREATE TABLE veracity_records_grown AS
                    SELECT * FROM {RECORDS_TABLE} UNION ALL BY NAME SELECT * FROM veracity_missing_nodes""")
    con.execute(f"DROP TABLE {RECORDS_TABLE}")
    con.execute(f"ALTER TABLE veracity_records_grown RENAME TO {RECORDS_TABLE}")
    con.unregister("veracity_missing_nodes")
