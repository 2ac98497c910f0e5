"""The pipeline on the embedded engine: scrub new batches, match, publish a snapshot.

Each stage is a plain function over a Lake; the CLI, the Glue job shells and the
local orchestrator all call these same entry points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from veracity import batches as batch_ledger
from veracity.errors import VeracityError
from veracity.lake import Lake
from veracity.matching import golden, model
from veracity.matching.resolve import resolve
from veracity.schema import CLEAN_PERSON, RUN_STATS
from veracity.scrub.scrub import quarantine_rows, scrub_batch
from veracity.snapshots import publish_snapshot
from veracity.sources import SourceConfig, load_sources

Progress = Callable[[str], None]


@dataclass
class ScrubStats:
    batches: int = 0
    records_in: int = 0
    records_clean: int = 0
    records_quarantined: int = 0
    deletions: int = 0
    rejected_batches: list[str] = field(default_factory=list)


@dataclass
class RunSummary:
    run_id: str
    started_at: datetime
    finished_at: datetime
    per_source: dict[str, ScrubStats]
    persons: int
    records_resolved: int
    pairs_scored: int

    @property
    def totals(self) -> ScrubStats:
        t = ScrubStats()
        for s in self.per_source.values():
            t.batches += s.batches
            t.records_in += s.records_in
            t.records_clean += s.records_clean
            t.records_quarantined += s.records_quarantined
            t.deletions += s.deletions
            t.rejected_batches += s.rejected_batches
        return t


def new_run_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S%fZ")


def scrub_stage(lake: Lake, sources: dict[str, SourceConfig], progress: Progress) -> dict[str, ScrubStats]:
    """Scrub every landed batch not yet in the ledger; write clean and quarantine zones."""
    landed = batch_ledger.landed_batches(lake)
    if not landed:
        raise VeracityError(f"no batches in {lake.display('landing')}: generate or land extracts first")
    stats: dict[str, ScrubStats] = {}
    for batch in landed:
        if batch_ledger.processed(lake, batch):
            continue
        s = stats.setdefault(batch.source, ScrubStats())
        checked = batch_ledger.check(lake, batch)
        config = sources.get(batch.source)
        problems = [f"unknown_source: no sources/{batch.source}.yaml"] if config is None else []
        problems += [checked.problem] if checked.problem else []
        problem = "; ".join(problems) or None
        if problem:
            result_clean, result_q = CLEAN_PERSON.empty(), quarantine_rows(
                batch.source, batch.batch_id, [(None, 0, "batch_rejected", f"{batch.key}: {problem}")]
            )
            rows_in = 1
            s.rejected_batches.append(f"{batch.key}: {problem}")
        else:
            result = scrub_batch(checked.data, config, batch.batch_id, checked.extracted_at)
            if not result.reconciles():
                raise VeracityError(
                    f"{batch.key}: {result.rows_in} rows in but {result.clean.num_rows} clean + "
                    f"{result.quarantine.num_rows} quarantined; refusing to publish"
                )
            if result.batch_error:
                s.rejected_batches.append(result.batch_error)
            result_clean, result_q, rows_in = result.clean, result.quarantine, result.rows_in
            deletions = read_deletions(lake, batch, checked)
            lake.write_table(deletions, "clean", "deletions", batch.source, f"{batch.batch_id}.parquet")
            s.deletions += deletions.num_rows
        lake.write_table(result_clean, "clean", "clean_person", batch.source, f"{batch.batch_id}.parquet")
        lake.write_table(result_q, "quarantine", batch.source, f"{batch.batch_id}.parquet")
        batch_ledger.record_processed(
            lake, batch,
            {
                "source": batch.source, "batch_id": batch.batch_id, "status": "rejected" if problem else "scrubbed",
                "problem": problem, "records_in": rows_in, "records_clean": result_clean.num_rows,
                "records_quarantined": result_q.num_rows,
                "extracted_at": checked.extracted_at.isoformat() if checked.extracted_at else None,
                "processed_at": datetime.now(UTC).isoformat(),
            },
        )
        s.batches += 1
        s.records_in += rows_in
        s.records_clean += result_clean.num_rows
        s.records_quarantined += result_q.num_rows
        progress(f"scrubbed {batch.key}: {result_clean.num_rows} clean, {result_q.num_rows} quarantined")
    return stats


DELETIONS_SCHEMA = pa.schema(
    [("source_system", pa.string()), ("source_record_id", pa.string()), ("batch_id", pa.string()),
     ("extracted_at", pa.timestamp("us", tz="UTC"))]
)


def read_deletions(lake: Lake, batch: batch_ledger.Batch, checked: batch_ledger.CheckedBatch) -> pa.Table:
    """Record ids a batch's deletion files withdraw (retention reviews, erasure requests)."""
    ids: list[str] = []
    for name in checked.deletion_files:
        rows = pacsv.read_csv(pa.py_buffer(lake.read_bytes("landing", batch.source, batch.batch_id, name)),
                              convert_options=pacsv.ConvertOptions(column_types={"record_id": pa.string()}))
        ids += [v for v in rows.column("record_id").to_pylist() if v]
    n = len(ids)
    return pa.table(
        {"source_system": [batch.source] * n, "source_record_id": ids, "batch_id": [batch.batch_id] * n,
         "extracted_at": pa.array([checked.extracted_at] * n, pa.timestamp("us", tz="UTC"))},
        schema=DELETIONS_SCHEMA,
    )


def current_records(con: duckdb.DuckDBPyConnection, lake: Lake) -> pa.Table:
    """Each source record as last delivered, less those deleted since.

    A record delivered again under the same source id replaces its earlier version;
    a deletion removes every version delivered before it.
    """
    con.register("all_versions", lake.dataset("clean", "clean_person", schema=CLEAN_PERSON.arrow_schema))
    con.register("deletions", lake.dataset("clean", "deletions", schema=DELETIONS_SCHEMA))
    return con.sql(
        """
        WITH latest AS (
            SELECT * FROM all_versions
            QUALIFY row_number() OVER (PARTITION BY unique_id ORDER BY extracted_at DESC, batch_id DESC) = 1
        ), last_deleted AS (
            SELECT source_system, source_record_id, max(extracted_at) AS deleted_at FROM deletions GROUP BY ALL
        )
        SELECT latest.* FROM latest
        LEFT JOIN last_deleted d USING (source_system, source_record_id)
        WHERE d.deleted_at IS NULL OR d.deleted_at < latest.extracted_at
        ORDER BY unique_id
        """
    ).to_arrow_table().cast(CLEAN_PERSON.arrow_schema)


def run(lake: Lake, sources_dir: str | None = None, progress: Progress = lambda _m: None, seed: int = 42) -> RunSummary | None:
    """Process every new batch and publish a snapshot. None when there was nothing new."""
    sources = load_sources(sources_dir)
    started = datetime.now(UTC)
    run_id = new_run_id(started)
    per_source = scrub_stage(lake, sources, progress)
    if not per_source:
        return None

    con = duckdb.connect()
    records = current_records(con, lake)
    progress(f"matching {records.num_rows} current clean records")
    if records.num_rows >= 2:
        resolution = resolve(con, records, seed=seed)
        pairs, clusters, model_json = resolution.pairs, resolution.clusters, resolution.model_json
    else:
        pairs = pa.table({"unique_id_l": pa.array([], pa.string()), "unique_id_r": pa.array([], pa.string()),
                          "match_weight": pa.array([], pa.float64()), "match_probability": pa.array([], pa.float64()),
                          "evidence": pa.array([], pa.string())})
        clusters = pa.table({"unique_id": records.column("unique_id"), "cluster_id": records.column("unique_id")})
        model_json = {}
    person, xref = golden.build(con, records, clusters, pairs, model.LINK_THRESHOLD)
    progress(f"resolved {records.num_rows} records into {person.num_rows} persons")

    finished = datetime.now(UTC)
    summary = RunSummary(run_id, started, finished, per_source, person.num_rows, records.num_rows, pairs.num_rows)
    publish_snapshot(
        lake, run_id,
        tables={"person": person, "person_xref": xref, "match_pairs": pairs, "clean_person": records},
        run_stats=run_stats_rows(summary),
        model_json=model_json,
    )
    progress(f"published snapshot {run_id}")
    return summary


def run_stats_rows(summary: RunSummary) -> pa.Table:
    rows = []
    for source, s in sorted(summary.per_source.items()) + [("*", summary.totals)]:
        rows.append(
            {
                "run_id": summary.run_id, "started_at": summary.started_at, "finished_at": summary.finished_at,
                "source_system": source, "batches": s.batches, "records_in": s.records_in,
                "records_clean": s.records_clean, "records_quarantined": s.records_quarantined,
                "persons": summary.persons if source == "*" else None,
                "pairs_scored": summary.pairs_scored if source == "*" else None,
            }
        )
    return pa.Table.from_pylist(rows, schema=RUN_STATS.arrow_schema)


