"""Read a source extract, in its native format, as chunks of rows of raw strings.

Extracts are streamed: memory holds one chunk, whatever the extract's size. Every
record either becomes a row (with the line it starts on) or a rejection with a
reason code and the text as received: nothing is dropped on the floor.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from veracity.sources import SourceConfig

LINE = "_line"  # the 1-based line number a row starts on
CHUNK_ROWS = 50_000
MAX_FIELD_BYTES = 1 << 16  # a longer field is not a person's detail: the row is quarantined
MAX_RAW_CHARS = 100_000  # how much of an oversized row the quarantine keeps

csv.field_size_limit(1 << 30)  # oversized fields are judged below, not by the csv module


@dataclass
class RawExtract:
    table: pa.Table  # LINE + one string column per source column
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, raw)


class ExtractError(Exception):
    """The extract as a whole cannot be read with its config (a batch-level error)."""


_SURROGATE = re.compile("[\udc80-\udcff]")


def _undecodable(value: str) -> bool:
    """True when the text holds bytes the codec could not decode (kept as surrogates)."""
    return _SURROGATE.search(value) is not None


def safe_text(value: str) -> str:
    """Text for the quarantine: undecodable bytes shown as \\xNN escapes, size capped."""
    text = value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")
    return text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + f"... ({len(text)} characters)"


def open_text(stream: BinaryIO, encoding: str, compressed: bool = False) -> io.TextIOWrapper:
    """Decode a byte stream. Undecodable bytes survive as surrogates (surrogateescape), so
    the row holding them can be quarantined with its bytes intact rather than altered."""
    if compressed:
        stream = gzip.GzipFile(fileobj=stream)
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    return io.TextIOWrapper(stream, encoding=codec, errors="surrogateescape", newline="")


def _chunks(columns: list[str], rows: Iterable[tuple[int, list[str | None] | None, str | None, str | None]], chunk_rows: int) -> Iterator[RawExtract]:
    """Group (line, values, reject_reason, raw) tuples into RawExtract chunks."""
    values: list[list[str | None]] = []
    lines: list[int] = []
    rejects: list[tuple[int, str, str]] = []
    for line, row, reason, raw in rows:
        if reason:
            rejects.append((line, reason, safe_text(raw or "")))
        else:
            values.append(row)
            lines.append(line)
        if len(values) + len(rejects) >= chunk_rows:
            yield RawExtract(_table(columns, values, lines), rejects)
            values, lines, rejects = [], [], []
    if values or rejects:
        yield RawExtract(_table(columns, values, lines), rejects)


def _table(columns: list[str], rows: list[list[str | None]], lines: list[int]) -> pa.Table:
    """Rows -> Arrow, each value trimmed and blanks made null (vectorised, not per value)."""
    arrays = {LINE: pa.array(lines, pa.int64())}
    for i, col in enumerate(columns):
        values = pc.utf8_trim_whitespace(pa.array([r[i] for r in rows], pa.string()))
        arrays[col] = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    return pa.table(arrays)


def _oversized(values: Iterable[str], total: int) -> bool:
    return total > MAX_FIELD_BYTES and any(len(v) > MAX_FIELD_BYTES for v in values)


def _csv_rows(text: io.TextIOWrapper, config: SourceConfig) -> tuple[list[str], Iterator]:
    reader = csv.reader(text, delimiter=config.delimiter, quotechar=config.quotechar, strict=True)
    try:
        header = next(reader) if config.header else None
    except StopIteration:
        raise ExtractError("the extract is empty: no header line") from None
    except csv.Error as exc:
        raise ExtractError(f"cannot parse the header line: {exc}") from None
    if header is not None:
        header = [h.strip() for h in header]
        _check_columns(config, header)
        if config.extra_columns == "reject":
            extra = sorted(set(header) - config.referenced_columns)
            if extra:
                raise ExtractError(
                    f"column {extra[0]!r} is in the extract but not in {config.path}; map it, or set extra_columns: ignore"
                )

    def rows():
        width = len(header) if header else None  # headerless: the first row sets the width
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, None, "unparseable_line", f"csv error: {exc}"
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line holds no record
            raw = config.delimiter.join(row)
            width = width or len(row)
            if len(row) != width:
                yield start, None, "wrong_column_count", raw
            elif _undecodable(raw):
                yield start, None, "undecodable", raw
            elif _oversized(row, len(raw)):
                yield start, None, "oversized_field", raw
            else:
                yield start, row, None, None

    return header or [], rows()


def _check_columns(config: SourceConfig, available: list[str]) -> None:
    for key, spec in [("record_id", None), *config.fields.items()]:
        columns = config.record_id if spec is None else spec.columns
        for column in columns:
            if column not in available:
                where = "record_id" if spec is None else f"fields.{key}"
                raise ExtractError(
                    f"{config.path}: {where}: column {column!r} is not in the extract "
                    f"(it has: {', '.join(available)}); fix the config or the extract"
                )


def _flatten(obj: dict, prefix: str = "") -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif isinstance(value, list):
            out[name] = ";".join(str(v) for v in value if v is not None) or None
        elif value is None:
            out[name] = None
        else:
            out[name] = str(value)  # trimmed, and blanks nulled, with the whole chunk in _table
    return out


def _jsonl_rows(text: io.TextIOWrapper, config: SourceConfig) -> tuple[list[str], Iterator]:
    columns = sorted(config.referenced_columns)

    def rows():
        for number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            if _undecodable(line):
                yield number, None, "undecodable", line
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, None, "unparseable_line", f"{line.rstrip()} ({exc.msg})"
                continue
            if not isinstance(obj, dict):
                yield number, None, "unparseable_line", line
                continue
            flat = _flatten(obj)
            values = [flat.get(c) for c in columns]
            if _oversized((v for v in values if v), len(line)):
                yield number, None, "oversized_field", line
            else:
                yield number, values, None, None

    return columns, rows()


def _fixed_width_rows(text: io.TextIOWrapper, config: SourceConfig) -> tuple[list[str], Iterator]:
    columns = list(config.widths)
    slices = list(config.widths.values())
    record_end = max(start + length for start, length in slices)
    id_end = max(config.widths[c][0] + 1 for c in config.record_id)

    def rows():
        for number, line in enumerate(text, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if _undecodable(line):
                yield number, None, "undecodable", line
            elif len(line) < id_end or len(line) > record_end + 200:
                yield number, None, "wrong_record_length", line
            else:
                yield number, [line[s : s + n] for s, n in slices], None, None

    return columns, rows()


_ROWS = {"csv": _csv_rows, "jsonl": _jsonl_rows, "fixed_width": _fixed_width_rows}


def iter_extract(stream: BinaryIO, config: SourceConfig, compressed: bool = False, chunk_rows: int = CHUNK_ROWS) -> Iterator[RawExtract]:
    """Chunks of raw rows. Raises ExtractError when the extract as a whole is unreadable
    (no header, a mapped column missing, a truncated or corrupt compressed file)."""
    text = open_text(stream, config.encoding, compressed)
    try:
        columns, rows = _ROWS[config.format](text, config)
        yield from _chunks(columns, rows, chunk_rows)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ExtractError(f"the compressed extract is truncated or corrupt ({exc})") from None


def is_compressed(config: SourceConfig, file_name: str) -> bool:
    return config.compression == "gzip" or (config.compression == "auto" and file_name.endswith(".gz"))


def count_rows(stream: BinaryIO, config: SourceConfig, compressed: bool = False) -> int:
    """Records in an extract as the scrub counts them: rows read plus rows rejected."""
    return sum(chunk.table.num_rows + len(chunk.rejects) for chunk in iter_extract(stream, config, compressed))


def read_extract(data: bytes, config: SourceConfig, compressed: bool = False) -> RawExtract:
    """The whole of a (small) extract as one chunk."""
    chunks = list(iter_extract(io.BytesIO(data), config, compressed, chunk_rows=1 << 62))
    if not chunks:
        columns = _ROWS[config.format](open_text(io.BytesIO(data), config.encoding, compressed), config)[0]
        return RawExtract(_table(columns, [], []), [])
    return chunks[0]
