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
import pyarrow.parquet as pq

from veracity import batches as batch_ledger
from veracity import networks, review, snapshots
from veracity.consistency import Consistency, compare_partitions
from veracity.errors import VeracityError
from veracity.lake import Lake
from veracity.matching import golden, identity, model, model_store, pair_keys
from veracity.matching.incremental import PairLayer, resolve_increment
from veracity.matching.resolve import (
    PAIRS_ROW_GROUP_ROWS,
    RECORDS_TABLE,
    Resolution,
    connect,
    limit_memory,
    resolve,
    train,
)
from veracity.schema import (
    CLEAN_PERSON,
    CLUSTER_SIZES,
    DELETIONS,
    MATCH_PAIRS,
    PERSON_ID_HISTORY,
    RUN_STATS,
)
from veracity.scrub.job import scrub_job
from veracity.snapshots import Layer, current_run_id, publish_snapshot, read_snapshot
from veracity.sources import DEFAULT_TRUST, SourceConfig, load_sources

Progress = Callable[[str], None]
PERSON_XREF_IDS = pa.schema([("unique_id", pa.string()), ("person_id", pa.string())])
GOLDEN_MEMORY_SHARE = 0.6  # of DuckDB's budget, in a full run's golden stage


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


# Starting a worker process (its interpreter and imports) takes about as long as
# scrubbing several megabytes in this one: below this much landed, a run of small
# batches is quicker scrubbed here.
PARALLEL_SCRUB_BYTES = 16 << 20


def scrub_stage(lake: Lake, sources: dict[str, SourceConfig], progress: Progress, workers: int | None = None,
                batches: list[batch_ledger.Batch] | None = None) -> dict[str, ScrubStats]:
    """Scrub every landed batch not yet in the ledger (or those of ``batches`` that are
    not), batches in parallel processes when ``workers`` (by default: up to two, once
    the batches hold ``PARALLEL_SCRUB_BYTES``) is more than one."""
    landed = batch_ledger.landed_batches(lake)
    if not landed:
        raise VeracityError(f"no batches in {lake.display('landing')}: generate or land extracts first")
    if batches is not None:
        missing = sorted(set(b.key for b in batches) - set(b.key for b in landed))
        if missing:
            raise VeracityError(f"no such batches in {lake.display('landing')}: {', '.join(missing)}")
        landed = batches
    todo = [b for b in landed if not batch_ledger.processed(lake, b)]
    jobs = [(lake.uri, b.source, b.batch_id, sources[b.source].path if b.source in sources else None) for b in todo]
    if workers is None:  # sized only when there is more than one batch to share out
        worth_it = len(jobs) > 1 and sum(lake.total_size("landing", b.source, b.batch_id) for b in todo) >= PARALLEL_SCRUB_BYTES
        workers = min(2, multiprocessing.cpu_count()) if worth_it else 1
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
        full: bool = False, batches: list[batch_ledger.Batch] | None = None) -> RunSummary | None:
    """Process every new batch (or just ``batches``, as a run started by their delivery
    does) and publish a snapshot. None when there was nothing new.

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

    per_source = scrub_stage(lake, sources, progress, batches=batches)
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
    """The last snapshot: its tables are read where they lie, as views, or whole when a
    full run needs them."""

    lake: Lake
    run_id: str
    snapshot: dict

    @classmethod
    def read(cls, lake: Lake, run_id: str) -> PreviousState:
        return cls(lake, run_id, read_snapshot(lake, run_id))

    @property
    def model_version(self) -> str | None:
        return self.snapshot.get("model_version")

    def incremental_base(self) -> str | None:
        """Why an incremental run cannot build on this snapshot, or None when it can."""
        if "batches" not in self.snapshot:
            return "it does not list the batches it holds"
        missing = [f"{name}.{c}" for name in ("person_xref", "clean_person", "match_pairs")
                   for c in snapshots.missing_columns(self.lake, self.snapshot, name)
                   if not (name == "match_pairs" and c in pair_keys.KEY_COLUMNS)]  # without keys, pairs are found by id
        return f"it was written without {', '.join(missing)}" if missing else None

    def register(self, con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
        """Views ``previous_<name>`` over its tables."""
        snapshots.register(con, self.lake, self.snapshot, names, prefix="previous_")

    def pair_layers(self) -> list[PairLayer]:
        """The layers of its match_pairs, as registered by ``register``, each with its
        file when local and whether its records' keys serve this run."""
        files = self.snapshot["tables"].get("match_pairs", [])
        layers = []
        for (relation, removed_by), f in zip(snapshots.layers(self.snapshot, "match_pairs", "previous_"), files, strict=True):
            with self.lake.fs.open_input_file(self.lake.path(f)) as handle:
                keyed = pair_keys.file_usable(handle)
            layers.append(PairLayer(relation, removed_by, self.lake.path(f) if self.lake.is_local else None, keyed))
        return layers

    def table(self, name: str) -> pa.Table:
        return snapshots.read_table(self.lake, self.snapshot, name)

    def xref_ids(self) -> pa.Table:
        """unique_id, person_id of every record it resolved."""
        xref = self.table("person_xref")
        unique_ids = pc.binary_join_element_wise(xref.column("source_system"), xref.column("source_record_id"), ":")
        return pa.table({"unique_id": unique_ids, "person_id": xref.column("person_id")})


def _new_decisions(decision_log: pa.Table, previous_log: pa.Table) -> pa.Table:
    """Decisions imported since the last snapshot."""
    con = duckdb.connect()
    con.register("log", decision_log)
    con.register("previous_log", previous_log.cast(decision_log.schema))
    return con.sql("SELECT * FROM log EXCEPT SELECT * FROM previous_log").to_arrow_table()


@dataclass
class Resolved:
    """What a run publishes, whole or as layers on the last snapshot's tables."""

    resolution: Resolution
    tables: dict[str, pa.Table | str]
    layers: dict[str, Layer]
    events: pa.Table
    persons: int
    records: int
    scored: int
    review_pairs: int
    affected: int | None = None
    consistency: Consistency | None = None


def _resolve_and_publish(lake: Lake, sources: dict[str, SourceConfig], run_id: str, started: datetime,
                         per_source: dict[str, ScrubStats], decisions: pa.Table, decision_log: pa.Table, scratch: str,
                         progress: Progress, lap: Callable[[str], None], seed: int, full: bool) -> RunSummary:
    trust = source_trust(sources)
    previous_run = current_run_id(lake)
    previous = PreviousState.read(lake, previous_run) if previous_run else None
    saved = None if full else model_store.current(lake)
    why_not = previous.incremental_base() if previous is not None and saved is not None else "no model or snapshot"
    if not full and why_not is None and previous.model_version == saved.version:
        resolved = _resolve_increment(lake, previous, saved, run_id, trust, decisions, decision_log, scratch, progress, lap)
        model_version = saved.version
    else:
        if previous is not None and not full and why_not and saved is not None:
            progress(f"resolving every record: snapshot {previous_run} is no base for an incremental run ({why_not})")
        resolved, model_version = _resolve_all(lake, previous, run_id, trust, decisions, scratch, progress, lap, seed, full)
    lap("golden")
    return _publish(lake, run_id, started, per_source, resolved, model_version, decision_log, progress)


def source_trust(sources: dict[str, SourceConfig]) -> dict[str, int]:
    """Each source system's trust rank, for the survivorship rules."""
    return {name: config.trust for name, config in sources.items()}


def _publish(lake: Lake, run_id: str, started: datetime, per_source: dict[str, ScrubStats], resolved: Resolved,
             model_version: str | None, decision_log: pa.Table, progress: Progress) -> RunSummary:
    """Publish what a run resolved as snapshot ``run_id``, with its stats."""
    resolution = resolved.resolution
    changes = {e: sum(1 for x in resolved.events.column("event").to_pylist() if x == e) for e in ("created", "merged", "split", "retired")}
    progress(f"resolved {resolved.records:,} records into {resolved.persons:,} persons "
             f"({resolved.scored:,} records scored, {resolution.comparisons:,} comparisons, {resolution.links:,} links, "
             f"{resolved.review_pairs:,} pairs for review; " + ", ".join(f"{n:,} ids {e}" for e, n in changes.items() if n) + ")")

    summary = RunSummary(run_id, started, datetime.now(UTC), per_source, resolved.persons, resolved.records, resolution.pairs,
                         comparisons=resolution.comparisons, links=resolution.links, review_queue=resolved.review_pairs,
                         model_version=model_version, id_changes=changes,
                         mode="incremental" if resolved.affected is not None else "full",
                         records_scored=resolved.scored, persons_affected=resolved.affected, consistency=resolved.consistency)
    publish_snapshot(
        lake, run_id,
        tables={**resolved.tables, "clerical_decisions": decision_log},
        layers={**resolved.layers, "run_stats": Layer(run_stats_rows(summary)), "person_id_history": Layer(resolved.events)},
        model_version=model_version, decisions=decision_log.num_rows,
        batches=batch_ledger.processed_keys(lake), derive=networks.derive,
    )
    return summary


def _resolve_increment(lake: Lake, previous: PreviousState, saved: model_store.TrainedModel, run_id: str,
                       trust: dict[str, int], decisions: pa.Table, decision_log: pa.Table, scratch: str,
                       progress: Progress, lap: Callable[[str], None]) -> Resolved:
    """The batches new since ``previous`` resolved against it: only the persons they
    touch are rebuilt, and published as layers on its tables."""
    con = connect(scratch)
    previous.register(con, ["clean_person", "person_xref", "match_pairs", "person", "review_queue"])
    _changes(con, lake, previous.snapshot)
    con.execute("""
        CREATE TABLE veracity_previous_xref AS
        SELECT source_system || ':' || source_record_id AS unique_id, person_id, represented_by, link_group
        FROM previous_person_xref
    """)
    lap("read")
    new_decisions = _new_decisions(decision_log, previous.table("clerical_decisions"))
    increment = resolve_increment(con, saved.model_json, decisions, new_decisions, previous.pair_layers(), scratch, progress)
    resolution = increment.resolution
    lap("match")
    con.register("affected_persons", increment.affected_persons)
    con.register("nodes", increment.nodes)
    was = con.sql("SELECT unique_id, person_id FROM veracity_previous_xref SEMI JOIN affected_persons USING (person_id)").to_arrow_table()
    ids, events = identity.assign(resolution.clusters, was, previous.table("person_id_history"), run_id)
    # The linker's records hold every affected record (with the model's derived columns).
    touched = con.sql(f"SELECT {', '.join(CLEAN_PERSON.arrow_schema.names)} FROM {RECORDS_TABLE} SEMI JOIN nodes USING (unique_id)"
                      ).to_arrow_table().cast(CLEAN_PERSON.arrow_schema)
    person, xref, aliases, addresses = golden.build(
        con, touched, resolution.clusters, ids, resolution.strongest_link, trust, DEFAULT_TRUST, model.LINK_THRESHOLD,
        resolution.representation, resolution.link_groups,
    )
    con.register("review_candidates", resolution.review_candidates)
    xref_ids = con.sql("""
        SELECT unique_id, person_id FROM resolved
        UNION ALL
        SELECT x.unique_id, x.person_id FROM veracity_previous_xref x
        WHERE x.unique_id NOT IN (SELECT unique_id FROM nodes)
          AND x.unique_id IN (SELECT unique_id_l FROM review_candidates UNION ALL SELECT unique_id_r FROM review_candidates)
    """).to_arrow_table()
    queue, queued = review.review_queue(con, resolution.review_candidates, xref_ids, model.LINK_THRESHOLD, scratch)
    con.register("rebuilt_person", person)
    sizes = _cluster_sizes(con, run_id, """(SELECT record_count FROM previous_person
                                            WHERE person_id NOT IN (SELECT person_id FROM affected_persons)
                                            UNION ALL SELECT record_count FROM rebuilt_person)""")
    # Every current record is held by one person: the sizes give both counts.
    persons = sum(sizes.column("persons").to_pylist())
    records = sum(n * size for n, size in zip(sizes.column("persons").to_pylist(),
                                              sizes.column("records_per_person").to_pylist(), strict=True))
    keys = {"persons": increment.affected_persons.rename_columns(["key"]),
            "records": con.sql("SELECT unique_id AS key FROM veracity_gone").to_arrow_table(),
            "rescored": increment.rescored.rename_columns(["key"])}
    layers = {
        "clean_person": Layer(con.sql("SELECT * FROM veracity_changed").to_arrow_table(), keys["records"]),
        "match_pairs": Layer(resolution.pairs_file, keys["rescored"]),
        **{name: Layer(rows, keys["persons"]) for name, rows in (("person", person), ("person_xref", xref),
                                                                 ("person_alias", aliases), ("person_address", addresses),
                                                                 ("review_queue", queue))},
    }
    return Resolved(resolution, {"cluster_sizes": sizes}, layers, events, persons, records, increment.scored,
                    queued, affected=increment.affected_persons.num_rows)


def _changes(con: duckdb.DuckDBPyConnection, lake: Lake, snapshot: dict) -> None:
    """From the batches scrubbed since ``snapshot`` (its clean_person registered as
    ``previous_clean_person``): ``veracity_changed``, the records they bring in or
    replace; ``veracity_gone`` (unique_id), the snapshot's records replaced or deleted;
    and ``veracity_current``, every current record. The same rule as
    ``current_records``: the latest version of a record stands unless deleted since."""
    held = set(snapshot["batches"])
    new = [k for k in batch_ledger.processed_keys(lake) if k not in held]
    delivered = [f"clean/clean_person/{k}.parquet" for k in new if lake.exists("clean", "clean_person", f"{k}.parquet")]
    snapshots.register(con, lake, {"tables": {"clean_person": delivered}}, ["clean_person"], prefix="delivered_")
    con.register("deletions", lake.dataset("clean", "deletions", schema=DELETIONS.arrow_schema))
    con.execute("""
        CREATE TABLE veracity_last_deleted AS
        SELECT source_system || ':' || source_record_id AS unique_id, max(extracted_at) AS deleted_at FROM deletions GROUP BY ALL
    """)
    # The snapshot's versions of the records delivered or deleted since: one read of its records.
    con.execute("""
        CREATE TABLE veracity_prior AS
        SELECT unique_id, extracted_at, batch_id FROM previous_clean_person
        WHERE unique_id IN (SELECT unique_id FROM delivered_clean_person UNION ALL SELECT unique_id FROM veracity_last_deleted)
    """)
    con.execute("""
        CREATE TABLE veracity_changed AS
        WITH latest AS (
            SELECT * FROM delivered_clean_person
            QUALIFY row_number() OVER (PARTITION BY unique_id ORDER BY extracted_at DESC, batch_id DESC) = 1
        )
        SELECT l.* FROM latest l
        LEFT JOIN veracity_last_deleted d USING (unique_id)
        WHERE (d.deleted_at IS NULL OR d.deleted_at < l.extracted_at)
          AND NOT EXISTS (SELECT 1 FROM veracity_prior p WHERE p.unique_id = l.unique_id
                          AND (p.extracted_at, p.batch_id) >= (l.extracted_at, l.batch_id))
    """)
    con.execute("""
        CREATE TABLE veracity_gone AS
        SELECT p.unique_id FROM veracity_prior p
        LEFT JOIN veracity_last_deleted d USING (unique_id)
        WHERE p.unique_id IN (SELECT unique_id FROM veracity_changed) OR d.deleted_at >= p.extracted_at
    """)
    con.execute("""
        CREATE VIEW veracity_current AS
        SELECT * FROM previous_clean_person WHERE unique_id NOT IN (SELECT unique_id FROM veracity_gone)
        UNION ALL SELECT * FROM veracity_changed
    """)


def _cluster_sizes(con: duckdb.DuckDBPyConnection, run_id: str, record_counts: str) -> pa.Table:
    """Persons per records-per-person, over ``record_counts`` (a relation with record_count)."""
    return con.sql(
        f"SELECT '{run_id}' AS run_id, record_count AS records_per_person, count(*) AS persons "
        f"FROM {record_counts} GROUP BY ALL ORDER BY records_per_person"
    ).to_arrow_table().cast(CLUSTER_SIZES.arrow_schema)


def _resolve_all(lake: Lake, previous: PreviousState | None, run_id: str, trust: dict[str, int], decisions: pa.Table,
                 scratch: str, progress: Progress, lap: Callable[[str], None], seed: int, full: bool) -> tuple[Resolved, str | None]:
    """Every current record resolved afresh; with ``full`` and a snapshot, how far the
    result agrees with it."""
    con = connect(scratch)
    records = current_records(con, lake)
    lap("read")
    trained = trained_model(lake, records, progress, seed=seed, scratch=scratch) if records.num_rows >= 2 else None
    if trained is not None:
        lap("train")
        matching = connect(scratch)
        resolution = resolve(matching, records, trained.model_json, decisions, scratch, progress)
        matching.close()  # its scored pairs are on disk now: free the memory before the golden records
    else:
        resolution = Resolution(
            pairs_file=None, pairs=0, comparisons=0, links=0,
            clusters=pa.table({"unique_id": records.column("unique_id"), "cluster_id": records.column("unique_id")}),
            strongest_link=pa.table({"unique_id": pa.array([], pa.string()), "match_probability": pa.array([], pa.float64())}),
            review_candidates=MATCH_PAIRS.empty(),
        )
    lap("match")
    # The golden stage holds the records and the resolution as Arrow tables beside
    # DuckDB (about as much again at ten million records): DuckDB gets a share of its budget.
    limit_memory(con, GOLDEN_MEMORY_SHARE)
    resolved = _golden_all(con, previous, run_id, trust, decisions, records, resolution, scratch, progress, full)
    return resolved, trained.version if trained is not None else None


def _golden_all(con: duckdb.DuckDBPyConnection, previous: PreviousState | None, run_id: str, trust: dict[str, int],
                decisions: pa.Table, records: pa.Table, resolution: Resolution, scratch: str, progress: Progress,
                full: bool) -> Resolved:
    """Stable ids, golden records and the review queue for every current record; with
    ``full`` and a snapshot, how far the result agrees with it."""
    was = previous.xref_ids() if previous else PERSON_XREF_IDS.empty_table()
    consistency = None
    if full and previous is not None:
        # Agreement does not depend on how persons are labelled: compared on the clusters,
        # before the golden records are built beside them.
        clusters = resolution.clusters.rename_columns(["unique_id", "person_id"])
        consistency = compare_partitions(con, was, clusters)
        progress(f"consistency with snapshot {previous.run_id}: pairwise agreement {consistency.pairwise_agreement:.4f}, "
                 f"{consistency.persons_differing:,} persons differ")
    history = previous.table("person_id_history") if previous else PERSON_ID_HISTORY.empty()
    ids, events = identity.assign(resolution.clusters, was, history, run_id)
    person, xref, aliases, addresses = golden.build(
        con, records, resolution.clusters, ids, resolution.strongest_link, trust, DEFAULT_TRUST, model.LINK_THRESHOLD,
        resolution.representation, resolution.link_groups,
    )
    xref_ids = con.sql("SELECT unique_id, person_id FROM resolved").to_arrow_table()
    queue, queued = review.review_queue(con, resolution.review_candidates, xref_ids, model.LINK_THRESHOLD, scratch)
    con.register("person_table", person)
    tables = {"person": person, "person_xref": xref, "person_alias": aliases, "person_address": addresses,
              "match_pairs": resolution.pairs_file or MATCH_PAIRS.empty(), "review_queue": queue, "clean_person": records,
              "cluster_sizes": _cluster_sizes(con, run_id, "person_table")}
    return Resolved(resolution, tables, {}, events, person.num_rows, records.num_rows, records.num_rows, queued,
                    consistency=consistency)


STAGED_MATCH = ("staging", "match")
STAGED_TABLES = ("match_pairs", "clusters", "strongest_link", "review_candidates", "representation", "link_groups")


def latest_staged_match(lake: Lake) -> str | None:
    """The run id of the newest match staged in full (its summary written last)."""
    staged = [r for r in lake.list_dirs(*STAGED_MATCH) if lake.exists(*STAGED_MATCH, r, "summary.json")]
    return max(staged) if staged else None


def publish_staged(lake: Lake, run_id: str | None = None, sources_dir: str | None = None,
                   progress: Progress = lambda _m: None) -> RunSummary:
    """Publish a match staged by another engine (the Glue match job, on Spark): stable
    ids, golden records and the review queue built here, as a full run builds them."""
    run_id = run_id or latest_staged_match(lake)
    if run_id is None or not lake.exists(*STAGED_MATCH, run_id, "summary.json"):
        raise VeracityError(f"no staged match {run_id or ''} in {lake.display(*STAGED_MATCH)}: run the match job first")
    staged = (*STAGED_MATCH, run_id)
    summary = lake.read_json(*staged, "summary.json")
    previous_run = current_run_id(lake)
    if previous_run is not None and previous_run >= run_id:
        raise VeracityError(f"staged match {run_id} is not newer than the published snapshot {previous_run}")
    trust = source_trust(load_sources(sources_dir))
    started = datetime.now(UTC)
    previous = PreviousState.read(lake, previous_run) if previous_run else None
    with tempfile.TemporaryDirectory(prefix="veracity-") as scratch:
        con = connect(scratch)
        records = current_records(con, lake)
        pairs_file = f"{scratch}/match_pairs.parquet"
        dataset = lake.dataset(*staged, "match_pairs", schema=pair_keys.SCORED_SCHEMA)
        with pq.ParquetWriter(pairs_file, pair_keys.schema(), compression="zstd") as writer:
            for batch in dataset.to_batches():  # streamed: the pairs are the largest table
                writer.write_table(pair_keys.with_keys(batch), row_group_size=PAIRS_ROW_GROUP_ROWS)
        read = {name: lake.read_table(*staged, name) for name in STAGED_TABLES if name != "match_pairs"}
        resolution = Resolution(
            pairs_file=pairs_file, pairs=summary["pairs"], comparisons=summary["comparisons"], links=summary["links"],
            clusters=read["clusters"], strongest_link=read["strongest_link"],
            review_candidates=pair_keys.with_keys(read["review_candidates"]),
            representation=read["representation"], link_groups=read["link_groups"],
        )
        resolved = _golden_all(con, previous, run_id, trust, review.current_decisions(lake), records, resolution,
                               scratch, progress, full=previous is not None)
        published = _publish(lake, run_id, started, {}, resolved, summary["model_version"],
                             review.all_decisions(lake), progress)
    lake.delete_dir(*staged)
    return published


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


