"""Benchmark: generate -> run -> evaluate on the embedded engine, with timings.

    python benchmarks/pipeline_bench.py [--people N] [--seed S]

Prints wall time per stage, records per second, peak memory (max RSS) and accuracy.
Speed targets live here, never in the unit tests.
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
    figures = {
        "people": args.people,
        "records": generated.records,
        "generate_seconds": round(t1 - t0, 1),
        "pipeline_seconds": round(t2 - t1, 1),
        "pipeline_records_per_second": round(generated.records / (t2 - t1)),
        "persons": summary.persons,
        "pairs_above_review_floor": summary.pairs_scored,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "pairwise_f1": round(result.pairwise.f1, 4),
        "pairwise_precision": round(result.pairwise.precision, 4),
        "pairwise_recall": round(result.pairwise.recall, 4),
        "bcubed_f1": round(result.bcubed.f1, 4),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
