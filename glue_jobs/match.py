"""Glue job entry point: score and cluster the lake's current clean records with Spark.

    --lake s3://bucket/prefix  [--model-version VERSION | current]  [--run-id ID]

Runs the declared linkage model with a model trained on the embedded engine
(models/CURRENT.json, or the named version) through veracity.matching.spark, honouring
the reviewers' decisions, and stages its output for the publish step:

    staging/match/<run_id>/match_pairs/        scored pairs above the review floor, with evidence
    staging/match/<run_id>/clusters/           unique_id -> cluster_id
    staging/match/<run_id>/strongest_link/     unique_id -> match_probability of its strongest link
    staging/match/<run_id>/review_candidates/  pairs between different clusters not yet decided
    staging/match/<run_id>/representation/     unique_id -> represented_by: identical records scored once
    staging/match/<run_id>/link_groups/        unique_id -> link_group: the clusters before the constraints
    staging/match/<run_id>/summary.json        model version and counts

The publish job (glue_jobs/publish.py) builds the golden records from them. Each table is a directory of Parquet files written by Spark. Splink's intermediate
tables are checkpointed under staging/match/<run_id>/checkpoints/, removed at the end.
The job needs Splink's similarity jar on the classpath (Glue: --extra-jars with the
scala-udf-similarity jar for Spark 3 that Splink ships). Glue adds arguments of its
own (--JOB_NAME, ...), which are ignored. Setup stays in main() so the module imports
under plain pytest.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from datetime import UTC, datetime

    from pyspark.sql import SparkSession

    from veracity import review
    from veracity.lake import Lake
    from veracity.matching import model_store
    from veracity.matching.spark import current_records_frame, resolve_frames
    from veracity.pipeline import STAGED_MATCH, STAGED_TABLES, new_run_id

    parser = argparse.ArgumentParser(prog="match")
    parser.add_argument("--lake", required=True)
    parser.add_argument("--model-version", default="current")
    parser.add_argument("--run-id", default=None)
    args, _glue_args = parser.parse_known_args(argv)

    lake = Lake.open(args.lake)
    if args.model_version == "current":
        trained = model_store.current(lake)
        if trained is None:
            print("no trained model for the declared model: train one first (veracity train)", file=sys.stderr)
            return 1
    elif not lake.exists("models", args.model_version, "model.json"):
        print(f"no model version {args.model_version!r} in {lake.display('models')}", file=sys.stderr)
        return 1
    else:
        trained = model_store.load(lake, args.model_version)
    run_id = args.run_id or new_run_id(datetime.now(UTC))
    staging = (*STAGED_MATCH, run_id)

    spark = SparkSession.builder.getOrCreate()
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    spark.sparkContext.setCheckpointDir(lake.display(*staging, "checkpoints"))
    # For now the current records are read on the driver, by the local path's query.
    records = current_records_frame(spark, lake)
    result = resolve_frames(spark, records, trained.model_json, review.current_decisions(lake), print)
    frames = dict(zip(STAGED_TABLES, (result.pairs, result.clusters, result.strongest_link, result.review_candidates,
                                      result.representation, result.link_groups), strict=True))
    for name, frame in frames.items():
        frame.write.mode("overwrite").parquet(lake.display(*staging, name))
    summary = {
        "run_id": run_id,
        "model_version": trained.version,
        "records": records.count(),
        "comparisons": result.comparisons,
        "pairs": spark.read.parquet(lake.display(*staging, "match_pairs")).count(),
        "links": result.links.count(),
        "persons": spark.read.parquet(lake.display(*staging, "clusters")).select("cluster_id").distinct().count(),
        "finished_at": datetime.now(UTC).isoformat(),
    }
    lake.write_json(summary, *staging, "summary.json")
    lake.delete_dir(*staging, "checkpoints")
    print(f"matched {summary['records']} records into {summary['persons']} persons with model {trained.version}: "
          f"{summary['comparisons']} comparisons, {summary['pairs']} pairs, {summary['links']} links; "
          f"staged in {lake.display(*staging)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
