"""Benchmark: synthetic generation at scale.

    python benchmarks/generate_bench.py [--people 1000000] [--seed 1] [--workers 2] [--lake DIR]

Prints wall time, records per second and peak memory of the parent and of the
largest worker. The target (issue: ten-million scale) is 1,000,000 people, about
ten million records, in at most 5 minutes on 2 cores with peak memory at most 6 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time

from veracity.lake import Lake
from veracity.synthetic import generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lake", default=None, help="keep the output here (default: a temporary directory)")
    args = parser.parse_args()
    root = args.lake or tempfile.mkdtemp(prefix="veracity-gen-")
    try:
        started = time.perf_counter()
        summary = generate(Lake.open(root, create=True), args.people, args.seed, workers=args.workers)
        wall = time.perf_counter() - started
    finally:
        if not args.lake:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({
        "people": args.people,
        "records": summary.records,
        "networks": summary.networks,
        "workers": args.workers,
        "wall_seconds": round(wall, 1),
        "records_per_second": round(summary.records / wall),
        "peak_rss_parent_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_largest_worker_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }, indent=2))


if __name__ == "__main__":
    main()
