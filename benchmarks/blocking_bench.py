"""Benchmark: blocking recall and comparison count on a synthetic lake.

    python benchmarks/blocking_bench.py --lake DIR

The lake must have been run (``veracity run``). Prints, for the prediction blocking
rules in veracity/matching/model.py: comparisons generated (per rule, cumulative),
comparisons per record, and blocking recall: the share of truly matching record
pairs that a rule compares directly, and the share reachable through a chain of
compared true pairs. Target: recall >= 99.5% with at most 50 comparisons per record.
"""

from __future__ import annotations

import argparse
import json
import logging

import duckdb

from veracity.lake import Lake
from veracity.matching import model
from veracity.matching.blocking import blocking_recall
from veracity.matching.resolve import linker_for
from veracity.pipeline import current_records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", required=True)
    args = parser.parse_args()
    lake = Lake.open(args.lake)
    con = duckdb.connect()
    records = current_records(con, lake)
    con.register("truth_records", lake.dataset("truth", "records"))
    truth = con.sql(
        "SELECT DISTINCT source_system || ':' || source_record_id AS unique_id, person_id AS true_id FROM truth_records"
    ).to_arrow_table()
    recall = blocking_recall(duckdb.connect(), records, truth)
    logging.getLogger("splink").setLevel(logging.ERROR)
    linker = linker_for(duckdb.connect(), records, None)
    counts = linker.blocking_analysis.count_comparisons_from_blocking_rules(record_sample_proportion=1.0)
    per_rule = [
        {"rule": "+".join(columns), "marginal_comparisons": int(c["marginal_comparison_count"]),
         "cumulative_comparisons": int(c["cumulative_comparison_count"])}
        for columns, c in zip(model.PREDICTION_BLOCKING_COLUMNS, counts, strict=True)
    ]
    total = max(r["cumulative_comparisons"] for r in per_rule) if per_rule else 0
    print(json.dumps({
        "records": records.num_rows,
        "blocking_recall": recall.as_dict(),
        "comparisons": total,
        "comparisons_per_record": round(total / records.num_rows, 2),
        "per_rule": per_rule,
    }, indent=2))


if __name__ == "__main__":
    main()
