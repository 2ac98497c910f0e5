"""Run the linkage model on the embedded engine: train, score pairs, cluster.

Built to run at ten million records on one machine: DuckDB holds the scored pairs
(spilling to a scratch directory when they outgrow memory) and writes them straight
to Parquet; only per-record results and the small review candidates come back to
Python.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker, block_on

from veracity.errors import ConfigError
from veracity.matching import model, pair_keys
from veracity.matching.constraints import constrained_clusters

# Blocked pairs each EM session trains on (Splink samples records to about this many).
EM_MAX_PAIRS = 1_000_000
# Records up to which comparisons are counted exactly rather than estimated from a sample.
COUNT_SAMPLE_RECORDS = 200_000
# Records on the left-hand side of each prediction pass: bounds the memory scoring needs.
PREDICT_CHUNK_RECORDS = 1_000_000
# DuckDB's working memory before it spills to the scratch directory.
DEFAULT_MEMORY_LIMIT = "8GB"  # VERACITY_DUCKDB_MEMORY overrides it
RECORDS_TABLE = "veracity_records"
REPRESENTATIVES_TABLE = "veracity_representatives"
GROUP_COLUMN = "veracity_group"
DECISIONS_TABLE = "veracity_decisions"
# Rows per row group of the scored pairs' Parquet: a later run reads the evidence of a
# few pairs by row number, and reads every row group holding one of them.
PAIRS_ROW_GROUP_ROWS = 16_384


@dataclass
class Resolution:
    pairs_file: str | None  # local Parquet: every scored pair above the review floor, with evidence
    pairs: int
    comparisons: int  # record pairs scored: one per group of identical records, and the pairs of the others
    # that the blocking rules brought together (estimated above COUNT_SAMPLE_RECORDS)
    links: int  # pairs linked: above the threshold, allowed by the rules and the reviewers, plus must-links
    clusters: pa.Table  # unique_id -> cluster_id
    strongest_link: pa.Table  # unique_id -> match_probability of its strongest link (linked records only)
    review_candidates: pa.Table  # match_pairs rows not linked, between different clusters, not decided
    # unique_id -> represented_by: records an identical record stood for in scoring
    representation: pa.Table | None = None
    # unique_id -> link_group: the clusters before the constraints split them
    link_groups: pa.Table | None = None


def person_id_for(cluster_key: str) -> str:
    """A person id derived from a cluster's earliest record key: the same data gives the same ids."""
    return "P" + hashlib.sha256(cluster_key.encode()).hexdigest()[:15].upper()


def connect(scratch: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that spills to ``scratch`` rather than run out of memory."""
    con = duckdb.connect()
    limit_memory(con)
    # Hand memory DuckDB has freed back to the system: its allocator otherwise keeps
    # gigabytes cached after a large query, beside the Arrow tables the pipeline holds.
    con.execute("SET allocator_background_threads = true")
    con.execute(f"SET temp_directory = '{scratch}'")
    con.execute("SET preserve_insertion_order = false")
    return con


_BYTES = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def limit_memory(con: duckdb.DuckDBPyConnection, share: float = 1.0) -> None:
    """Let DuckDB work in ``share`` of VERACITY_DUCKDB_MEMORY (default 8GB), spilling the rest."""
    setting = os.environ.get("VERACITY_DUCKDB_MEMORY", DEFAULT_MEMORY_LIMIT)
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", setting)
    if not found or found.group(2).lower() not in _BYTES:
        raise ConfigError(f"VERACITY_DUCKDB_MEMORY={setting!r} is not an amount of memory such as 8GB")
    con.execute(f"SET memory_limit = '{int(float(found.group(1)) * _BYTES[found.group(2).lower()] * share)}B'")


def _quiet() -> None:
    logging.getLogger("splink").setLevel(logging.ERROR)


def linker_for(con: duckdb.DuckDBPyConnection, records: pa.Table, trained: dict | None, *, keep_values: bool = False,
               as_table: bool = False) -> Linker:
    """A Splink linker over ``records`` (clean_person columns) registered as ``veracity_records``
    (copied into a DuckDB table with ``as_table``, so rows can be added to it).
    ``keep_values`` keeps the compared values in its output (for charts)."""
    _quiet()
    db_api = DuckDBAPI(connection=con)
    if as_table:
        con.register("veracity_prepared", model.prepare(records))
        con.execute(f"CREATE TABLE {RECORDS_TABLE} AS SELECT * FROM veracity_prepared")
        con.unregister("veracity_prepared")
        sdf = db_api.register(RECORDS_TABLE)
    else:
        sdf = db_api.register(model.prepare(records), table_name=RECORDS_TABLE)
    settings = model.settings_dict(model.BASE_DIALECT, trained)
    settings["retain_matching_columns"] = keep_values
    return Linker(sdf, settings, log_level=logging.ERROR)


def train(con: duckdb.DuckDBPyConnection, records: pa.Table, seed: int = 42) -> tuple[dict, dict]:
    """Train the declared model on ``records``: (Splink model JSON, training summary).

    λ from deterministic rules, u by random sampling, m by EM over several blocking
    rules, each on a sample so training stays quick at any size. An EM session that
    fails (e.g. a level no sampled pair reaches) is skipped and reported: the other
    sessions still estimate every comparison it would have.
    """
    started = time.monotonic()
    linker = linker_for(con, records, None)
    training = linker.training
    training.estimate_probability_two_random_records_match(
        list(model.DETERMINISTIC_RULES), recall=model.DETERMINISTIC_RECALL
    )
    training.estimate_u_using_random_sampling(max_pairs=model.U_MAX_PAIRS, seed=seed)
    sessions = []
    for rule in model.EM_BLOCKING_RULES:
        sql = rule.get_blocking_rule(model.BASE_DIALECT).blocking_rule_sql
        saved = linker._settings_obj.core_model_settings.copy()
        try:
            training.estimate_parameters_using_expectation_maximisation(
                rule, max_pairs=EM_MAX_PAIRS, estimate_without_term_frequencies=True
            )
            sessions.append({"blocking_rule": sql, "outcome": "trained"})
        except ValueError as exc:
            linker._settings_obj.core_model_settings = saved
            sessions.append({"blocking_rule": sql, "outcome": f"skipped: {str(exc).splitlines()[0]}"})
    if not any(s["outcome"] == "trained" for s in sessions):
        raise ValueError("no EM session could be trained: " + "; ".join(s["outcome"] for s in sessions))
    model_json = linker.misc.save_model_to_json()
    summary = {
        "trained_at": datetime.now(UTC).isoformat(),
        "records": records.num_rows,
        "seed": seed,
        "probability_two_random_records_match": model_json["probability_two_random_records_match"],
        "lambda_rules": [r.get_blocking_rule(model.BASE_DIALECT).blocking_rule_sql for r in model.DETERMINISTIC_RULES],
        "lambda_assumed_recall": model.DETERMINISTIC_RECALL,
        "u_max_pairs": model.U_MAX_PAIRS,
        "em_max_pairs": EM_MAX_PAIRS,
        "em_sessions": sessions,
        "seconds": round(time.monotonic() - started, 1),
    }
    return model_json, summary


def _weight_sql(name: str, columns: set[str]) -> str:
    """One comparison's match weight, term-frequency adjustment included."""
    weight = f"mw_{name}" if f"mw_{name}" in columns else "0"
    if f"mw_tf_adj_{name}" in columns:
        weight += f" + coalesce(mw_tf_adj_{name}, 0)"
    return f"round({weight}, 2)"


def evidence_sql(columns: set[str]) -> tuple[str, str]:
    """(evidence, weights): SQL for the evidence JSON — comparison -> match weight,
    leaving out comparisons with no evidence (a value missing: weight 0) — over a
    subquery ``w`` that selects ``weights`` from a Splink predictions table with
    ``columns``."""
    names = [c["output_column_name"] for c in model.settings_dict(model.BASE_DIALECT)["comparisons"]]
    weights = ", ".join(f"{_weight_sql(n, columns)} AS {n}" for n in names)
    parts = ", ".join(f"""CASE WHEN w.{n} <> 0 THEN '"{n}":' || CAST(w.{n} AS VARCHAR) END""" for n in names)
    return f"'{{' || concat_ws(',', {parts}) || '}}'", weights


def pairs_sql(predictions: str, columns: set[str], records: str) -> str:
    """Scored pairs with their evidence and the cannot-link rules' verdict (DuckDB SQL)
    from a Splink predictions table with ``columns`` over ``records``. The verdict is
    kept with the pair, so a later run re-clustering it needs no records to link it."""
    evidence, weights = evidence_sql(columns)
    return f"""
        SELECT w.unique_id_l, w.unique_id_r, w.match_weight, w.match_probability, {evidence} AS evidence,
               coalesce({model.CANNOT_LINK_SQL}, true) AS refused_by_rule
        FROM (SELECT unique_id_l, unique_id_r, match_weight, match_probability, {weights} FROM {predictions}) w
        JOIN {records} l ON l.unique_id = w.unique_id_l
        JOIN {records} r ON r.unique_id = w.unique_id_r
    """


def strongest_link_sql(links: str) -> str:
    """Each linked record's strongest link (DuckDB SQL)."""
    return f"""
        SELECT unique_id, max(match_probability) AS match_probability FROM (
            SELECT unique_id_l AS unique_id, match_probability FROM {links}
            UNION ALL SELECT unique_id_r, match_probability FROM {links})
        GROUP BY unique_id
    """


def review_candidates_sql(pairs: str, clusters: str, decisions: str) -> str:
    """Scored pairs between different clusters that no reviewer has decided (DuckDB SQL)."""
    return f"""
        SELECT p.* FROM {pairs} p
        JOIN {clusters} cl ON cl.unique_id = p.unique_id_l
        JOIN {clusters} cr ON cr.unique_id = p.unique_id_r
        WHERE cl.cluster_id <> cr.cluster_id
          AND NOT EXISTS (SELECT 1 FROM {decisions} d
                          WHERE d.unique_id_l = least(p.unique_id_l, p.unique_id_r)
                            AND d.unique_id_r = greatest(p.unique_id_l, p.unique_id_r))
    """


def links_sql(pairs: str, records: str, decisions: str, must_links: bool = True) -> str:
    """Linked pairs (DuckDB SQL) among scored ``pairs`` (``pairs_sql`` rows): at or
    above the threshold and allowed by the cannot-link rules and the reviewers, plus
    (``must_links``) every reviewer's must-link between two of ``records``.

    ``decisions`` holds (unique_id_l, unique_id_r, decision) with unique_id_l < unique_id_r.
    """
    scored = f"""
        SELECT p.unique_id_l, p.unique_id_r, p.match_probability
        FROM {pairs} p
        WHERE p.match_probability >= {model.LINK_THRESHOLD} AND NOT p.refused_by_rule
          AND NOT EXISTS (SELECT 1 FROM {decisions} d WHERE d.decision = 'cannot_link'
                          AND d.unique_id_l = least(p.unique_id_l, p.unique_id_r)
                          AND d.unique_id_r = greatest(p.unique_id_l, p.unique_id_r))
    """
    if not must_links:
        return scored
    return f"""{scored}
        UNION ALL
        SELECT d.unique_id_l, d.unique_id_r, 1.0 FROM {decisions} d
        JOIN {records} l ON l.unique_id = d.unique_id_l
        JOIN {records} r ON r.unique_id = d.unique_id_r
        WHERE d.decision = 'must_link'
    """


def resolve(con: duckdb.DuckDBPyConnection, records: pa.Table, trained: dict, decisions: pa.Table, out_dir: str,
            progress: Callable[[str], None] = lambda _m: None) -> Resolution:
    """Score and cluster ``records`` (clean_person columns) with a trained model,
    honouring the reviewers' ``decisions`` (unique_id_l, unique_id_r, decision).
    Writes the scored pairs to ``out_dir``/match_pairs.parquet."""
    linker = linker_for(con, records, trained)
    con.register(DECISIONS_TABLE, decisions)
    identical, groups = _link_identical_records(con, linker)
    progress(f"linked {identical:,} records identical to another in every compared field")
    scoring = _representatives_linker(con, linker, trained)
    # Counting creates the blocked pairs: above COUNT_SAMPLE_RECORDS it samples records
    # and Splink scales the count up.
    represented = con.execute(f"SELECT count(*) FROM {REPRESENTATIVES_TABLE}").fetchall()[0][0]
    proportion = min(1.0, COUNT_SAMPLE_RECORDS / max(represented, 1))
    with warnings.catch_warnings():  # rare-identifier rules sample few pairs: their share is tiny either way
        warnings.filterwarnings("ignore", message="The sampled blocking analysis estimate", category=UserWarning)
        counts = scoring.blocking_analysis.count_comparisons_from_blocking_rules(record_sample_proportion=proportion)
    comparisons = groups + sum(int(c["marginal_comparison_count"]) for c in counts)
    chunks = max(1, math.ceil(represented / PREDICT_CHUNK_RECORDS))
    for chunk in range(1, chunks + 1):
        # Scored a slice of left-hand records at a time, so memory stays bounded.
        predictions = scoring.inference.predict_chunk(
            left_chunk=(chunk, chunks), right_chunk=(1, 1), threshold_match_probability=model.REVIEW_FLOOR,
            warning_mode="never",
        )
        columns = set(con.sql(f"SELECT * FROM {predictions.physical_name} LIMIT 0").columns)
        con.execute(f"INSERT INTO veracity_pairs {pairs_sql(predictions.physical_name, columns, RECORDS_TABLE)}")
        predictions.drop_table_from_database_and_remove_from_cache()
        progress(f"scored slice {chunk} of {chunks} ({represented:,} records stand for the rest)")
    # Every scored pair, those linking identical records included, with the reviewers' must-links.
    con.execute(f"CREATE TABLE veracity_links AS {links_sql('veracity_pairs', RECORDS_TABLE, DECISIONS_TABLE)}")
    con.execute(f"CREATE VIEW veracity_nodes AS SELECT unique_id FROM {RECORDS_TABLE}")
    return cluster_scored(con, decisions, out_dir, comparisons, progress)


def cluster_scored(con: duckdb.DuckDBPyConnection, decisions: pa.Table, out_dir: str, comparisons: int,
                   progress: Callable[[str], None] = lambda _m: None, review_pairs: str | None = None,
                   outside: str | None = None) -> Resolution:
    """Cluster ``veracity_nodes`` (unique_id) by ``veracity_links`` (links between
    nodes only), apply the constraints, and find the review candidates among
    ``review_pairs`` (default: the scored pairs); ``veracity_pairs`` is written to
    ``out_dir``/match_pairs.parquet and dropped, its memory given to clustering.
    ``outside`` (unique_id, cluster_id) holds the clusters of records that are not
    nodes but are paired with one. ``veracity_representation`` (unique_id,
    represented_by) is returned as it is."""
    pairs_file = os.path.join(out_dir, "match_pairs.parquet")
    con.execute(f"COPY ({pair_keys.keyed_pairs_sql('veracity_pairs')}) TO '{pairs_file}' "
                f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {PAIRS_ROW_GROUP_ROWS}, {pair_keys.copy_options()})")
    pairs = con.execute("SELECT count(*) FROM veracity_pairs").fetchall()[0][0]
    con.execute("DROP TABLE veracity_pairs")
    review_pairs = review_pairs or f"read_parquet('{pairs_file}')"
    progress("wrote the scored pairs")
    _connected_clusters(con)
    progress("clustered")
    cluster_table = _constrained(con, decisions)
    con.register("veracity_final_clusters", cluster_table)
    progress("applied the cluster constraints")
    strongest = con.sql(strongest_link_sql("veracity_links")).to_arrow_table()
    review_clusters = "veracity_final_clusters" if outside is None else \
        f"(SELECT * FROM veracity_final_clusters UNION ALL SELECT unique_id, cluster_id FROM {outside})"
    candidates = con.sql(review_candidates_sql(review_pairs, review_clusters, DECISIONS_TABLE)).to_arrow_table()
    progress("found the review candidates")
    links = con.execute("SELECT count(*) FROM veracity_links").fetchall()[0][0]
    return Resolution(
        pairs_file=pairs_file, pairs=pairs, comparisons=comparisons, links=links, clusters=cluster_table,
        strongest_link=strongest, review_candidates=candidates,
        representation=con.sql("SELECT unique_id, represented_by FROM veracity_representation").to_arrow_table(),
        link_groups=con.sql("SELECT unique_id, cluster_id AS link_group FROM veracity_clusters").to_arrow_table(),
    )


def _connected_clusters(con: duckdb.DuckDBPyConnection) -> None:
    """``veracity_clusters`` (unique_id, cluster_id): each of ``veracity_nodes`` with
    the records a chain of ``veracity_links`` at the threshold joins it to, named by
    their smallest unique_id (as Splink's connected components name them). The nodes
    are numbered in id order, so the parts are found over integers."""
    import numpy as np  # here: the search Lambda imports this module, and its bundle has no numpy

    from veracity import graph

    con.execute("""CREATE TABLE veracity_node_numbers AS
                   SELECT unique_id, (row_number() OVER (ORDER BY unique_id) - 1)::INTEGER AS n FROM veracity_nodes""")
    edges = con.execute(f"""
        SELECT l.n AS a, r.n AS b FROM veracity_links k
        JOIN veracity_node_numbers l ON l.unique_id = k.unique_id_l
        JOIN veracity_node_numbers r ON r.unique_id = k.unique_id_r
        WHERE k.match_probability >= {model.LINK_THRESHOLD}
    """).fetchnumpy()
    nodes = con.execute("SELECT count(*) FROM veracity_node_numbers").fetchall()[0][0]
    smallest = graph.components(nodes, np.asarray(edges["a"]), np.asarray(edges["b"]))
    con.register("veracity_smallest", pa.table({"n": np.arange(nodes, dtype=smallest.dtype), "smallest": smallest}))
    con.execute("""
        CREATE TABLE veracity_clusters AS
        SELECT m.unique_id, c.unique_id AS cluster_id FROM veracity_node_numbers m
        JOIN veracity_smallest s USING (n) JOIN veracity_node_numbers c ON c.n = s.smallest
    """)
    con.unregister("veracity_smallest")
    con.execute("DROP TABLE veracity_node_numbers")


def identical_groups_sql(records: str, decisions: str) -> str:
    """(unique_id, representative) for every record (DuckDB SQL): records identical in
    every compared field share a representative, their smallest id. A record a
    reviewer has decided on stands for itself."""
    compared = ", ".join(f'r."{c}"' for c in model.compared_columns())
    return f"""
        SELECT r.unique_id, min(r.unique_id) OVER (PARTITION BY d.unique_id, {compared}) AS representative
        FROM {records} r LEFT JOIN (SELECT unique_id_l AS unique_id FROM {decisions}
                                    UNION SELECT unique_id_r FROM {decisions}) d ON d.unique_id = r.unique_id
    """


def group_pairs_sql(records: str, groups: str) -> str:
    """The records of one pair per group of identical records — its representative and
    another member — with the group in ``GROUP_COLUMN`` (DuckDB SQL)."""
    return f"""
        SELECT r.*, g.representative AS {GROUP_COLUMN} FROM {records} r JOIN (
            SELECT representative AS unique_id, representative FROM {groups}
            WHERE unique_id <> representative GROUP BY representative
            UNION ALL
            SELECT min(unique_id) AS unique_id, representative FROM {groups}
            WHERE unique_id <> representative GROUP BY representative) g ON g.unique_id = r.unique_id
    """


def collapsed_sql(groups: str, group_links: str) -> str:
    """(unique_id, representative) for the records a representative stands for: those
    of groups whose pair is linked (DuckDB SQL over ``links_sql`` of the groups' pairs)."""
    return f"""
        SELECT g.unique_id, g.representative FROM {groups} g
        JOIN {group_links} k ON g.representative = k.unique_id_l  -- Splink pairs records with unique_id_l < unique_id_r
        WHERE g.unique_id <> g.representative
    """


def collapsed_pairs_sql(collapsed: str, group_pairs: str) -> str:
    """Each represented record's pair with its representative, with its group's score,
    evidence and verdict (DuckDB SQL over ``pairs_sql`` of the groups' pairs)."""
    return f"""
        SELECT c.representative AS unique_id_l, c.unique_id AS unique_id_r, s.match_weight, s.match_probability, s.evidence,
               s.refused_by_rule
        FROM {collapsed} c JOIN {group_pairs} s ON s.unique_id_l = c.representative
    """


def representatives_sql(records: str, collapsed: str) -> str:
    """The records that are scored: every record no representative stands for (DuckDB SQL)."""
    return f"SELECT r.* FROM {records} r LEFT JOIN {collapsed} c ON c.unique_id = r.unique_id WHERE c.unique_id IS NULL"


def _link_identical_records(con: duckdb.DuckDBPyConnection, linker: Linker) -> int:
    """Link records identical in every compared field to one representative, so only
    representatives are scored against each other. Identical records score alike
    against every other record, so this loses no pair's evidence, and the pairs
    scored fall with the square of the duplication: the same person is often typed
    the same way into several systems.

    A group collapses when its records would link to each other: one pair of them is
    scored with the model and must pass the threshold and the cannot-link rules (a
    name with nothing else does not). Creates ``veracity_pairs`` holding the
    representative-to-record pairs, and ``REPRESENTATIVES_TABLE``; returns
    (records linked to a representative, groups whose pair was scored)."""
    con.execute(f"CREATE TABLE veracity_groups AS {identical_groups_sql(RECORDS_TABLE, DECISIONS_TABLE)}")
    con.execute(f"CREATE TABLE veracity_group_pairs AS {group_pairs_sql(RECORDS_TABLE, 'veracity_groups')}")
    for column in linker._settings_obj._term_frequency_columns:
        linker.table_management.compute_tf_table(column.name.strip('"'))
    scored = linker.inference.predict_within(
        linker._db_api.register("veracity_group_pairs"), blocking_rules_to_generate_predictions=[block_on(GROUP_COLUMN)],
        warning_mode="never",
    )
    columns = set(con.sql(f"SELECT * FROM {scored.physical_name} LIMIT 0").columns)
    con.execute(f"CREATE TABLE veracity_group_scores AS {pairs_sql(scored.physical_name, columns, RECORDS_TABLE)}")
    scored.drop_table_from_database_and_remove_from_cache()
    group_links = links_sql("veracity_group_scores", RECORDS_TABLE, DECISIONS_TABLE, must_links=False)
    con.execute(f"CREATE TABLE veracity_collapsed AS {collapsed_sql('veracity_groups', f'({group_links})')}")
    con.execute(f"CREATE TABLE veracity_pairs AS {collapsed_pairs_sql('veracity_collapsed', 'veracity_group_scores')}")
    con.execute("CREATE VIEW veracity_representation AS SELECT unique_id, representative AS represented_by FROM veracity_collapsed")
    con.execute(f"CREATE TABLE {REPRESENTATIVES_TABLE} AS {representatives_sql(RECORDS_TABLE, 'veracity_collapsed')}")
    groups = con.execute("SELECT count(*) FROM veracity_group_pairs").fetchall()[0][0] // 2
    for table in ("veracity_groups", "veracity_group_pairs", "veracity_group_scores"):
        con.execute(f"DROP TABLE {table}")
    return con.execute("SELECT count(*) FROM veracity_collapsed").fetchall()[0][0], groups


def _representatives_linker(con: duckdb.DuckDBPyConnection, linker: Linker, trained: dict) -> Linker:
    """A linker over the representatives that scores with ``linker``'s term
    frequencies (counted over every record, as training and Spark count them)."""
    db_api = DuckDBAPI(connection=con)  # its own cache: Splink caches intermediate tables per API
    scoring = Linker(db_api.register(REPRESENTATIVES_TABLE), model.settings_dict(model.BASE_DIALECT, trained),
                     log_level=logging.ERROR)
    for column in linker._settings_obj._term_frequency_columns:
        name = column.name.strip('"')
        tf_table = linker.table_management.compute_tf_table(name)
        scoring.table_management.register_term_frequency_lookup(db_api.register(tf_table.physical_name), name)
    return scoring


def _constrained(con: duckdb.DuckDBPyConnection, decisions: pa.Table) -> pa.Table:
    """Apply the cluster constraints, bringing back to Python only the links and
    identifiers of clusters that may break one."""
    con.execute(
        f"""
        CREATE TABLE veracity_suspect AS
        SELECT c.cluster_id FROM veracity_clusters c JOIN {RECORDS_TABLE} r USING (unique_id)
        WHERE r.pnc_id IS NOT NULL GROUP BY c.cluster_id HAVING count(DISTINCT r.pnc_id) > 1
        UNION
        SELECT c.cluster_id FROM {DECISIONS_TABLE} d
        JOIN veracity_clusters c ON c.unique_id = d.unique_id_l
        JOIN veracity_clusters c2 ON c2.unique_id = d.unique_id_r AND c2.cluster_id = c.cluster_id
        WHERE d.decision = 'cannot_link'
        """
    )
    suspect_members = con.sql(
        f"SELECT c.unique_id, c.cluster_id, r.pnc_id FROM veracity_clusters c JOIN veracity_suspect USING (cluster_id) "
        f"JOIN {RECORDS_TABLE} r USING (unique_id)"
    ).to_arrow_table()
    if suspect_members.num_rows == 0:
        return con.sql("SELECT * FROM veracity_clusters").to_arrow_table()
    suspect_links = con.sql(
        "SELECT k.* FROM veracity_links k JOIN veracity_clusters c ON c.unique_id = k.unique_id_l "
        "JOIN veracity_suspect USING (cluster_id)"
    ).to_arrow_table()
    cannot = decisions.filter(pa.compute.equal(decisions.column("decision"), "cannot_link"))
    rebuilt = constrained_clusters(
        suspect_members.select(["unique_id", "cluster_id"]), suspect_links, suspect_members.select(["unique_id", "pnc_id"]), cannot
    )
    con.register("veracity_rebuilt", rebuilt)
    return con.sql(
        "SELECT c.unique_id, coalesce(r.cluster_id, c.cluster_id) AS cluster_id "
        "FROM veracity_clusters c LEFT JOIN veracity_rebuilt r USING (unique_id)"
    ).to_arrow_table()
