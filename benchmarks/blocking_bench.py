"""Benchmark: blocking recall and comparison count on a synthetic lake.

    python benchmarks/blocking_bench.py --lake DIR

The lake must have been run (``veracity run``). Prints, for the prediction blocking
rules in veracity/matching/model.py: comparisons generated (cumulative, per rule),
comparisons per record, and blocking recall: the share of truly matching record pairs
that at least one rule brings together. Target: recall >= 99.5% with at most 50
comparisons per record.
"""

from __future__ import annotations

import argparse
import json
import logging

import duckdb
from splink import DuckDBAPI, Linker

from veracity.lake import Lake
from veracity.matching import model
from veracity.pipeline import current_records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", required=True)
    args = parser.parse_args()
    lake = Lake.open(args.lake)
    con = duckdb.connect()
    records = current_records(con, lake)
    con.register("recs", records)
    con.register("truth_records", lake.dataset("truth", "records"))
    con.execute(
        "CREATE TABLE r AS SELECT recs.*, t.person_id AS true_id FROM recs JOIN "
        "(SELECT DISTINCT source_system, source_record_id, person_id FROM truth_records) t USING (source_system, source_record_id)"
    )
    true_pairs = con.execute("SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) AS n FROM r GROUP BY true_id)").fetchone()[0]
    reached = " OR ".join(
        "(" + " AND ".join(f"l.{c} = r2.{c}" for c in columns) + ")" for columns in model.PREDICTION_BLOCKING_COLUMNS
    )
    found = con.execute(
        f"SELECT count(*) FROM r l JOIN r r2 ON l.true_id = r2.true_id AND l.unique_id < r2.unique_id WHERE {reached}"
    ).fetchone()[0]
    db_api = DuckDBAPI(connection=duckdb.connect())
    linker = Linker(db_api.register(records, table_name="bench_records"), model.settings(), log_level=logging.ERROR)
    counts = linker.blocking_analysis.count_comparisons_from_blocking_rules(record_sample_proportion=1.0)
    per_rule = [
        {"rule": "+".join(columns), "marginal_comparisons": int(c["marginal_comparison_count"]),
         "cumulative_comparisons": int(c["cumulative_comparison_count"])}
        for columns, c in zip(model.PREDICTION_BLOCKING_COLUMNS, counts, strict=True)
    ]
    total = max(r["cumulative_comparisons"] for r in per_rule) if per_rule else 0
    print(json.dumps({
        "records": records.num_rows,
        "true_pairs": int(true_pairs),
        "true_pairs_reached": int(found),
        "blocking_recall": round(found / true_pairs, 5) if true_pairs else None,
        "comparisons": total,
        "comparisons_per_record": round(total / records.num_rows, 2),
        "per_rule": per_rule,
    }, indent=2))


if __name__ == "__main__":
    main()
