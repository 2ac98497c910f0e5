"""Curated snapshots: one per run, published by a single pointer switch.

A snapshot lists the files of every table it serves, so a failed run leaves the
last good snapshot serving and earlier snapshots stay readable.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from veracity.errors import LakeError
from veracity.lake import Lake
from veracity.schema import CURATED_TABLES

CURRENT = ("curated", "CURRENT.json")
SNAPSHOT_FILE = "_snapshot.json"
# Snapshots kept after a run publishes (the current one always among them).
KEEP_SNAPSHOTS = int(os.environ.get("VERACITY_KEEP_SNAPSHOTS", "10"))


def current_run_id(lake: Lake) -> str | None:
    return lake.read_json(*CURRENT)["run_id"] if lake.exists(*CURRENT) else None


def read_snapshot(lake: Lake, run_id: str | None = None) -> dict:
    run_id = run_id or current_run_id(lake)
    if run_id is None:
        raise LakeError(f"no published snapshot in {lake.display()}: run 'veracity run --lake {lake.uri}' first")
    return lake.read_json("curated", "snapshots", run_id, SNAPSHOT_FILE)


def _zone_files(lake: Lake, *parts: str) -> list[str]:
    return [
        "/".join((*parts, s, f))
        for s in lake.list_dirs(*parts)
        for f in lake.list_files(*parts, s)
        if f.endswith(".parquet")
    ]


def publish_snapshot(lake: Lake, run_id: str, tables: dict[str, pa.Table | str], appended: dict[str, pa.Table],
                     model_version: str | None, decisions: int = 0, batches: list[str] | None = None,
                     keep: int | None = None) -> None:
    """Write the run's tables (Arrow tables, or local Parquet files too big to hold in
    memory), and the ``appended`` ones (histories) added to the last snapshot's, then
    switch CURRENT.json to the new snapshot; then remove all but the newest ``keep``
    snapshots (default ``KEEP_SNAPSHOTS``)."""
    base = ("curated", "snapshots", run_id)
    listing: dict[str, list[str]] = {}
    for name, table in tables.items():
        if isinstance(table, str):
            lake.put_file(table, *base, f"{name}.parquet")
        else:
            lake.write_table(table.cast(CURATED_TABLES[name].arrow_schema), *base, f"{name}.parquet")
        listing[name] = ["/".join((*base, f"{name}.parquet"))]
    previous = current_run_id(lake)
    for name, rows in appended.items():
        schema = CURATED_TABLES[name].arrow_schema
        earlier = ("curated", "snapshots", previous, f"{name}.parquet") if previous else None
        history = lake.read_table(*earlier).cast(schema) if earlier and lake.exists(*earlier) else schema.empty_table()
        lake.write_table(pa.concat_tables([history, rows.cast(schema)]), *base, f"{name}.parquet")
        listing[name] = ["/".join((*base, f"{name}.parquet"))]
    listing["quarantine"] = _zone_files(lake, "quarantine")
    listing["data_quality"] = _zone_files(lake, "clean", "data_quality")
    lake.write_json(
        {"run_id": run_id, "published_at": datetime.now(UTC).isoformat(), "model_version": model_version,
         "decisions": decisions, "batches": batches or [], "tables": listing},
        *base, SNAPSHOT_FILE,
    )
    # The switch: readers follow CURRENT.json, so everything above is invisible until now.
    lake.write_json({"run_id": run_id}, *CURRENT)
    prune(lake, KEEP_SNAPSHOTS if keep is None else keep)


def published(lake: Lake) -> list[str]:
    """Run ids of the complete snapshots in the lake, oldest first (a run that stopped
    before writing its snapshot file left no snapshot)."""
    return [r for r in lake.list_dirs("curated", "snapshots") if lake.exists("curated", "snapshots", r, SNAPSHOT_FILE)]


def prune(lake: Lake, keep: int) -> list[str]:
    """Remove every snapshot but the newest ``keep`` and the current one; returns those removed."""
    if keep < 1:
        raise LakeError(f"keep {keep} snapshots: at least the current one must be kept")
    current = current_run_id(lake)
    runs = lake.list_dirs("curated", "snapshots")
    removed = [r for r in runs[:-keep] if r != current]
    for run_id in removed:
        lake.delete_dir("curated", "snapshots", run_id)
    return removed


def rollback(lake: Lake, run_id: str) -> None:
    """Make an earlier snapshot current, by the same single switch a run publishes with."""
    if run_id not in published(lake):
        kept = ", ".join(published(lake)) or "none"
        raise LakeError(f"no snapshot {run_id} in {lake.display('curated')} (kept: {kept})")
    lake.write_json({"run_id": run_id}, *CURRENT)


def runs(lake: Lake) -> list[dict]:
    """Every kept snapshot, oldest first, with its run's figures from run_stats."""
    current = current_run_id(lake)
    listed = []
    for run_id in published(lake):
        snapshot = read_snapshot(lake, run_id)
        row = {"run_id": run_id, "current": run_id == current, "published_at": snapshot.get("published_at"),
               "model_version": snapshot.get("model_version")}
        if lake.exists("curated", "snapshots", run_id, "run_stats.parquet"):
            stats = lake.read_table("curated", "snapshots", run_id, "run_stats.parquet")
            mine = stats.filter(pc.and_(pc.equal(stats.column("run_id"), run_id), pc.equal(stats.column("source_system"), "*")))
            if mine.num_rows:
                figures = mine.to_pylist()[0]
                row.update({k: figures.get(k) for k in ("records_in", "persons", "comparisons", "links", "review_queue")})
        listed.append(row)
    return listed
