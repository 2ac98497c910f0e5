"""Benchmark: an incremental run over a resolved lake.

    python benchmarks/delta_bench.py --lake DIR [--batches K] [--load F]

``DIR`` holds a lake already resolved once (e.g. kept by ``pipeline_bench.py --lake``).
Lands ``K`` follow-on synthetic batches, each ``F`` times the usual four-hourly
load (``generate_delta``'s shares of change), runs the pipeline, and prints the wall time
per stage, the records delivered and scored, the persons re-resolved, and the id churn
among persons the delta does not touch (``churn``: the target is 0).

Targets (issue [5], 2 cores, embedded engine): a 100,000-record delta against ten
million resolved records in <= 3 minutes wall; a 10,000-record delta in <= 30 seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import duckdb
from pipeline_bench import PeakMemory  # a sibling script: benchmarks/ is on the path

from veracity import snapshots
from veracity.lake import Lake
from veracity.matching.model import LINK_THRESHOLD
from veracity.pipeline import run
from veracity.synthetic.delta import generate_delta


def _register(con: duckdb.DuckDBPyConnection, lake: Lake, run_id: str, prefix: str) -> None:
    """``{prefix}xref`` (unique_id, person_id) and ``{prefix}match_pairs`` of a snapshot."""
    snapshots.register(con, lake, snapshots.read_snapshot(lake, run_id), ["person_xref", "match_pairs"], prefix=prefix)
    con.execute(f"CREATE VIEW {prefix}xref AS SELECT source_system || ':' || source_record_id AS unique_id, person_id "
                f"FROM {prefix}person_xref")


def churn(lake: Lake, before: str, after: str, delivered: list[str]) -> dict:
    """Persons of ``before`` the delta did not touch, and how many of their records
    resolved to another id in ``after``. Touched: a person holding a record the delta
    delivers, replaces or deletes, or a record joined to one of those by a chain of
    pairs scored at the link threshold (a chain a cluster constraint may have cut)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE reached (unique_id VARCHAR)")
    con.executemany("INSERT INTO reached VALUES (?)", [(u,) for u in delivered])
    _register(con, lake, before, "before_")
    _register(con, lake, after, "after_")
    con.execute(f"CREATE TABLE linked AS SELECT unique_id_l, unique_id_r FROM after_match_pairs "
                f"WHERE match_probability >= {LINK_THRESHOLD}")
    con.execute("CREATE TABLE was AS SELECT * FROM before_xref")
    while True:  # the whole component of the link graph, person by person
        grown = con.execute("""
            INSERT INTO reached
            SELECT unique_id FROM (
                SELECT unique_id_r AS unique_id FROM linked SEMI JOIN reached r ON r.unique_id = linked.unique_id_l
                UNION SELECT unique_id_l FROM linked SEMI JOIN reached r ON r.unique_id = linked.unique_id_r
                UNION SELECT w.unique_id FROM was w
                      WHERE w.person_id IN (SELECT person_id FROM was SEMI JOIN reached USING (unique_id))
            ) EXCEPT SELECT unique_id FROM reached
        """).fetchall()[0][0]
        if not grown:
            break
    row = con.execute("""
        WITH touched AS (SELECT DISTINCT person_id FROM was SEMI JOIN reached USING (unique_id)),
        untouched AS (SELECT w.* FROM was w ANTI JOIN touched USING (person_id))
        SELECT count(DISTINCT u.person_id), count(*), count(*) FILTER (WHERE a.person_id IS DISTINCT FROM u.person_id)
        FROM untouched u LEFT JOIN after_xref a USING (unique_id)
    """).fetchall()[0]
    return {"untouched_persons": row[0], "their_records": row[1], "records_with_another_id": row[2]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", required=True)
    parser.add_argument("--batches", type=int, default=1)
    parser.add_argument("--load", type=float, default=1.0, help="each batch's size against the usual four-hourly load")
    parser.add_argument("--progress", action="store_true", help="print each step, timed, to stderr")
    args = parser.parse_args()
    lake = Lake.open(args.lake)
    before = snapshots.current_run_id(lake)
    if before is None:
        raise SystemExit(f"{args.lake}: no published snapshot; run the pipeline once first")
    landed = sorted({b for s in lake.list_dirs("landing") for b in lake.list_dirs("landing", s)})
    delivered: list[str] = []
    first = len(landed)
    for k in range(first, first + args.batches):
        delta = generate_delta(lake, k, load=args.load)
        delivered += [f"{r['source_system']}:{r['source_record_id']}"
                      for r in lake.read_table("truth", "records", f"{delta.batch_id}.parquet").to_pylist()]
    started = time.perf_counter()

    def progress(message: str) -> None:
        if args.progress:
            print(f"{time.perf_counter() - started:8.1f}s {message}", file=sys.stderr, flush=True)

    with PeakMemory() as memory:
        summary = run(lake, progress=progress)
    wall = time.perf_counter() - started
    figures = {
        "records_resolved": summary.records_resolved,
        "delta_records": len(delivered),
        "wall_seconds": round(wall, 1),
        "stage_seconds": summary.stage_seconds,
        "mode": summary.mode,
        "records_scored": summary.records_scored,
        "persons_affected": summary.persons_affected,
        "comparisons": summary.comparisons,
        "id_changes": summary.id_changes,
        "peak_memory_mib": round(memory.peak / 2**20),
        "churn": churn(lake, before, summary.run_id, delivered),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
