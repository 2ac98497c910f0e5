"""Glue job entry point: scrub one landed batch with Spark.

    --lake s3://bucket/prefix  --source NAME  --batch-id ID  [--sources DIR]

Runs the local path's scrub code under Spark (veracity.scrub.spark) and writes the
same lake objects as the local runner: clean/clean_person/<source>/<batch_id>.parquet,
clean/event_record/<source>/<batch_id>.parquet and quarantine/<source>/<batch_id>.parquet. Glue adds arguments of its own
(--JOB_NAME, ...), which are ignored. Setup stays in main() so the module imports
under plain pytest.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from pyspark.sql import SparkSession

    from veracity import batches as ledger
    from veracity.lake import Lake
    from veracity.scrub.readers import is_compressed, iter_extract
    from veracity.scrub.spark import collect, scrub_with_spark
    from veracity.sources import load_sources

    parser = argparse.ArgumentParser(prog="scrub")
    parser.add_argument("--lake", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--batch-id", required=True)
    parser.add_argument("--sources", default=None)
    args, _glue_args = parser.parse_known_args(argv)

    lake = Lake.open(args.lake)
    config = load_sources(args.sources).get(args.source)
    batch = ledger.Batch(args.source, args.batch_id)
    checked = ledger.check(lake, batch)
    if config is None or checked.problem:
        print(f"{batch.key}: not scrubbed: {checked.problem or 'no source config'}", file=sys.stderr)
        return 1

    spark = SparkSession.builder.getOrCreate()
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    extract = lake.path("landing", batch.source, batch.batch_id, checked.extract_name)
    with lake.fs.open_input_stream(extract) as stream:
        chunks = iter_extract(stream, config, is_compressed(config, checked.extract_name))
        scrubbed = scrub_with_spark(spark, chunks, config, batch.batch_id, checked.extracted_at)
    # For now the output is collected to the driver and written with lake.write_table
    # (one object per table, as the local runner writes), not by Spark's own writer.
    result = collect(scrubbed, batch.source, batch.batch_id)
    if not result.reconciles():
        raise RuntimeError(f"{batch.key}: {result.rows_in} rows in but {result.clean.num_rows} clean "
                           f"+ {result.quarantine.num_rows} quarantined")
    lake.write_table(result.clean, "clean", "clean_person", batch.source, f"{batch.batch_id}.parquet")
    lake.write_table(result.quarantine, "quarantine", batch.source, f"{batch.batch_id}.parquet")
    lake.write_table(result.events, "clean", "event_record", batch.source, f"{batch.batch_id}.parquet")
    print(f"scrubbed {batch.key}: {result.rows_in} in, {result.clean.num_rows} clean, "
          f"{result.quarantine.num_rows} quarantined" + (f" ({result.batch_error})" if result.batch_error else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
