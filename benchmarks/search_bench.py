"""Benchmark: person search latency on the local server, one core.

    python benchmarks/search_bench.py --lake DIR [--queries 1000] [--seed 1]

``DIR`` is a resolved synthetic lake (e.g. kept by ``pipeline_bench.py --lake``, or
``make demo``'s). Starts ``veracity serve`` pinned to one CPU, then sends it
``--queries`` realistic searches one after another over HTTP (officers' slips on
source records of known people: ``veracity.synthetic.queries``) and prints the
latency percentiles, how often the person sought was ranked first, the index's load
time and the server's resident memory.

Target (issue [9]): p95 <= 100 ms over one million persons.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from urllib.parse import urlencode

import psutil

from veracity.lake import Lake
from veracity.search.auth import LocalSigner
from veracity.synthetic.queries import known_searches


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", required=True)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cpu", type=int, default=0, help="the CPU the server is pinned to")
    args = parser.parse_args()
    lake = Lake.open(args.lake)
    searches = known_searches(lake, args.queries, seed=args.seed)
    token = LocalSigner(lake).mint("bench", ["officer"], ttl_seconds=24 * 3600)
    port = _free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "veracity", "serve", "--lake", args.lake, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {args.cpu}),
    )
    try:
        line = server.stdout.readline()
        if "serving person search" not in line:
            raise SystemExit(f"the server did not start: {line!r}")
        load_seconds = time.perf_counter() - started
        connection = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"Authorization": f"Bearer {token}"}
        latencies, first, empty = [], 0, 0
        for search in searches:
            t = time.perf_counter()
            connection.request("GET", "/api/persons/search?" + urlencode(search.params), headers=headers)
            response = connection.getresponse()
            body = response.read()
            latencies.append((time.perf_counter() - t) * 1000)
            if response.status != 200:
                raise SystemExit(f"{response.status}: {body[:200]!r} for {search.params}")
            results = json.loads(body)["results"]
            first += bool(results) and results[0]["person_id"] == search.expected_person_id
            empty += not results
        rss = psutil.Process(server.pid).memory_info().rss
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures = {
        "queries": len(searches),
        "p50_ms": round(_percentile(latencies, 0.50), 1),
        "p95_ms": round(_percentile(latencies, 0.95), 1),
        "p99_ms": round(_percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
        "top1": round(first / len(searches), 4),
        "no_result": empty,
        "server_load_s": round(load_seconds, 1),
        "server_rss_gb": round(rss / 1e9, 2),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
