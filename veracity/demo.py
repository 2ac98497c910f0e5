"""The demo: generate a synthetic lake, run the pipeline on it, evaluate, summarise.

By default the run is event-driven, as on AWS: the extracts are uploaded to S3 on an
in-process moto server, its events reach the ingest Lambda's handler through
EventBridge and SQS, the handler checks each batch and starts its run, and the local
orchestrator runs it. The resulting lake is then copied to the demo directory.
``direct`` skips the events and runs the pipeline on the directory itself."""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow.fs as pafs

from veracity.errors import VeracityError
from veracity.evaluate import evaluate
from veracity.lake import Lake
from veracity.pipeline import run
from veracity.report import write_report
from veracity.sql import query
from veracity.synthetic import generate

MARKER = ".veracity-demo"


def _fresh_directory(path: str) -> None:
    """Recreate a demo lake, refusing to empty a directory the demo did not make."""
    if os.path.isdir(path) and os.listdir(path):
        if not os.path.exists(os.path.join(path, MARKER)):
            raise VeracityError(f"{path} exists and is not a demo lake; pass --lake with a new directory")
        shutil.rmtree(path)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, MARKER), "w") as f:
        f.write("Created by 'veracity demo'; recreated by each demo run.\n")


def _quality_by_source(lake: Lake) -> dict[str, dict[str, float]]:
    rows = query(
        lake,
        """
        SELECT source_system,
               sum(CASE WHEN name = 'date_of_birth' THEN count END) * 1.0 / max(records) AS dob,
               sum(CASE WHEN name = 'postcode' THEN count END) * 1.0 / max(records) AS postcode,
               sum(invalid) AS invalid
        FROM data_quality_checks WHERE check_type = 'field' AND records > 0 GROUP BY source_system
        """,
    ).to_pylist()
    return {r["source_system"]: {k: v or 0 for k, v in r.items() if k != "source_system"} for r in rows}


@dataclass
class EventFlow:
    events: int
    failed: int
    ledger: Counter


def _event_driven(path: str, people: int, seed: int, progress: Callable[[str], None]):
    """Generate into moto S3, let the events drive the pipeline, copy the lake to ``path``."""
    from veracity.ingest.ledger import IngestLedger
    from veracity.ingest.local import (
        LocalAws,
        LocalOrchestrator,
        SqsPoller,
        load_handler,
        provision,
    )

    with LocalAws():
        resources = provision("veracity-demo")
        handler = load_handler(resources.handler_environment(quiet=True))
        lake = Lake.open(resources.lake_uri)
        progress(f"generating {people:,} synthetic people and uploading their extracts to {resources.lake_uri} (moto) ...")
        generated = generate(lake, people, seed)
        t1 = time.monotonic()
        progress(f"uploaded {generated.records:,} records; handling the upload events ...")
        polled = SqsPoller(resources.queue_url, resources.queue_arn, handler.lambda_handler).drain()
        summary = LocalOrchestrator(resources, lake, progress=progress).run_waiting()
        if summary is None:
            raise VeracityError("the uploads started no pipeline run; see the ingest ledger")
        ledger = Counter(entry["state"] for entry in IngestLedger(resources.ledger_table).entries())
        pafs.copy_files(resources.bucket, os.path.abspath(path), source_filesystem=lake.fs,
                        destination_filesystem=pafs.LocalFileSystem())
    return generated, summary, EventFlow(polled.received, polled.failed, ledger), t1


def run_demo(path: str, people: int, seed: int, progress: Callable[[str], None], direct: bool = False) -> str:
    if "://" in path:
        raise VeracityError("the demo writes to a local directory; pass --lake DIR")
    _fresh_directory(path)
    t0 = time.monotonic()
    flow = None
    if direct:
        progress(f"generating {people:,} synthetic people ...")
        generated = generate(Lake.open(path), people, seed)
        t1 = time.monotonic()
        progress(f"generated {generated.records:,} records in {t1 - t0:.1f}s; running the pipeline ...")
        summary = run(Lake.open(path), progress=progress)
    else:
        generated, summary, flow, t1 = _event_driven(path, people, seed, progress)
    lake = Lake.open(path)
    t2 = time.monotonic()
    result = evaluate(lake)
    report = write_report(lake, os.path.join(path, "report.html"))
    totals = summary.totals
    width = max(len(s) for s in summary.per_source)
    quality = _quality_by_source(lake)
    lines = ["", "Veracity demo", "=" * 13, "records in per source system, and data quality:"]
    lines.append(f"  {'':<{width}}  {'in':>9}  {'quarantined':>11}  {'has DOB':>7}  {'has postcode':>12}  {'invalid values':>14}")
    for source, s in sorted(summary.per_source.items()):
        q = quality.get(source, {})
        lines.append(
            f"  {source:<{width}}  {s.records_in:>9,}  {s.records_quarantined:>11,}  {q.get('dob', 0):>7.0%}  "
            f"{q.get('postcode', 0):>12.0%}  {q.get('invalid', 0):>14,}"
        )
    queued = query(lake, "SELECT unique_id_l, unique_id_r FROM review_queue LIMIT 1").to_pylist()
    example = (queued[0]["unique_id_l"], queued[0]["unique_id_r"]) if queued else None
    reduction = summary.records_resolved / summary.persons if summary.persons else 0.0
    lines += [
        f"records in:          {totals.records_in:,}",
        f"quarantined:         {totals.records_quarantined:,} (see the quarantine table for reasons)",
        f"clean records:       {totals.records_clean:,}",
        f"persons out:         {summary.persons:,} (true persons: {result.true_persons:,})",
        f"reduction ratio:     {reduction:.2f} records per person",
        f"pairwise accuracy:   precision {result.pairwise.precision:.4f}  recall {result.pairwise.recall:.4f}  F1 {result.pairwise.f1:.4f}",
        f"B-cubed accuracy:    precision {result.bcubed.precision:.4f}  recall {result.bcubed.recall:.4f}  F1 {result.bcubed.f1:.4f}",
        f"matching:            {summary.comparisons:,} comparisons, {summary.links:,} links, "
        f"{summary.review_queue:,} pairs for clerical review; no person holds two PNC ids"
        if result.persons_with_two_pnc_ids == 0 else
        f"matching:            {summary.comparisons:,} comparisons; {result.persons_with_two_pnc_ids} persons hold two PNC ids",
        *([f"networks:            {result.networks['networks_found']:,} association networks; the "
           f"{result.networks['planted_networks']:,} planted recovered with adjusted Rand index "
           f"{result.networks['adjusted_rand_index']:.4f}"] if result.networks else []),
        *([f"ingest events:       {flow.events:,} S3 events handled ({flow.failed} failed); batches in the ledger: "
           + ", ".join(f"{n} {state}" for state, n in sorted(flow.ledger.items()))] if flow else []),
        f"time:                generate {t1 - t0:.0f}s, " + ("events and " if flow else "") + f"pipeline {t2 - t1:.0f}s",
        f"outputs:             {lake.display('curated')} (snapshot {summary.run_id})",
        f"report:              {os.path.abspath(report)} (one page, works offline)",
        "",
        "Try:",
        f'  veracity sql --lake {path} "SELECT source_system, count(*) AS records, count(DISTINCT person_id) AS persons FROM person_xref GROUP BY 1 ORDER BY 2 DESC"',
        f'  veracity sql --lake {path} "SELECT reason_codes, count(*) FROM quarantine GROUP BY 1"',
        f'  veracity sql --lake {path} "SELECT * FROM data_quality_checks WHERE source_system = \'custody\' ORDER BY name"',
        f'  veracity sql --lake {path} "SELECT * FROM person_360 ORDER BY record_count DESC LIMIT 10"',
        f'  veracity sql --lake {path} "SELECT network_id, members, most_connected FROM networks ORDER BY members DESC"',
        f"  veracity evaluate --lake {path} --json",
        f'  veracity sql --lake {path} "SELECT * FROM review_queue LIMIT 20"',
        *([f"  veracity explain --lake {path} --html pair.html {example[0]} {example[1]}"] if example else []),
        f"  veracity serve --lake {path}   # person search at http://127.0.0.1:8080/ ; a token for it:",
        f"  veracity token --lake {path} --user pc-1234 --group officer",
    ]
    return "\n".join(lines)
