"""The pipeline on the embedded engine: scrub new batches, match, publish a snapshot.

Each stage is a plain function over a Lake; the CLI, the Glue job shells and the
local orchestrator all call these same entry points.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from veracity import batches as batch_ledger
from veracity.errors import VeracityError
from veracity.lake import Lake
from veracity.matching import golden, model
from veracity.matching.resolve import resolve
from veracity.schema import CLEAN_PERSON, DELETIONS, RUN_STATS
from veracity.scrub.job import scrub_job
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


def scrub_stage(lake: Lake, sources: dict[str, SourceConfig], progress: Progress, workers: int | None = None) -> dict[str, ScrubStats]:
    """Scrub every landed batch not yet in the ledger, batches in parallel processes."""
    landed = batch_ledger.landed_batches(lake)
    if not landed:
        raise VeracityError(f"no batches in {lake.display('landing')}: generate or land extracts first")
    todo = [b for b in landed if not batch_ledger.processed(lake, b)]
    jobs = [(lake.uri, b.source, b.batch_id, sources[b.source].path if b.source in sources else None) for b in todo]
    workers = workers if workers is not None else min(2, multiprocessing.cpu_count())
    stats: dict[str, ScrubStats] = {}
    if workers <= 1 or len(jobs) <= 1:
        outcomes = map(scrub_job, jobs)
        pool = None
    else:
        pool = multiprocessing.get_context("spawn").Pool(workers)
        outcomes = pool.imap_unordered(scrub_job, jobs)
    try:
        for outcome in outcomes:
            s = stats.setdefault(outcome.source, ScrubStats())
            s.batches += 1
            s.records_in += outcome.records_in
            s.records_clean += outcome.records_clean
            s.records_quarantined += outcome.records_quarantined
            s.deletions += outcome.deletions
            if outcome.problem:
                s.rejected_batches.append(f"{outcome.source}/{outcome.batch_id}: {outcome.problem}")
            progress(f"scrubbed {outcome.source}/{outcome.batch_id}: {outcome.records_clean:,} clean, "
                     f"{outcome.records_quarantined:,} quarantined")
    finally:
        if pool:
            pool.close()
            pool.join()
    return stats


def current_records(con: duckdb.DuckDBPyConnection, lake: Lake) -> pa.Table:
    """Each source record as last delivered, less those deleted since.

    A record delivered again under the same source id replaces its earlier version;
    a deletion removes every version delivered before it.
    """
    con.register("all_versions", lake.dataset("clean", "clean_person", schema=CLEAN_PERSON.arrow_schema))
    con.register("deletions", lake.dataset("clean", "deletions", schema=DELETIONS.arrow_schema))
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


