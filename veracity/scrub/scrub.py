"""Scrub one batch: raw extract -> canonical clean rows + quarantined rows with reasons.

Every input row ends in exactly one of the two tables, and the counts reconcile.
The transformation is a function over Arrow tables, so any engine that can hand
it Arrow data (DuckDB locally, Spark's mapInArrow on Glue) runs the same code.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from veracity.schema import CLEAN_PERSON, QUARANTINE
from veracity.scrub import standardise as std
from veracity.scrub.readers import LINE, ExtractError, RawExtract, read_extract
from veracity.sources import FieldSpec, SourceConfig


@dataclass
class ScrubResult:
    source_system: str
    batch_id: str
    rows_in: int
    clean: pa.Table
    quarantine: pa.Table
    batch_error: str | None = None

    def reconciles(self) -> bool:
        return self.rows_in == self.clean.num_rows + self.quarantine.num_rows


def _column(raw: pa.Table, spec: FieldSpec) -> pa.Array:
    if len(spec.columns) == 1:
        return raw.column(spec.columns[0]).combine_chunks()
    parts = [pc.fill_null(raw.column(c), "") for c in spec.columns]
    joined = pc.binary_join_element_wise(*parts, spec.joiner)
    joined = pc.utf8_trim(pc.replace_substring_regex(joined, r"\s+", " "), " " + spec.joiner)
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)


def _record_ids(raw: pa.Table, config: SourceConfig) -> pa.Array:
    parts = [pc.utf8_trim_whitespace(raw.column(c)) for c in config.record_id]
    ids = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "-")
    return pc.if_else(pc.equal(ids, ""), pa.scalar(None, pa.string()), ids).combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids


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


def _raw_json(raw: pa.Table, index: int) -> str:
    row = {c: raw.column(c)[index].as_py() for c in raw.column_names if c != LINE}
    return json.dumps(row, ensure_ascii=False)


def scrub_batch(data: bytes, config: SourceConfig, batch_id: str, extracted_at: datetime) -> ScrubResult:
    try:
        extract = read_extract(data, config)
    except ExtractError as exc:
        message = f"{config.name}/{batch_id}: {exc}"
        q = quarantine_rows(config.name, batch_id, [(None, 0, "batch_rejected", message)])
        return ScrubResult(config.name, batch_id, 1, CLEAN_PERSON.empty(), q, batch_error=message)
    return scrub_extract(extract, config, batch_id, extracted_at)


def scrub_extract(extract: RawExtract, config: SourceConfig, batch_id: str, extracted_at: datetime) -> ScrubResult:
    raw = extract.table
    rows_in = raw.num_rows + len(extract.rejects)
    rejected = [(None, line, reason, text) for line, reason, text in extract.rejects]

    ids = _record_ids(raw, config)
    counts = Counter(ids.to_pylist())
    keep: list[bool] = []
    lines = raw.column(LINE).to_pylist()
    for i, rid in enumerate(ids.to_pylist()):
        if rid is None:
            rejected.append((None, lines[i], "missing_record_id", _raw_json(raw, i)))
            keep.append(False)
        elif counts[rid] > 1:
            rejected.append((rid, lines[i], "duplicate_record_id", _raw_json(raw, i)))
            keep.append(False)
        else:
            keep.append(True)
    mask = pa.array(keep, pa.bool_())
    good = raw.filter(mask)
    clean = standardise(good, pc.filter(ids, mask), config, batch_id, extracted_at)
    rejected.sort(key=lambda r: r[1])
    quarantine = quarantine_rows(config.name, batch_id, rejected)
    return ScrubResult(config.name, batch_id, rows_in, clean, quarantine)


def standardise(raw: pa.Table, ids: pa.Array, config: SourceConfig, batch_id: str, extracted_at: datetime) -> pa.Table:
    """Canonical, standardised columns for rows that passed the row-level checks."""
    n = raw.num_rows
    fields = config.fields
    null_str = pa.nulls(n, pa.string())
    flags: list[list[str]] = [[] for _ in range(n)]

    def flag(problem: pa.Array, code: str) -> None:
        for i, bad in enumerate(problem.to_pylist()):
            if bad:
                flags[i].append(code)

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
        flag(unparseable, "dob_unparseable")
        flag(implausible, "dob_implausible")
    birth_year = pc.cast(pc.year(dob), pa.int32())
    if "birth_year" in fields:
        year, problem = std.birth_year_from(get("birth_year"), fields["birth_year"].from_, extracted)
        flag(problem, "birth_year_invalid")
        birth_year = pc.coalesce(birth_year, year)

    sex = null_str
    if "sex" in fields:
        sex, problem = std.sex(get("sex"), fields["sex"].values)
        flag(problem, "sex_unrecognised")

    columns: dict[str, pa.Array] = {}
    for name_, rule in std.IDENTIFIER_RULES.items():
        if name_ not in fields:
            columns[name_] = null_str
            continue
        if name_ == "postcode" and not fields[name_].validate:
            columns[name_], problem = std.free_postcode(get(name_))
        elif not fields[name_].validate:
            columns[name_], problem = std.ascii_upper(get(name_)), pa.array([False] * n)
        else:
            columns[name_], problem = rule(get(name_))
        flag(problem, f"{name_}_invalid")

    aliases = null_str
    if "aliases" in fields:
        sep = fields["aliases"].separator or ";"
        split = pc.split_pattern(get("aliases"), sep)
        flat = std.name(pc.list_flatten(split))
        rebuilt = pa.ListArray.from_arrays(split.offsets, flat)
        aliases = pa.array(["|".join(a for a in v if a) or None if v else None for v in rebuilt.to_pylist()], pa.string())

    def text(name_: str) -> pa.Array:
        return std.ascii_upper(get(name_)) if name_ in fields else null_str

    out = {
        "source_system": pa.array([config.name] * n, pa.string()),
        "batch_id": pa.array([batch_id] * n, pa.string()),
        "source_record_id": ids,
        "unique_id": pc.binary_join_element_wise(pa.array([config.name] * n, pa.string()), ids, ":"),
        "extracted_at": pa.array([extracted_at] * n, pa.timestamp("us", tz="UTC")),
        "first_name": first,
        "middle_names": middle,
        "last_name": last,
        "aliases": aliases,
        "date_of_birth": dob,
        "birth_year": birth_year,
        "sex": sex,
        "address": text("address"),
        "town": text("town"),
        **columns,
        "other_id": text("other_id"),
        "quality_flags": pa.array([";".join(f) or None for f in flags], pa.string()),
    }
    return pa.table({c: out[c] for c in CLEAN_PERSON.column_names}, schema=CLEAN_PERSON.arrow_schema)
