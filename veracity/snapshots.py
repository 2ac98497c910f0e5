"""Curated snapshots: one per run, published by a single pointer switch.

A snapshot lists the files of every table it serves, so a failed run leaves the
last good snapshot serving and earlier snapshots stay readable.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from veracity.errors import LakeError
from veracity.lake import Lake
from veracity.schema import CURATED_TABLES

CURRENT = ("curated", "CURRENT.json")
SNAPSHOT_FILE = "_snapshot.json"


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
                     model_version: str | None, decisions: int = 0) -> None:
    """Write the run's tables (Arrow tables, or local Parquet files too big to hold in
    memory), and the ``appended`` ones (histories) added to the last snapshot's, then
    switch CURRENT.json to the new snapshot."""
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
         "decisions": decisions, "tables": listing},
        *base, SNAPSHOT_FILE,
    )
    # The switch: readers follow CURRENT.json, so everything above is invisible until now.
    lake.write_json({"run_id": run_id}, *CURRENT)
