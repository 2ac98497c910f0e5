"""The demo: generate a synthetic lake, run the pipeline on it, evaluate, summarise."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable

from veracity.errors import VeracityError
from veracity.evaluate import evaluate
from veracity.lake import Lake
from veracity.pipeline import run
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
        FROM data_quality WHERE check_type = 'field' AND records > 0 GROUP BY source_system
        """,
    ).to_pylist()
    return {r["source_system"]: {k: v or 0 for k, v in r.items() if k != "source_system"} for r in rows}


def run_demo(path: str, people: int, seed: int, progress: Callable[[str], None]) -> str:
    if "://" in path:
        raise VeracityError("the demo writes to a local directory; pass --lake DIR")
    _fresh_directory(path)
    lake = Lake.open(path)
    t0 = time.monotonic()
    progress(f"generating {people:,} synthetic people ...")
    generated = generate(lake, people, seed)
    t1 = time.monotonic()
    progress(f"generated {generated.records:,} records in {t1 - t0:.1f}s; running the pipeline ...")
    summary = run(lake, progress=progress)
    t2 = time.monotonic()
    result = evaluate(lake)
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
        f"time:                generate {t1 - t0:.0f}s, pipeline {t2 - t1:.0f}s",
        f"outputs:             {lake.display('curated')} (snapshot {summary.run_id})",
        "",
        "Try:",
        f'  veracity sql --lake {path} "SELECT source_system, count(*) AS records, count(DISTINCT person_id) AS persons FROM person_xref GROUP BY 1 ORDER BY 2 DESC"',
        f'  veracity sql --lake {path} "SELECT reason_codes, count(*) FROM quarantine GROUP BY 1"',
        f'  veracity sql --lake {path} "SELECT * FROM data_quality WHERE source_system = \'custody\' ORDER BY name"',
        f"  veracity evaluate --lake {path} --json",
        f'  veracity sql --lake {path} "SELECT * FROM review_queue LIMIT 20"',
        *([f"  veracity explain --lake {path} --html pair.html {example[0]} {example[1]}"] if example else []),
    ]
    return "\n".join(lines)
