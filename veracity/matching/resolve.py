"""Run the linkage model on the embedded engine: train, score pairs, cluster."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker
from splink.clustering import cluster_pairwise_predictions_at_threshold

from veracity.matching import model
from veracity.matching.constraints import constrained_clusters

# Records sampled for EM: enough pairs to estimate m well, few enough to be quick.
EM_SAMPLE_RECORDS = 60_000
RECORDS_TABLE = "veracity_records"


@dataclass
class Resolution:
    pairs: pa.Table  # every scored pair above the review floor, with per-comparison evidence
    links: pa.Table  # pairs linked: above the threshold, not refused by a rule or a reviewer, plus must-links
    clusters: pa.Table  # unique_id -> cluster_id
    comparisons: int  # record pairs the blocking rules brought together and the model scored


def person_id_for(cluster_key: str) -> str:
    """A person id derived from a cluster's earliest record key: the same data gives the same ids."""
    return "P" + hashlib.sha256(cluster_key.encode()).hexdigest()[:15].upper()


def _quiet() -> None:
    logging.getLogger("splink").setLevel(logging.ERROR)


def linker_for(con: duckdb.DuckDBPyConnection, records: pa.Table, trained: dict | None, *, keep_values: bool = False) -> Linker:
    """A Splink linker over ``records`` (clean_person columns) registered as ``veracity_records``.
    ``keep_values`` keeps the compared values in its output (for charts)."""
    _quiet()
    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(model.prepare(records), table_name=RECORDS_TABLE)
    settings = model.settings_dict(model.BASE_DIALECT, trained)
    settings["retain_matching_columns"] = keep_values
    return Linker(sdf, settings, log_level=logging.ERROR)


def train(con: duckdb.DuckDBPyConnection, records: pa.Table, seed: int = 42) -> tuple[dict, dict]:
    """Train the declared model on ``records``: (Splink model JSON, training summary).

    λ from deterministic rules, u by random sampling, m by EM over several blocking
    rules, each on a sample so training stays quick at any size.
    """
    started = time.monotonic()
    linker = linker_for(con, records, None)
    training = linker.training
    training.estimate_probability_two_random_records_match(
        list(model.DETERMINISTIC_RULES), recall=model.DETERMINISTIC_RECALL
    )
    training.estimate_u_using_random_sampling(max_pairs=model.U_MAX_PAIRS, seed=seed)
    proportion = min(1.0, EM_SAMPLE_RECORDS / max(records.num_rows, 1))
    for rule in model.EM_BLOCKING_RULES:
        training.estimate_parameters_using_expectation_maximisation(rule, record_sample_proportion=proportion)
    model_json = linker.misc.save_model_to_json()
    summary = {
        "trained_at": datetime.now(UTC).isoformat(),
        "records": records.num_rows,
        "seed": seed,
        "probability_two_random_records_match": model_json["probability_two_random_records_match"],
        "lambda_rules": [r.get_blocking_rule(model.BASE_DIALECT).blocking_rule_sql for r in model.DETERMINISTIC_RULES],
        "lambda_assumed_recall": model.DETERMINISTIC_RECALL,
        "u_max_pairs": model.U_MAX_PAIRS,
        "em_record_sample_proportion": round(proportion, 6),
        "em_blocking_rules": [r.get_blocking_rule(model.BASE_DIALECT).blocking_rule_sql for r in model.EM_BLOCKING_RULES],
        "seconds": round(time.monotonic() - started, 1),
    }
    return model_json, summary


def _evidence_sql(name: str, columns: set[str]) -> str:
    """One comparison's level and match weight (term-frequency adjustment included)."""
    level = f"gamma_{name}" if f"gamma_{name}" in columns else "NULL"
    weight = f"mw_{name}" if f"mw_{name}" in columns else "NULL"
    if f"mw_tf_adj_{name}" in columns:
        weight += f" + coalesce(mw_tf_adj_{name}, 0)"
    return f"'{name}', json_object('level', {level}, 'match_weight', round({weight}, 3))"


def links_sql(predictions: str, records: str, decisions: str) -> str:
    """Linked pairs (DuckDB SQL): scored at or above the threshold and allowed by the
    cannot-link rules and the reviewers, plus every reviewer's must-link.

    ``decisions`` holds (unique_id_l, unique_id_r, decision) with unique_id_l < unique_id_r.
    """
    return f"""
        SELECT p.unique_id_l, p.unique_id_r, p.match_probability
        FROM {predictions} p
        JOIN {records} l ON l.unique_id = p.unique_id_l
        JOIN {records} r ON r.unique_id = p.unique_id_r
        WHERE p.match_probability >= {model.LINK_THRESHOLD} AND NOT ({model.CANNOT_LINK_SQL})
          AND NOT EXISTS (SELECT 1 FROM {decisions} d WHERE d.decision = 'cannot_link'
                          AND d.unique_id_l = least(p.unique_id_l, p.unique_id_r)
                          AND d.unique_id_r = greatest(p.unique_id_l, p.unique_id_r))
        UNION ALL
        SELECT d.unique_id_l, d.unique_id_r, 1.0 FROM {decisions} d
        JOIN {records} l ON l.unique_id = d.unique_id_l
        JOIN {records} r ON r.unique_id = d.unique_id_r
        WHERE d.decision = 'must_link'
    """


def resolve(con: duckdb.DuckDBPyConnection, records: pa.Table, trained: dict, decisions: pa.Table) -> Resolution:
    """Score and cluster ``records`` (clean_person columns) with a trained model,
    honouring the reviewers' ``decisions`` (unique_id_l, unique_id_r, decision)."""
    linker = linker_for(con, records, trained)
    db_api = linker._db_api
    counts = linker.blocking_analysis.count_comparisons_from_blocking_rules(record_sample_proportion=1.0)
    comparisons = sum(int(c["marginal_comparison_count"]) for c in counts)
    predictions = linker.inference.predict(threshold_match_probability=model.REVIEW_FLOOR)
    con.register("veracity_decisions", decisions)
    links = con.sql(links_sql(predictions.physical_name, RECORDS_TABLE, "veracity_decisions")).to_arrow_table()
    clusters = cluster_pairwise_predictions_at_threshold(
        records.select(["unique_id"]), links, db_api, "unique_id", threshold_match_probability=model.LINK_THRESHOLD
    )
    comparison_names = [c["output_column_name"] for c in model.settings_dict(model.BASE_DIALECT)["comparisons"]]
    columns = set(con.sql(f"SELECT * FROM {predictions.physical_name} LIMIT 0").columns)
    evidence = ", ".join(_evidence_sql(n, columns) for n in comparison_names)
    pairs = con.sql(
        f"""
        SELECT unique_id_l, unique_id_r, match_weight, match_probability,
               CAST(json_object({evidence}) AS VARCHAR) AS evidence
        FROM {predictions.physical_name}
        """
    ).to_arrow_table()
    cluster_table = con.sql(
        f"SELECT unique_id, CAST(cluster_id AS VARCHAR) AS cluster_id FROM {clusters.physical_name}"
    ).to_arrow_table()
    cannot = decisions.filter(pa.compute.equal(decisions.column("decision"), "cannot_link"))
    cluster_table = constrained_clusters(cluster_table, links, records.select(["unique_id", "pnc_id"]), cannot)
    return Resolution(pairs=pairs, links=links, clusters=cluster_table, comparisons=comparisons)
