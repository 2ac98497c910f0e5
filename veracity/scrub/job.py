"""Scrub one landed batch into the lake: the unit of work that the local runner runs in
a process pool and a Glue job runs per batch.

Writes ``clean/clean_person``, ``clean/event_record``, ``quarantine``, ``clean/deletions``
and ``clean/data_quality`` for the batch, then records it in the ledger (last, so a batch
interrupted half-way is simply scrubbed again).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from veracity import batches as ledger
from veracity.lake import Lake
from veracity.schema import CLEAN_PERSON, DELETIONS, EVENT_RECORD, QUARANTINE
from veracity.scrub.quality import batch_quality
from veracity.scrub.readers import is_compressed
from veracity.scrub.scrub import quarantine_rows, scrub_stream
from veracity.sources import SourceConfig, load_config


@dataclass
class BatchOutcome:
    source: str
    batch_id: str
    status: str  # scrubbed | rejected
    problem: str | None
    records_in: int
    records_clean: int
    records_quarantined: int
    deletions: int

    def as_dict(self) -> dict:
        return asdict(self)


def read_deletions(lake: Lake, batch: ledger.Batch, checked: ledger.CheckedBatch) -> pa.Table:
    """Record ids a batch's deletion files withdraw."""
    ids: list[str] = []
    for name in checked.deletion_files:
        rows = pacsv.read_csv(
            pa.py_buffer(lake.read_bytes("landing", batch.source, batch.batch_id, name)),
            convert_options=pacsv.ConvertOptions(column_types={"record_id": pa.string()}),
        )
        ids += [v for v in rows.column("record_id").to_pylist() if v]
    n = len(ids)
    return pa.table(
        {"source_system": [batch.source] * n, "source_record_id": ids, "batch_id": [batch.batch_id] * n,
         "extracted_at": pa.array([checked.extracted_at] * n, pa.timestamp("us", tz="UTC"))},
        schema=DELETIONS.arrow_schema,
    )


class _TableSink:
    """Streams tables of one schema into one Parquet object in the lake."""

    def __init__(self, lake: Lake, schema: pa.Schema, *parts: str):
        self.stream = lake.open_output(*parts)
        self.writer = pq.ParquetWriter(self.stream, schema, compression="zstd")
        self.rows = 0

    def __call__(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self.writer.close()
        self.stream.close()


def scrub_landed_batch(lake: Lake, batch: ledger.Batch, config: SourceConfig | None) -> BatchOutcome:
    checked = ledger.check(lake, batch)
    problems = [f"unknown_source: no sources/{batch.source}.yaml"] if config is None else []
    problems += [checked.problem] if checked.problem else []
    problem = "; ".join(problems) or None
    clean = _TableSink(lake, CLEAN_PERSON.arrow_schema, "clean", "clean_person", batch.source, f"{batch.batch_id}.parquet")
    events = _TableSink(lake, EVENT_RECORD.arrow_schema, "clean", "event_record", batch.source, f"{batch.batch_id}.parquet")
    quarantine = _TableSink(lake, QUARANTINE.arrow_schema, "quarantine", batch.source, f"{batch.batch_id}.parquet")
    deletions = DELETIONS.empty()
    try:
        if problem:
            quarantine(quarantine_rows(batch.source, batch.batch_id, [(None, 0, "batch_rejected", f"{batch.key}: {problem}")]))
            rows_in = 1
        else:
            with lake.fs.open_input_stream(lake.path("landing", batch.source, batch.batch_id, checked.extract_name)) as stream:
                counts = scrub_stream(
                    stream, config, batch.batch_id, checked.extracted_at, clean, quarantine,
                    compressed=is_compressed(config, checked.extract_name), emit_events=events,
                )
            if not counts.reconciles():
                raise RuntimeError(
                    f"{batch.key}: {counts.rows_in} rows in but {counts.clean} clean + {counts.quarantined} quarantined"
                )
            problem, rows_in = counts.batch_error, counts.rows_in
            deletions = read_deletions(lake, batch, checked)
    finally:
        clean.close()
        quarantine.close()
        events.close()
    lake.write_table(deletions, "clean", "deletions", batch.source, f"{batch.batch_id}.parquet")
    quality = batch_quality(
        batch.source, batch.batch_id,
        lake.dataset("clean", "clean_person", batch.source, f"{batch.batch_id}.parquet"),
        lake.dataset("quarantine", batch.source, f"{batch.batch_id}.parquet"), rows_in,
    )
    lake.write_table(quality, "clean", "data_quality", batch.source, f"{batch.batch_id}.parquet")
    outcome = BatchOutcome(batch.source, batch.batch_id, "rejected" if problem else "scrubbed", problem,
                           rows_in, clean.rows, quarantine.rows, deletions.num_rows)
    ledger.record_processed(
        lake, batch,
        {**outcome.as_dict(), "extracted_at": checked.extracted_at.isoformat() if checked.extracted_at else None,
         "processed_at": datetime.now(UTC).isoformat()},
    )
    return outcome


def scrub_job(args: tuple[str, str, str, str | None]) -> BatchOutcome:
    """Process-pool entry point: (lake uri, source, batch id, config path)."""
    lake_uri, source, batch_id, config_path = args
    config = load_config(config_path) if config_path else None
    return scrub_landed_batch(Lake.open(lake_uri), ledger.Batch(source, batch_id), config)
