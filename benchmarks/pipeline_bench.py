"""Benchmark: generate -> run -> evaluate on the embedded engine, with timings.

    python benchmarks/pipeline_bench.py [--people N] [--seed S] [--lake DIR]

Prints wall time and records per second per stage, comparisons, peak memory (max
RSS of this process and of the scrub workers), blocking recall and accuracy.
Targets (issue [4], 2 cores): 1M records scrub -> match -> publish in <= 4 minutes;
10M in <= 30 minutes with peak memory <= 16 GB. Speed targets live here, never in
the unit tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time

from veracity.evaluate import evaluate
from veracity.lake import Lake
from veracity.pipeline import run
from veracity.synthetic import generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lake", default=None, help="keep the lake here (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        lake = Lake.open(args.lake or scratch, create=True)
        t0 = time.perf_counter()
        generated = generate(lake, args.people, args.seed)
        t1 = time.perf_counter()
        summary = run(lake)
        t2 = time.perf_counter()
        result = evaluate(lake)
    rss = {
        "pipeline_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "largest_worker": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }
    stages = summary.stage_seconds
    figures = {
        "people": args.people,
        "seed": args.seed,
        "records": generated.records,
        "generate_seconds": round(t1 - t0, 1),
        "pipeline_seconds": round(t2 - t1, 1),
        "pipeline_records_per_second": round(generated.records / (t2 - t1)),
        "stage_seconds": stages,
        "stage_records_per_second": {k: round(generated.records / v) for k, v in stages.items() if v},
        "comparisons": summary.comparisons,
        "comparisons_per_record": round(summary.comparisons / summary.records_resolved, 1),
        "links": summary.links,
        "review_queue": summary.review_queue,
        "persons": summary.persons,
        "peak_rss_mb": rss,
        "pairwise": {k: round(v, 4) for k, v in vars(result.pairwise).items()},
        "bcubed": {k: round(v, 4) for k, v in vars(result.bcubed).items()},
        "persons_with_two_pnc_ids": result.persons_with_two_pnc_ids,
        "blocking_recall": result.blocking,
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
