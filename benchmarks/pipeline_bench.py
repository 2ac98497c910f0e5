"""Benchmark: generate -> run -> evaluate on the embedded engine, with timings.

    python benchmarks/pipeline_bench.py [--people N] [--seed S] [--lake DIR]

Generates the synthetic lake in a child process, then runs the pipeline here. Prints
wall time and records per second per stage, comparisons, the pipeline's peak memory
(the sum of the resident memory of this process and its scrub workers, sampled every
0.2 s, and the largest single process), blocking recall and accuracy.
The association networks are scored against the planted ones (issue [8]).
Targets (issue [4], 2 cores): 1M records scrub -> match -> publish in <= 4 minutes;
10M in <= 30 minutes with peak memory <= 16 GB. Speed targets live here, never in
the unit tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time

import psutil

from veracity.evaluate import evaluate
from veracity.lake import Lake
from veracity.pipeline import run


class PeakMemory:
    """The peak summed resident memory of this process and its descendants, sampled."""

    def __init__(self, interval: float = 0.2) -> None:
        self.peak = 0
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker that has just exited
                    total += process.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lake", default=None, help="keep the lake here (default: a temporary directory)")
    parser.add_argument("--progress", action="store_true", help="print each step, timed, to stderr")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.lake or scratch
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "veracity", "generate", "--lake", root, "--people", str(args.people),
                        "--seed", str(args.seed)], check=True, stdout=subprocess.DEVNULL)
        t1 = time.perf_counter()
        lake = Lake.open(root)
        def progress(message: str) -> None:
            if args.progress:
                print(f"{time.perf_counter() - t1:8.1f}s {message}", file=sys.stderr, flush=True)

        with PeakMemory() as memory:
            summary = run(lake, progress=progress)
        t2 = time.perf_counter()
        rss = {
            "pipeline_total_peak": round(memory.peak / 2**20),
            "pipeline_process_max": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        result = evaluate(lake)
    stages = summary.stage_seconds
    records = summary.totals.records_in
    figures = {
        "people": args.people,
        "seed": args.seed,
        "records": records,
        "generate_seconds": round(t1 - t0, 1),
        "pipeline_seconds": round(t2 - t1, 1),
        "pipeline_records_per_second": round(records / (t2 - t1)),
        "stage_seconds": stages,
        "stage_records_per_second": {k: round(records / v) for k, v in stages.items() if v},
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
        "networks": result.networks,
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
