"""Read a source extract, in its native format, into rows of raw strings.

Every line either becomes a row (with its line number) or a rejection with a
reason code and the text as received: nothing is dropped on the floor.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field

import pyarrow as pa

from veracity.sources import SourceConfig

LINE = "_line"  # the 1-based line number a row starts on


@dataclass
class RawExtract:
    table: pa.Table  # LINE + one string column per source column
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, raw)


class ExtractError(Exception):
    """The extract as a whole cannot be read with its config (a batch-level error)."""


def _decode(data: bytes, encoding: str) -> str:
    # surrogateescape keeps undecodable bytes visible so the row can be quarantined
    # with its bytes intact, instead of being silently altered.
    text = data.decode(encoding, errors="surrogateescape")
    return text[1:] if text.startswith("\ufeff") else text


def _undecodable(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def _safe(value: str) -> str:
    """Text for the quarantine: undecodable bytes shown as \\xNN escapes."""
    return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


def _table(columns: list[str], rows: list[list[str | None]], lines: list[int]) -> pa.Table:
    arrays = {LINE: pa.array(lines, pa.int64())}
    for i, col in enumerate(columns):
        arrays[col] = pa.array([r[i] for r in rows], pa.string())
    return pa.table(arrays)


def _blank_to_none(v: str) -> str | None:
    v = v.strip()
    return v or None


def read_csv(data: bytes, config: SourceConfig) -> RawExtract:
    text = _decode(data, config.encoding)
    reader = csv.reader(text.splitlines(keepends=True), delimiter=config.delimiter, quotechar=config.quotechar, strict=True)
    rejects: list[tuple[int, str, str]] = []
    try:
        header = next(reader) if config.header else None
    except StopIteration:
        raise ExtractError("the extract is empty: no header line") from None
    except csv.Error as exc:
        raise ExtractError(f"cannot parse the header line: {exc}") from None
    if header is not None:
        header = [h.strip() for h in header]
        missing = sorted(config.referenced_columns - set(header))
        if missing:
            raise ExtractError(
                f"column {missing[0]!r} named in {config.path} is not in the extract's header "
                f"({', '.join(header)}); fix the config or the extract"
            )
    rows: list[list[str | None]] = []
    lines: list[int] = []
    width = len(header) if header else None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rejects.append((start, "unparseable_line", f"csv error: {exc}"))
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line: no record
        raw = config.delimiter.join(row)
        if width is None:
            width = len(row)
        if len(row) != width:
            rejects.append((start, "wrong_column_count", _safe(raw)))
            continue
        if any(_undecodable(v) for v in row):
            rejects.append((start, "undecodable", _safe(raw)))
            continue
        rows.append([_blank_to_none(v) for v in row])
        lines.append(start)
    columns = header or [f"column_{i + 1}" for i in range(width or 0)]
    return RawExtract(_table(columns, rows, lines), rejects)


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
            out[name] = _blank_to_none(str(value))
    return out


def read_jsonl(data: bytes, config: SourceConfig) -> RawExtract:
    text = _decode(data, config.encoding)
    columns = sorted(config.referenced_columns)
    rows: list[list[str | None]] = []
    lines: list[int] = []
    rejects: list[tuple[int, str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if _undecodable(line):
            rejects.append((number, "undecodable", _safe(line)))
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            rejects.append((number, "unparseable_line", _safe(line)[:100_000] + f" ({exc.msg})"))
            continue
        if not isinstance(obj, dict):
            rejects.append((number, "unparseable_line", _safe(line)))
            continue
        flat = _flatten(obj)
        rows.append([flat.get(c) for c in columns])
        lines.append(number)
    return RawExtract(_table(columns, rows, lines), rejects)


def read_fixed_width(data: bytes, config: SourceConfig) -> RawExtract:
    text = _decode(data, config.encoding)
    columns = list(config.widths)
    record_end = max(start + length for start, length in config.widths.values())
    id_end = max(config.widths[c][0] + 1 for c in config.record_id)
    rows: list[list[str | None]] = []
    lines: list[int] = []
    rejects: list[tuple[int, str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if _undecodable(line):
            rejects.append((number, "undecodable", _safe(line)))
            continue
        if len(line) < id_end or len(line) > record_end + 200:
            rejects.append((number, "wrong_record_length", _safe(line)[:100_000]))
            continue
        rows.append([_blank_to_none(line[s : s + n]) for s, n in config.widths.values()])
        lines.append(number)
    return RawExtract(_table(columns, rows, lines), rejects)


READERS = {"csv": read_csv, "jsonl": read_jsonl, "fixed_width": read_fixed_width}


def read_extract(data: bytes, config: SourceConfig) -> RawExtract:
    return READERS[config.format](data, config)
