"""Run the linkage model on the embedded engine: train, score pairs, cluster."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker
from splink.clustering import cluster_pairwise_predictions_at_threshold

from veracity.matching import model
from veracity.matching.constraints import split_identifier_conflicts

# Records sampled for EM: enough pairs to estimate m well, few enough to be quick.
EM_SAMPLE_RECORDS = 60_000


@dataclass
class Resolution:
    pairs: pa.Table  # every scored pair above the review floor, with per-comparison evidence
    clusters: pa.Table  # unique_id -> cluster_id
    model_json: dict


def person_id_for(cluster_key: str) -> str:
    """A person id derived from the cluster's earliest record key: the same data gives the same ids."""
    return "P" + hashlib.sha256(cluster_key.encode()).hexdigest()[:15].upper()


def _evidence_sql(name: str, columns: set[str]) -> str:
    """One comparison's level and match weight (term-frequency adjustment included)."""
    level = f"gamma_{name}" if f"gamma_{name}" in columns else "NULL"
    weight = f"mw_{name}" if f"mw_{name}" in columns else "NULL"
    if f"mw_tf_adj_{name}" in columns:
        weight += f" + coalesce(mw_tf_adj_{name}, 0)"
    return f"'{name}', json_object('level', {level}, 'match_weight', round({weight}, 3))"


def train(linker: Linker, records: int, seed: int) -> None:
    training = linker.training
    training.estimate_probability_two_random_records_match(
        list(model.DETERMINISTIC_RULES), recall=model.DETERMINISTIC_RECALL
    )
    training.estimate_u_using_random_sampling(max_pairs=model.U_MAX_PAIRS, seed=seed)
    proportion = min(1.0, EM_SAMPLE_RECORDS / max(records, 1))
    for rule in model.EM_BLOCKING_RULES:
        training.estimate_parameters_using_expectation_maximisation(
            rule, record_sample_proportion=proportion
        )


def resolve(con: duckdb.DuckDBPyConnection, records: pa.Table, seed: int = 42) -> Resolution:
    """Score and cluster the clean records. ``records`` has the clean_person columns."""
    logging.getLogger("splink").setLevel(logging.ERROR)
    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(records, table_name="veracity_records")
    linker = Linker(sdf, model.settings(), log_level=logging.ERROR)
    train(linker, records.num_rows, seed)
    predictions = linker.inference.predict(threshold_match_probability=model.REVIEW_FLOOR)
    links = con.sql(
        f"""
        SELECT p.unique_id_l, p.unique_id_r, p.match_probability
        FROM {predictions.physical_name} p
        JOIN veracity_records l ON l.unique_id = p.unique_id_l
        JOIN veracity_records r ON r.unique_id = p.unique_id_r
        WHERE p.match_probability >= {model.LINK_THRESHOLD} AND NOT ({model.CANNOT_LINK_SQL})
        """
    ).to_arrow_table()
    clusters = cluster_pairwise_predictions_at_threshold(
        records.select(["unique_id"]), links, db_api, "unique_id", threshold_match_probability=model.LINK_THRESHOLD
    )
    comparison_names = [c.output_column_name for c in linker._settings_obj.comparisons]
    columns = set(con.sql(f"SELECT * FROM {predictions.physical_name} LIMIT 0").columns)
    evidence = ", ".join(_evidence_sql(n, columns) for n in comparison_names)
    pairs = con.sql(
        f"""
        SELECT unique_id_l, unique_id_r, match_weight, match_probability,
               CAST(json_object({evidence}) AS VARCHAR) AS evidence
        FROM {predictions.physical_name}
        """
    ).to_arrow_table()
    cluster_table = con.sql(f"SELECT unique_id, CAST(cluster_id AS VARCHAR) AS cluster_id FROM {clusters.physical_name}").to_arrow_table()
    cluster_table = split_identifier_conflicts(cluster_table, links, records.select(["unique_id", "pnc_id"]))
    return Resolution(
        pairs=pairs,
        clusters=cluster_table,
        model_json=linker.misc.save_model_to_json(),
    )
