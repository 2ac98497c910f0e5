"""The pipeline on the embedded engine: scrub new batches, match, publish a snapshot.

Each stage is a plain function over a Lake; the CLI, the Glue job shells and the
local orchestrator all call these same entry points.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from veracity import batches as batch_ledger
from veracity import review
from veracity.consistency import Consistency, compare_partitions
from veracity.errors import VeracityError
from veracity.lake import Lake
from veracity.matching import golden, identity, model, model_store
from veracity.matching.incremental import resolve_increment
from veracity.matching.resolve import Resolution, connect, resolve, train
from veracity.schema import (
    CLEAN_PERSON,
    CLUSTER_SIZES,
    CURATED_TABLES,
    DELETIONS,
    MATCH_PAIRS,
    PERSON_ID_HISTORY,
    RUN_STATS,
)
from veracity.scrub.job import scrub_job
from veracity.snapshots import current_run_id, publish_snapshot, read_snapshot
from veracity.sources import DEFAULT_TRUST, SourceConfig, load_sources

Progress = Callable[[str], None]
PERSON_XREF_IDS = pa.schema([("unique_id", pa.string()), ("person_id", pa.string()), ("represented_by", pa.string())])


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
    comparisons: int = 0
    links: int = 0
    review_queue: int = 0
    model_version: str | None = None
    id_changes: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    mode: str = "full"  # or "incremental": only the changes scored, only the persons they touch rebuilt
    records_scored: int = 0
    persons_affected: int | None = None  # incremental runs: earlier persons re-clustered
    consistency: Consistency | None = None  # full runs over a snapshot: agreement with it

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


def _inputs_changed(lake: Lake, decision_log: pa.Table) -> bool:
    """Whether, with no new batches, the last snapshot is still out of date: batches
    scrubbed that it does not hold (a run stopped before publishing), reviewers decided
    since, or another model has been trained."""
    run_id = current_run_id(lake)
    if run_id is None:
        return bool(batch_ledger.processed_keys(lake))
    snapshot = read_snapshot(lake, run_id)
    if "batches" in snapshot and set(batch_ledger.processed_keys(lake)) - set(snapshot["batches"]):
        return True
    saved = model_store.current(lake)
    retrained = saved is not None and snapshot.get("model_version") not in (None, saved.version)
    return retrained or decision_log.num_rows != snapshot.get("decisions", 0)


def trained_model(lake: Lake, records: pa.Table, progress: Progress, seed: int = 42, retrain: bool = False,
                  scratch: str | None = None) -> model_store.TrainedModel:
    """The current trained model, training and saving one first when there is none
    for today's declared model (or when asked to)."""
    found = None if retrain else model_store.current(lake)
    if found is not None:
        return found
    progress(f"training the linkage model on {records.num_rows:,} records")
    model_json, summary = train(connect(scratch) if scratch else duckdb.connect(), records, seed=seed)
    saved = model_store.save(lake, model_json, summary)
    progress(f"saved model {saved.version} (trained in {summary['seconds']}s)")
    return saved


def run(lake: Lake, sources_dir: str | None = None, progress: Progress = lambda _m: None, seed: int = 42,
        full: bool = False) -> RunSummary | None:
    """Process every new batch and publish a snapshot. None when there was nothing new.

    With a published snapshot made by the current model, only the changes are resolved
    (``matching.incremental``); ``full`` re-resolves every current record and reports
    how far the result agrees with the snapshot."""
    sources = load_sources(sources_dir)
    started = datetime.now(UTC)
    run_id = new_run_id(started)
    clock = time.monotonic()
    seconds: dict[str, float] = {}

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.monotonic()
        seconds[stage] = round(seconds.get(stage, 0.0) + now - clock, 1)
        clock = now

    per_source = scrub_stage(lake, sources, progress)
    lap("scrub")
    decision_log = review.all_decisions(lake)
    decisions = review.current_decisions(lake)
    if not per_source and not full and not _inputs_changed(lake, decision_log):
        return None

    with tempfile.TemporaryDirectory(prefix="veracity-") as scratch:
        summary = _resolve_and_publish(lake, sources, run_id, started, per_source, decisions, decision_log,
                                       scratch, progress, lap, seed, full)
    lap("publish")
    summary.stage_seconds = seconds
    progress(f"published snapshot {run_id} (seconds: " + ", ".join(f"{k} {v}" for k, v in seconds.items()) + ")")
    return summary


@dataclass
class PreviousState:
    """What the last snapshot resolved. Who its records resolved to and the id history
    are read at once (every run needs them); the rest only when an incremental run asks."""

    lake: Lake
    run_id: str
    model_version: str | None
    xref_ids: pa.Table  # unique_id, person_id, represented_by
    history: pa.Table
    missing_columns: list[str]  # written before these columns existed: not a base for an incremental run

    @classmethod
    def read(cls, lake: Lake, run_id: str) -> PreviousState:
        missing: list[str] = []
        state = cls(lake, run_id, read_snapshot(lake, run_id).get("model_version"), PERSON_XREF_IDS.empty_table(),
                    PERSON_ID_HISTORY.empty(), missing)
        xref = state.table("person_xref", missing)
        unique_ids = pc.binary_join_element_wise(xref.column("source_system"), xref.column("source_record_id"), ":")
        state.xref_ids = pa.table({"unique_id": unique_ids, "person_id": xref.column("person_id"),
                                   "represented_by": xref.column("represented_by")})
        state.history = state.table("person_id_history")
        return state

    def _parts(self, name: str) -> tuple[str, ...]:
        return ("curated", "snapshots", self.run_id, f"{name}.parquet")

    def table(self, name: str, missing: list[str] | None = None) -> pa.Table:
        """One of its tables in today's schema; a column added since it was written
        reads as null (and is named in ``missing``)."""
        schema = CURATED_TABLES[name].arrow_schema
        if not self.lake.exists(*self._parts(name)):
            return schema.empty_table()
        found = self.lake.read_table(*self._parts(name))
        for column in schema:
            if column.name not in found.column_names:
                found = found.append_column(column.name, pa.nulls(found.num_rows, column.type))
                if missing is not None:
                    missing.append(f"{name}.{column.name}")
        return found.select(schema.names).cast(schema)

    def record_versions(self) -> pa.Table:
        """unique_id, batch_id, extracted_at of the records it resolved (not the records:
        there may be ten million)."""
        schema = pa.schema([CLEAN_PERSON.arrow_schema.field(c) for c in ("unique_id", "batch_id", "extracted_at")])
        if not self.lake.exists(*self._parts("clean_person")):
            return schema.empty_table()
        return self.lake.dataset(*self._parts("clean_person")).to_table(columns=schema.names).cast(schema)

    def pairs(self) -> str | pa.Table:
        """match_pairs: a local Parquet path, or the table."""
        if self.lake.is_local and self.lake.exists(*self._parts("match_pairs")):
            return self.lake.path(*self._parts("match_pairs"))
        return self.table("match_pairs")


def _new_decisions(decision_log: pa.Table, previous_log: pa.Table) -> pa.Table:
    """Decisions imported since the last snapshot."""
    con = duckdb.connect()
    con.register("log", decision_log)
    con.register("previous_log", previous_log.cast(decision_log.schema))
    return con.sql("SELECT * FROM log EXCEPT SELECT * FROM previous_log").to_arrow_table()


def _untouched(con: duckdb.DuckDBPyConnection, previous: pa.Table, name: str, affected: pa.Table, decisions: pa.Table,
               rebuilt: pa.Table) -> pa.Table:
    """The previous snapshot's rows of ``name`` for persons the run did not touch, with
    the ``rebuilt`` rows of those it did. A review-queue pair a reviewer has decided
    since leaves the queue."""
    con.register("previous_rows", previous)
    con.register("affected_persons", affected)
    con.register("decided", decisions)
    if name == "review_queue":
        kept = con.sql("""
            SELECT p.* FROM previous_rows p
            WHERE p.person_id_l NOT IN (SELECT person_id FROM affected_persons)
              AND p.person_id_r NOT IN (SELECT person_id FROM affected_persons)
              AND NOT EXISTS (SELECT 1 FROM decided d WHERE d.unique_id_l = p.unique_id_l AND d.unique_id_r = p.unique_id_r)
        """)
    else:
        kept = con.sql("SELECT * FROM previous_rows ANTI JOIN affected_persons USING (person_id)")
    schema = CURATED_TABLES[name].arrow_schema
    return pa.concat_tables([kept.to_arrow_table().cast(schema), rebuilt.cast(schema)])


def _resolve_and_publish(lake: Lake, sources: dict[str, SourceConfig], run_id: str, started: datetime,
                         per_source: dict[str, ScrubStats], decisions: pa.Table, decision_log: pa.Table, scratch: str,
                         progress: Progress, lap: Callable[[str], None], seed: int, full: bool) -> RunSummary:
    con = connect(scratch)
    records = current_records(con, lake)
    lap("read")
    model_version = None
    previous_run = current_run_id(lake)
    trained = trained_model(lake, records, progress, seed=seed, scratch=scratch) if records.num_rows >= 2 else None
    if trained is not None:
        model_version = trained.version
        lap("train")
    previous = PreviousState.read(lake, previous_run) if previous_run else None
    incremental = (not full and trained is not None and previous is not None and not previous.missing_columns
                   and previous.model_version == trained.version and previous.xref_ids.num_rows > 0)
    trust = {name: config.trust for name, config in sources.items()}
    if incremental:
        progress(f"resolving the changes to {records.num_rows:,} current clean records against snapshot {previous_run}")
        new_decisions = _new_decisions(decision_log, previous.table("clerical_decisions"))
        increment = resolve_increment(connect(scratch), records, previous.record_versions(), previous.xref_ids, previous.pairs(),
                                      trained.model_json, decisions, new_decisions, scratch, progress)
        resolution = increment.resolution
        lap("match")
        con.register("affected_persons", increment.affected_persons)
        con.register("nodes", increment.nodes)
        con.register("previous_xref_ids", previous.xref_ids)
        was = con.sql("SELECT x.unique_id, x.person_id FROM previous_xref_ids x SEMI JOIN affected_persons USING (person_id)").to_arrow_table()
        ids, events = identity.assign(resolution.clusters, was, previous.history, run_id)
        con.register("all_records", records)
        touched = con.sql("SELECT r.* FROM all_records r SEMI JOIN nodes USING (unique_id)").to_arrow_table()
        person, xref, aliases, addresses = golden.build(
            con, touched, resolution.clusters, ids, resolution.strongest_link, trust, DEFAULT_TRUST, model.LINK_THRESHOLD,
            resolution.representation,
        )
        xref_ids = con.sql("SELECT unique_id, person_id FROM resolved").to_arrow_table()
        queue = review.review_queue(con, resolution.review_candidates, xref_ids, model.LINK_THRESHOLD)
        person, xref, aliases, addresses, queue = (
            _untouched(con, previous.table(name), name, increment.affected_persons, decisions, table)
            for name, table in (("person", person), ("person_xref", xref), ("person_alias", aliases),
                                ("person_address", addresses), ("review_queue", queue))
        )
        scored, affected = increment.scored, increment.affected_persons.num_rows
    else:
        if trained is not None:
            resolution = resolve(connect(scratch), records, trained.model_json, decisions, scratch, progress)
        else:
            resolution = Resolution(
                pairs_file=None, pairs=0, comparisons=0, links=0,
                clusters=pa.table({"unique_id": records.column("unique_id"), "cluster_id": records.column("unique_id")}),
                strongest_link=pa.table({"unique_id": pa.array([], pa.string()), "match_probability": pa.array([], pa.float64())}),
                review_candidates=MATCH_PAIRS.empty(),
            )
        lap("match")
        was = previous.xref_ids.select(["unique_id", "person_id"]) if previous else PERSON_XREF_IDS.empty_table()
        history = previous.history if previous else PERSON_ID_HISTORY.empty()
        ids, events = identity.assign(resolution.clusters, was, history, run_id)
        person, xref, aliases, addresses = golden.build(
            con, records, resolution.clusters, ids, resolution.strongest_link, trust, DEFAULT_TRUST, model.LINK_THRESHOLD,
            resolution.representation,
        )
        xref_ids = con.sql("SELECT unique_id, person_id FROM resolved").to_arrow_table()
        queue = review.review_queue(con, resolution.review_candidates, xref_ids, model.LINK_THRESHOLD)
        scored, affected = records.num_rows, None
    consistency = None
    if full and previous is not None:
        consistency = compare_partitions(con, previous.xref_ids, xref_ids)
        progress(f"consistency with snapshot {previous_run}: pairwise agreement {consistency.pairwise_agreement:.4f}, "
                 f"{consistency.persons_differing:,} persons differ")
    con.register("person_table", person)
    sizes = con.sql(
        f"SELECT '{run_id}' AS run_id, record_count AS records_per_person, count(*) AS persons "
        "FROM person_table GROUP BY ALL ORDER BY records_per_person"
    ).to_arrow_table() if person.num_rows else CLUSTER_SIZES.empty()
    lap("golden")
    changes = {e: sum(1 for x in events.column("event").to_pylist() if x == e) for e in ("created", "merged", "split", "retired")}
    progress(f"resolved {records.num_rows:,} records into {person.num_rows:,} persons "
             f"({scored:,} records scored, {resolution.comparisons:,} comparisons, {resolution.links:,} links, "
             f"{queue.num_rows:,} pairs for review; " + ", ".join(f"{n:,} ids {e}" for e, n in changes.items() if n) + ")")

    summary = RunSummary(run_id, started, datetime.now(UTC), per_source, person.num_rows, records.num_rows, resolution.pairs,
                         comparisons=resolution.comparisons, links=resolution.links, review_queue=queue.num_rows,
                         model_version=model_version, id_changes=changes, mode="incremental" if incremental else "full",
                         records_scored=scored, persons_affected=affected, consistency=consistency)
    publish_snapshot(
        lake, run_id,
        tables={"person": person, "person_xref": xref, "person_alias": aliases, "person_address": addresses,
                "match_pairs": resolution.pairs_file or MATCH_PAIRS.empty(), "review_queue": queue,
                "clerical_decisions": decision_log, "clean_person": records, "cluster_sizes": sizes},
        appended={"run_stats": run_stats_rows(summary), "person_id_history": events},
        model_version=model_version, decisions=decision_log.num_rows,
        batches=batch_ledger.processed_keys(lake),
    )
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
                "comparisons": summary.comparisons if source == "*" else None,
                "links": summary.links if source == "*" else None,
                "review_queue": summary.review_queue if source == "*" else None,
                "model_version": summary.model_version if source == "*" else None,
                "mode": summary.mode if source == "*" else None,
                "records_scored": summary.records_scored if source == "*" else None,
                "persons_affected": summary.persons_affected if source == "*" else None,
                "pairwise_agreement": summary.consistency.pairwise_agreement if source == "*" and summary.consistency else None,
            }
        )
    return pa.Table.from_pylist(rows, schema=RUN_STATS.arrow_schema)


