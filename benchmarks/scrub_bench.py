"""Benchmark: scrub a large synthetic lake (all eleven formats) on the embedded engine.

    python benchmarks/scrub_bench.py --lake DIR [--people 1000000] [--workers 2]

Generates the lake first when it holds no extracts, then scrubs every batch from
scratch (the clean zone, quarantine and ledger are cleared) and prints wall time,
records per second and peak memory. Target: ten million records in at most three
minutes on 2 cores with at most 4 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from veracity.lake import Lake
from veracity.pipeline import scrub_stage
from veracity.sources import load_sources
from veracity.synthetic import generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", required=True)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    lake = Lake.open(args.lake, create=True)
    if not lake.list_dirs("landing"):
        generate(lake, args.people, seed=1)
    for zone in (("clean",), ("quarantine",), ("state",)):
        lake.delete_dir(*zone)
    started = time.perf_counter()
    stats = scrub_stage(lake, load_sources(), progress=lambda _m: None, workers=args.workers)
    wall = time.perf_counter() - started
    records = sum(s.records_in for s in stats.values())
    print(json.dumps({
        "records_in": records,
        "clean": sum(s.records_clean for s in stats.values()),
        "quarantined": sum(s.records_quarantined for s in stats.values()),
        "workers": args.workers,
        "wall_seconds": round(wall, 1),
        "records_per_second": round(records / wall),
        "peak_rss_parent_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_largest_worker_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }, indent=2))


if __name__ == "__main__":
    main()
