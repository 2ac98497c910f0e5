"""Scrub one batch: raw extract -> canonical clean rows + quarantined rows with reasons.

Every input row ends in exactly one of the two tables, and the counts reconcile.
The extract is streamed in two passes with bounded memory: the first reads the
native format into Arrow chunks (spilled to a local Parquet file) and counts record
ids; the second standardises each chunk, now knowing which ids are duplicated.
``standardise`` is a function over Arrow tables, so any engine that can hand it
Arrow data (the local runner, Spark's mapInArrow on Glue) runs the same code.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from veracity.schema import CLEAN_PERSON, EVENT_RECORD, QUARANTINE
from veracity.scrub import standardise as std
from veracity.scrub.events import event_records
from veracity.scrub.readers import CHUNK_ROWS, LINE, ExtractError, iter_extract
from veracity.sources import FieldSpec, SourceConfig

RECORD_ID = "_record_id"
Emit = Callable[[pa.Table], None]


@dataclass
class ScrubCounts:
    rows_in: int
    clean: int
    quarantined: int
    batch_error: str | None = None

    def reconciles(self) -> bool:
        return self.rows_in == self.clean + self.quarantined


@dataclass
class ScrubResult:
    """A scrubbed batch held in memory (small extracts, tests)."""

    source_system: str
    batch_id: str
    rows_in: int
    clean: pa.Table
    quarantine: pa.Table
    batch_error: str | None = None
    events: pa.Table | None = None  # event_record rows, for a source whose records are events

    def reconciles(self) -> bool:
        return self.rows_in == self.clean.num_rows + self.quarantine.num_rows


def quarantine_rows(source: str, batch_id: str, rows: list[tuple[str | None, int, str, str]]) -> pa.Table:
    return pa.table(
        {
            "source_system": [source] * len(rows),
            "batch_id": [batch_id] * len(rows),
            "source_record_id": [r[0] for r in rows],
            "line_number": [r[1] for r in rows],
            "reason_codes": [r[2] for r in rows],
            "raw_record": [r[3] for r in rows],
        },
        schema=QUARANTINE.arrow_schema,
    )


def record_ids(raw: pa.Table, config: SourceConfig) -> pa.Array:
    parts = [pc.utf8_trim_whitespace(raw.column(c)) for c in config.record_id]
    ids = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "-")
    ids = pc.if_else(pc.equal(ids, ""), std.NULL_STR, ids)
    return ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids


def scrub_stream(
    stream: BinaryIO, config: SourceConfig, batch_id: str, extracted_at: datetime,
    emit_clean: Emit, emit_quarantine: Emit, *, compressed: bool = False, chunk_rows: int = CHUNK_ROWS,
    emit_events: Emit | None = None,
) -> ScrubCounts:
    with tempfile.TemporaryDirectory(prefix="veracity-scrub-") as spill_dir:
        spill = os.path.join(spill_dir, "raw.parquet")
        rows_in, rejects, id_counts, writer = 0, [], Counter(), None
        try:
            for chunk in iter_extract(stream, config, compressed, chunk_rows):
                rows_in += chunk.table.num_rows + len(chunk.rejects)
                rejects += [(None, line, reason, raw) for line, reason, raw in chunk.rejects]
                ids = record_ids(chunk.table, config)
                id_counts.update(ids.to_pylist())
                table = chunk.table.append_column(RECORD_ID, ids)
                writer = writer or pq.ParquetWriter(spill, table.schema, compression="lz4")
                writer.write_table(table)
        except (ExtractError, UnicodeError, OSError) as exc:
            message, rejected = reject_batch(config, batch_id, exc)
            emit_quarantine(rejected)
            return ScrubCounts(1, 0, 1, batch_error=message)
        finally:
            if writer:
                writer.close()
        if rejects:
            emit_quarantine(quarantine_rows(config.name, batch_id, rejects))
        duplicated = pa.array([k for k, n in id_counts.items() if k is not None and n > 1], pa.string())
        del id_counts
        clean = quarantined = 0
        if writer:
            for batch in pq.ParquetFile(spill).iter_batches(batch_size=chunk_rows):
                table = pa.Table.from_batches([batch])
                good, bad = _split_by_id(table, duplicated, config, batch_id)
                if bad.num_rows:
                    emit_quarantine(bad)
                    quarantined += bad.num_rows
                raw, ids = good.drop_columns([RECORD_ID]), good.column(RECORD_ID).combine_chunks()
                out = standardise(raw, ids, config, batch_id, extracted_at)
                emit_clean(out)
                if emit_events and config.events:
                    emit_events(event_records(raw, ids, config, batch_id, extracted_at))
                clean += out.num_rows
        return ScrubCounts(rows_in, clean, quarantined + len(rejects))


def _split_by_id(table: pa.Table, duplicated: pa.Array, config: SourceConfig, batch_id: str) -> tuple[pa.Table, pa.Table]:
    """Rows with a usable record id, and quarantine rows for missing or duplicated ids."""
    ids = table.column(RECORD_ID)
    missing = pc.is_null(ids)
    dup = pc.fill_null(pc.is_in(ids, value_set=duplicated), False)
    bad = pc.or_(missing, dup)
    if not pc.any(bad).as_py():
        return table, QUARANTINE.empty()
    return table.filter(pc.invert(bad)), record_id_quarantine(table.filter(bad), config, batch_id)


def record_id_quarantine(bad: pa.Table, config: SourceConfig, batch_id: str) -> pa.Table:
    """Quarantine rows for raw rows (LINE, source columns, RECORD_ID) whose record id is
    missing (null) or duplicated (any other id): the row kept as JSON of its raw columns."""
    rows = []
    raw_columns = [c for c in bad.column_names if c not in (LINE, RECORD_ID)]
    for row in bad.to_pylist():
        raw = json.dumps({c: row[c] for c in raw_columns}, ensure_ascii=False)
        reason = "missing_record_id" if row[RECORD_ID] is None else "duplicate_record_id"
        rows.append((row[RECORD_ID], row[LINE], reason, raw))
    return quarantine_rows(config.name, batch_id, rows)


def reject_batch(config: SourceConfig, batch_id: str, exc: Exception) -> tuple[str, pa.Table]:
    """An extract that cannot be read at all: the message, and its one quarantine row."""
    message = f"{config.name}/{batch_id}: {exc}"
    return message, quarantine_rows(config.name, batch_id, [(None, 0, "batch_rejected", message)])


def scrub_batch(data: bytes, config: SourceConfig, batch_id: str, extracted_at: datetime, compressed: bool = False) -> ScrubResult:
    """Scrub a whole extract held in memory."""
    clean: list[pa.Table] = []
    quarantine: list[pa.Table] = []
    events: list[pa.Table] = []
    counts = scrub_stream(io.BytesIO(data), config, batch_id, extracted_at, clean.append, quarantine.append,
                          compressed=compressed, emit_events=events.append)
    q = pa.concat_tables([QUARANTINE.empty(), *quarantine])
    q = q.take(pc.sort_indices(q, [("line_number", "ascending")]))
    return ScrubResult(config.name, batch_id, counts.rows_in, pa.concat_tables([CLEAN_PERSON.empty(), *clean]), q,
                       counts.batch_error, pa.concat_tables([EVENT_RECORD.empty(), *events]))


def _column(raw: pa.Table, spec: FieldSpec) -> pa.Array:
    if len(spec.columns) == 1:
        return raw.column(spec.columns[0]).combine_chunks()
    parts = [pc.fill_null(raw.column(c), "") for c in spec.columns]
    joined = pc.binary_join_element_wise(*parts, spec.joiner)
    joined = pc.utf8_trim(pc.replace_substring_regex(joined, r"\s+", " "), " " + spec.joiner)
    joined = joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined
    return pc.if_else(pc.equal(joined, ""), std.NULL_STR, joined)


class _Flags:
    """Per-row quality flag codes, gathered column by column."""

    def __init__(self, n: int):
        self.n = n
        self.parts: list[pa.Array] = []

    def add(self, problem: pa.Array, code: str) -> None:
        if pc.any(problem).as_py():
            self.parts.append(pc.if_else(problem, pa.scalar(code), std.NULL_STR))

    def joined(self) -> pa.Array:
        if not self.parts:
            return pa.nulls(self.n, pa.string())
        if len(self.parts) == 1:
            return self.parts[0]
        # null_handling="skip" drops rows where every input is null (pyarrow 26), so
        # join with blanks and tidy the separators instead.
        joined = pc.binary_join_element_wise(*self.parts, ";", null_handling="replace", null_replacement="")
        joined = pc.utf8_trim(pc.replace_substring_regex(joined, ";{2,}", ";"), ";")
        return pc.if_else(pc.equal(joined, ""), std.NULL_STR, joined)


def standardise(raw: pa.Table, ids: pa.Array, config: SourceConfig, batch_id: str, extracted_at: datetime) -> pa.Table:
    """Canonical, standardised columns for rows that passed the row-level checks."""
    n = raw.num_rows
    fields = config.fields
    null_str = pa.nulls(n, pa.string())
    flags = _Flags(n)

    def get(name: str) -> pa.Array | None:
        return _column(raw, fields[name]) if name in fields else None

    first = std.name(get("first_name")) if "first_name" in fields else null_str
    middle = std.name(get("middle_names")) if "middle_names" in fields else null_str
    last = std.name(get("last_name")) if "last_name" in fields else null_str
    if "full_name" in fields:
        f_first, f_middle, f_last = std.split_full_name(get("full_name"), fields["full_name"].order)
        first, middle, last = pc.coalesce(first, f_first), pc.coalesce(middle, f_middle), pc.coalesce(last, f_last)
    if "middle_names" not in fields:
        first, extra = std.first_token(first)
        middle = pc.coalesce(middle, extra)

    extracted = extracted_at.date()
    dob = pa.nulls(n, pa.date32())
    if "date_of_birth" in fields:
        dob, unparseable, implausible = std.dates(get("date_of_birth"), fields["date_of_birth"].formats, extracted)
        flags.add(unparseable, "dob_unparseable")
        flags.add(implausible, "dob_implausible")
    birth_year = pc.cast(pc.year(dob), pa.int32())
    if "birth_year" in fields:
        year, problem = std.birth_year_from(get("birth_year"), fields["birth_year"].from_, extracted)
        flags.add(problem, "birth_year_invalid")
        birth_year = pc.coalesce(birth_year, year)

    sex = null_str
    if "sex" in fields:
        sex, problem = std.sex(get("sex"), fields["sex"].values)
        flags.add(problem, "sex_unrecognised")

    columns: dict[str, pa.Array] = {}
    for name_, rule in std.IDENTIFIER_RULES.items():
        if name_ not in fields:
            columns[name_] = null_str
            continue
        if name_ == "postcode" and not fields[name_].validate:
            columns[name_], problem = std.free_postcode(get(name_))
        elif name_ == "phone" and not fields[name_].validate:
            columns[name_], problem = std.free_phone(get(name_))
        elif not fields[name_].validate:
            columns[name_], problem = std.ascii_upper(get(name_)), pa.array([False] * n)
        else:
            columns[name_], problem = rule(get(name_))
        flags.add(problem, f"{name_}_invalid")
    sector, district = std.postcode_parts(columns["postcode"])

    aliases = null_str
    if "aliases" in fields:
        sep = fields["aliases"].separator or ";"
        split = pc.split_pattern(get("aliases"), sep)
        flat = std.name(pc.list_flatten(split))
        rebuilt = pa.ListArray.from_arrays(split.offsets, flat, mask=pc.is_null(split))
        joined = pc.binary_join(rebuilt, "|")
        aliases = pc.if_else(pc.equal(joined, ""), std.NULL_STR, joined)

    def text(name_: str) -> pa.Array:
        return std.ascii_upper(get(name_)) if name_ in fields else null_str

    source = pa.array([config.name] * n, pa.string())
    out = {
        "source_system": source,
        "batch_id": pa.array([batch_id] * n, pa.string()),
        "source_record_id": ids,
        "unique_id": pc.binary_join_element_wise(source, ids, ":"),
        "extracted_at": pa.array([extracted_at] * n, pa.timestamp("us", tz="UTC")),
        "first_name": first,
        "forename_canonical": std.canonical_forename(first),
        "middle_names": middle,
        "last_name": last,
        "first_name_metaphone": std.metaphone(first),
        "last_name_metaphone": std.metaphone(last),
        "aliases": aliases,
        "date_of_birth": dob,
        "birth_year": birth_year,
        "sex": sex,
        "address": text("address"),
        "town": text("town"),
        **columns,
        "postcode_sector": sector,
        "postcode_district": district,
        "other_id": text("other_id"),
        "quality_flags": flags.joined(),
    }
    return pa.table({c: out[c] for c in CLEAN_PERSON.column_names}, schema=CLEAN_PERSON.arrow_schema)
