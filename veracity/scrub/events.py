"""Event participations: for a source whose records are a person's part in an event
(``events`` in its config), one row per clean record with the event's reference,
date, category and area and the person's role. The same function runs in the local
scrub and, per Arrow batch, on Spark."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from veracity.schema import EVENT_RECORD
from veracity.scrub import standardise as std
from veracity.sources import SourceConfig


def event_records(raw: pa.Table, ids: pa.Array, config: SourceConfig, batch_id: str, extracted_at: datetime) -> pa.Table:
    """``raw``: the source columns of rows that passed the record-id checks; ``ids``
    their record ids. Empty for a source without events."""
    spec = config.events
    if spec is None or not raw.num_rows:
        return EVENT_RECORD.empty()
    n = raw.num_rows

    def text(column: str | None) -> pa.Array:
        return std.ascii_upper(raw.column(column).combine_chunks()) if column else pa.nulls(n, pa.string())

    ref = ids
    if spec.ref:  # a record without a reference is an event of its own
        ref = pc.coalesce(std.ascii_upper(raw.column(spec.ref).combine_chunks()), ids)
    event_date, _unparseable, _implausible = std.dates(raw.column(spec.date_column).combine_chunks(),
                                                       spec.date_formats, extracted_at.date())
    source = pa.array([config.name] * n, pa.string())
    return pa.table(
        {
            "source_system": source, "batch_id": pa.array([batch_id] * n, pa.string()), "source_record_id": ids,
            "unique_id": pc.binary_join_element_wise(source, ids, ":"),
            "extracted_at": pa.array([extracted_at] * n, pa.timestamp("us", tz="UTC")),
            "event_kind": pa.array([spec.kind] * n, pa.string()), "event_ref": ref, "event_date": event_date,
            "category": text(spec.category), "area": text(spec.area), "participant_role": text(spec.role),
        },
        schema=EVENT_RECORD.arrow_schema,
    )
