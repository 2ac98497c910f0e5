"""Curated snapshots: one per run, published by a single pointer switch.

A snapshot lists the files of every table it serves, so a failed run leaves the
last good snapshot serving and earlier snapshots stay readable.

A table may be served in layers, so a run that changes a few persons writes only
their rows: a layer's file adds rows, and its removal keys take out the rows of
earlier layers holding one of them in a ``REMOVED_BY`` column. The manifest lists a
table's files (``tables``), oldest layer first, and its removals (``removals``: a
key file, and how many layers it applies to). Once a table has ``MAX_LAYERS``
layers, the next run writes it whole again.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from veracity.errors import LakeError
from veracity.lake import Lake
from veracity.schema import ATHENA_REMOVED, CURATED_TABLES

CURRENT = ("curated", "CURRENT.json")
# What Athena reads of the current snapshot (S3 lakes): per table, a symlink manifest of
# its files and, for layered tables, the rows each file no longer serves.
ATHENA = ("curated", "athena")
MANIFEST_FILE = "manifest"  # Athena skips files whose names start with "_" or "."
REMOVED_FILE = "removed.parquet"
REMOVED = ATHENA_REMOVED.arrow_schema
SNAPSHOT_FILE = "_snapshot.json"
# Snapshots kept after a run publishes (the current one always among them).
KEEP_SNAPSHOTS = int(os.environ.get("VERACITY_KEEP_SNAPSHOTS", "10"))
# Layers a table may have before a run writes it whole again.
MAX_LAYERS = int(os.environ.get("VERACITY_MAX_LAYERS", "8"))
# A later layer's removal keys take out a row of an earlier one holding a key in any of these columns.
REMOVED_BY: dict[str, tuple[str, ...]] = {
    "clean_person": ("unique_id",),
    "match_pairs": ("unique_id_l", "unique_id_r"),
    "person": ("person_id",),
    "person_xref": ("person_id",),
    "person_alias": ("person_id",),
    "person_address": ("person_id",),
    "review_queue": ("person_id_l", "person_id_r"),
}
KEYS = pa.schema([("key", pa.string())])


@dataclass
class Layer:
    """Rows added on top of the last snapshot's table (an Arrow table or a local
    Parquet file), and the keys (column ``key``) whose earlier rows they replace."""

    rows: pa.Table | str
    removes: pa.Table | None = None


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


def _register_files(con: duckdb.DuckDBPyConnection, lake: Lake, view: str, files: list[str], schema: pa.Schema | None) -> None:
    """``files`` as one relation named ``view``: DuckDB reads local files itself, and
    others (S3) through pyarrow's filesystem."""
    if not files:
        con.register(view, (schema or KEYS).empty_table())
    elif lake.is_local:
        listed = ", ".join(f"'{lake.path(f)}'" for f in files)
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet([{listed}], union_by_name = true)")
    else:
        con.register(view, ds.dataset([lake.path(f) for f in files], filesystem=lake.fs, format="parquet", schema=schema))


def layers(snapshot: dict, name: str, prefix: str = "") -> list[tuple[str, list[str]]]:
    """The registered layers of ``name`` (see ``register``), oldest first: each
    layer's relation and the relations of the removal keys that apply to it."""
    removals = snapshot.get("removals", {}).get(name, [])
    return [(f"{prefix}{name}__layer{i}", [f"{prefix}{name}__removes{j}" for j, r in enumerate(removals) if r["layers"] > i])
            for i in range(len(snapshot["tables"].get(name, [])))]


def table_sql(snapshot: dict, name: str, prefix: str = "") -> str:
    """The SELECT serving ``name`` from its registered layers (see ``register``)."""
    selects = [f"SELECT * FROM {prefix}{name}__empty"]
    for layer, removed_by in layers(snapshot, name, prefix):
        removed = " UNION ALL ".join(f"SELECT key FROM {keys}" for keys in removed_by)  # one lookup per column
        kept = " AND ".join(f'"{c}" NOT IN ({removed})' for c in REMOVED_BY[name]) if removed_by else ""
        selects.append(f"SELECT * FROM {layer}" + (f" WHERE {kept}" if kept else ""))
    return " UNION ALL BY NAME ".join(selects)


def register(con: duckdb.DuckDBPyConnection, lake: Lake, snapshot: dict, names: list[str] | None = None,
             prefix: str = "") -> None:
    """A view per table of ``snapshot`` (``prefix`` + name), in today's schema: a
    column added since a layer was written reads as null there."""
    for name in names if names is not None else list(snapshot["tables"]):
        files = snapshot["tables"].get(name, [])
        schema = CURATED_TABLES[name].arrow_schema if name in CURATED_TABLES else None
        if schema is None:
            _register_files(con, lake, f"{prefix}{name}", files, None)
            continue
        con.register(f"{prefix}{name}__empty", schema.empty_table())
        for i, f in enumerate(files):
            _register_files(con, lake, f"{prefix}{name}__layer{i}", [f], schema if not lake.is_local else None)
        for j, removal in enumerate(snapshot.get("removals", {}).get(name, [])):
            _register_files(con, lake, f"{prefix}{name}__removes{j}", [removal["file"]], KEYS)
        con.execute(f"CREATE OR REPLACE VIEW {prefix}{name} AS {table_sql(snapshot, name, prefix)}")


def read_table(lake: Lake, snapshot: dict, name: str) -> pa.Table:
    """One table of ``snapshot``, whole, in today's schema."""
    con = duckdb.connect()
    register(con, lake, snapshot, [name])
    table = con.sql(f"SELECT * FROM {name}").to_arrow_table()
    schema = CURATED_TABLES[name].arrow_schema
    return table.select(schema.names).cast(schema)


def missing_columns(lake: Lake, snapshot: dict, name: str) -> list[str]:
    """Columns of today's ``name`` some layer of ``snapshot`` was written without."""
    missing: set[str] = set()
    for f in snapshot["tables"].get(name, []):
        with lake.fs.open_input_file(lake.path(f)) as handle:
            present = set(pq.read_schema(handle).names)
        missing.update(c for c in CURATED_TABLES[name].arrow_schema.names if c not in present)
    return sorted(missing)


def _write(lake: Lake, rows: pa.Table | str, schema: pa.Schema, *parts: str) -> None:
    if isinstance(rows, str):
        lake.put_file(rows, *parts)
    else:
        lake.write_table(rows.cast(schema), *parts)


def _add_layer(lake: Lake, base: tuple[str, ...], name: str, layer: Layer, earlier: dict | None) -> tuple[list[str], list[dict]]:
    """Write ``layer`` of ``name`` on top of the ``earlier`` snapshot's: (files, removals)."""
    schema = CURATED_TABLES[name].arrow_schema
    files = list(earlier["tables"].get(name, [])) if earlier else []
    removals = list(earlier.get("removals", {}).get(name, [])) if earlier else []
    if files and layer.removes is not None and layer.removes.num_rows:
        if name not in REMOVED_BY:
            raise LakeError(f"{name}: rows of this table are not removed by key")
        lake.write_table(layer.removes.select(["key"]).cast(KEYS), *base, f"{name}.removes.parquet")
        removals.append({"file": "/".join((*base, f"{name}.removes.parquet")), "layers": len(files)})
    _write(lake, layer.rows, schema, *base, f"{name}.parquet")
    files.append("/".join((*base, f"{name}.parquet")))
    if len(files) <= MAX_LAYERS:
        return files, removals
    # Too many layers: the table is written whole, as it reads now.
    with tempfile.TemporaryDirectory(prefix="veracity-") as scratch:
        con = duckdb.connect()
        con.execute(f"SET temp_directory = '{scratch}'")
        register(con, lake, {"tables": {name: files}, "removals": {name: removals}}, [name])
        whole = posixpath.join(scratch, f"{name}.parquet")
        con.execute(f"COPY (SELECT {', '.join(chr(34) + c + chr(34) for c in schema.names)} FROM {name}) "
                    f"TO '{whole}' (FORMAT parquet, COMPRESSION zstd)")
        con.close()
        lake.put_file(whole, *base, f"{name}.whole.parquet")
    lake.delete_file(*base, f"{name}.parquet")
    lake.delete_file(*base, f"{name}.removes.parquet")
    return ["/".join((*base, f"{name}.whole.parquet"))], []


# Tables made from a snapshot's others before it is switched on: (lake, snapshot) -> tables.
Derive = Callable[[Lake, dict], dict[str, pa.Table]]


def publish_snapshot(lake: Lake, run_id: str, tables: dict[str, pa.Table | str], layers: dict[str, Layer],
                     model_version: str | None, decisions: int = 0, batches: list[str] | None = None,
                     keep: int | None = None, derive: Derive | None = None) -> None:
    """Write the run's ``tables`` whole (Arrow tables, or local Parquet files too big
    to hold in memory) and its ``layers`` on top of the last snapshot's tables, then
    the tables ``derive`` makes from all of those, then switch CURRENT.json to the new
    snapshot; then remove all but the newest ``keep`` snapshots (default
    ``KEEP_SNAPSHOTS``) and the files no kept snapshot reads."""
    base = ("curated", "snapshots", run_id)
    listing: dict[str, list[str]] = {}
    removals: dict[str, list[dict]] = {}
    for name, table in tables.items():
        _write(lake, table, CURATED_TABLES[name].arrow_schema, *base, f"{name}.parquet")
        listing[name] = ["/".join((*base, f"{name}.parquet"))]
    previous = current_run_id(lake)
    earlier = read_snapshot(lake, previous) if previous else None
    for name, layer in layers.items():
        listing[name], removals[name] = _add_layer(lake, base, name, layer, earlier)
    listing["quarantine"] = _zone_files(lake, "quarantine")
    listing["data_quality_checks"] = _zone_files(lake, "clean", "data_quality")
    listing["event_record"] = _zone_files(lake, "clean", "event_record")
    removals = {name: r for name, r in removals.items() if r}
    for name, table in (derive(lake, {"tables": listing, "removals": removals}) if derive else {}).items():
        _write(lake, table, CURATED_TABLES[name].arrow_schema, *base, f"{name}.parquet")
        listing[name] = ["/".join((*base, f"{name}.parquet"))]
    lake.write_json(
        {"run_id": run_id, "published_at": datetime.now(UTC).isoformat(), "model_version": model_version,
         "decisions": decisions, "batches": batches or [], "tables": listing, "removals": removals},
        *base, SNAPSHOT_FILE,
    )
    # The switch: readers follow CURRENT.json, so everything above is invisible until now.
    lake.write_json({"run_id": run_id}, *CURRENT)
    _serve_athena(lake, run_id)
    prune(lake, KEEP_SNAPSHOTS if keep is None else keep)


def published(lake: Lake) -> list[str]:
    """Run ids of the complete snapshots in the lake, oldest first (a run that stopped
    before writing its snapshot file left no snapshot)."""
    return [r for r in lake.list_dirs("curated", "snapshots") if lake.exists("curated", "snapshots", r, SNAPSHOT_FILE)]


def _files(snapshot: dict) -> set[str]:
    """Every file a snapshot reads from its own or an earlier snapshot's directory."""
    listed = {f for files in snapshot["tables"].values() for f in files}
    listed.update(r["file"] for removals in snapshot.get("removals", {}).values() for r in removals)
    return {f for f in listed if f.startswith("curated/snapshots/")}


def prune(lake: Lake, keep: int) -> list[str]:
    """Remove every snapshot but the newest ``keep`` and the current one, and every file
    none of those reads (a kept snapshot may read layers an older run wrote); returns
    the snapshots removed."""
    if keep < 1:
        raise LakeError(f"keep {keep} snapshots: at least the current one must be kept")
    current = current_run_id(lake)
    listed = published(lake)
    kept = set(listed[-keep:]) | ({current} if current else set())
    read = set().union(*(_files(read_snapshot(lake, r)) for r in kept))
    for run_id in lake.list_dirs("curated", "snapshots"):
        if run_id in kept:
            continue
        still_read = {f.rsplit("/", 1)[1] for f in read if f.startswith(f"curated/snapshots/{run_id}/")}
        if not still_read:
            lake.delete_dir("curated", "snapshots", run_id)
            continue
        for f in lake.list_files("curated", "snapshots", run_id):  # the snapshot file goes first: no longer published
            if f not in still_read:
                lake.delete_file("curated", "snapshots", run_id, f)
    return [r for r in listed if r not in kept]


def rollback(lake: Lake, run_id: str) -> None:
    """Make an earlier snapshot current, by the same single switch a run publishes with."""
    if run_id not in published(lake):
        kept = ", ".join(published(lake)) or "none"
        raise LakeError(f"no snapshot {run_id} in {lake.display('curated')} (kept: {kept})")
    lake.write_json({"run_id": run_id}, *CURRENT)
    _serve_athena(lake, run_id)


def _serve_athena(lake: Lake, run_id: str) -> None:
    """Athena reads S3 only: there, point its tables at the now current snapshot."""
    if not lake.is_local:
        write_athena_manifests(lake, read_snapshot(lake, run_id))


def write_athena_manifests(lake: Lake, snapshot: dict) -> None:
    """Per table of ``snapshot``: ``curated/athena/<table>/manifest``, one URI per line of
    the files whose union holds its rows (a SymlinkTextInputFormat table reads it), and
    for a table with removals ``curated/athena/<table>_removed/removed.parquet``: (key,
    path) for each row key a later layer removed from the file at ``path``. Each file is
    replaced whole; ``athena_table_sql`` serves a table from the two. Those of tables
    the snapshot does not hold are removed."""
    for stale in set(lake.list_dirs(*ATHENA)) - set(snapshot["tables"]) - {f"{n}_removed" for n in snapshot["tables"]}:
        lake.delete_dir(*ATHENA, stale)
    for name, files in snapshot["tables"].items():
        lake.write_bytes("".join(f"{lake.display(f)}\n" for f in files).encode(), *ATHENA, name, MANIFEST_FILE)
        if name not in REMOVED_BY:
            continue
        removed = [
            pa.table({"key": keys, "path": pa.repeat(pa.scalar(lake.display(files[i])), len(keys))})
            for removal in snapshot.get("removals", {}).get(name, [])
            for keys in [lake.read_table(removal["file"], schema=KEYS).column("key")]
            for i in range(min(removal["layers"], len(files)))
        ]
        lake.write_table(pa.concat_tables(removed).cast(REMOVED) if removed else REMOVED.empty_table(),
                         *ATHENA, f"{name}_removed", REMOVED_FILE)


def athena_table_sql(name: str, layers: str, removed: str, path_column: str = '"$path"') -> str:
    """The SELECT (Trino SQL) serving table ``name`` from ``layers`` (a symlink table over
    its manifest) and ``removed`` (its removed keys per file): a row stands unless its
    file's removals hold one of its ``REMOVED_BY`` keys. ``path_column`` is the engine's
    name for a row's file (Athena's "$path")."""
    columns = ", ".join(f't."{c}"' for c in CURATED_TABLES[name].arrow_schema.names)
    keys = ", ".join(f't."{c}"' for c in REMOVED_BY[name])
    return (f"SELECT {columns} FROM {layers} t WHERE NOT EXISTS "
            f"(SELECT 1 FROM {removed} r WHERE r.path = t.{path_column} AND r.key IN ({keys}))")


def runs(lake: Lake) -> list[dict]:
    """Every kept snapshot, oldest first, with its run's figures from run_stats."""
    current = current_run_id(lake)
    listed = []
    for run_id in published(lake):
        snapshot = read_snapshot(lake, run_id)
        row = {"run_id": run_id, "current": run_id == current, "published_at": snapshot.get("published_at"),
               "model_version": snapshot.get("model_version")}
        if snapshot["tables"].get("run_stats"):
            stats = read_table(lake, snapshot, "run_stats")
            mine = stats.filter(pc.and_(pc.equal(stats.column("run_id"), run_id), pc.equal(stats.column("source_system"), "*")))
            if mine.num_rows:
                figures = mine.to_pylist()[0]
                row.update({k: figures.get(k) for k in ("records_in", "persons", "comparisons", "links", "review_queue")})
        listed.append(row)
    return listed
