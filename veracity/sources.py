"""Source configs: how one system's extract maps onto the canonical person record.

A new source system is a new ``sources/<name>.yaml``, not new code. Configs are
validated on load; every error names the file, the key and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from veracity.errors import ConfigError
from veracity.schema import CANONICAL_FIELDS

FORMATS = ("csv", "jsonl", "fixed_width")
TOP_LEVEL_KEYS = {
    "source", "description", "format", "delimiter", "quotechar", "encoding", "header",
    "widths", "record_id", "fields", "extra_columns", "compression", "trust", "events", "sensitivity",
}
# Who may see a source's records outside the lake's SQL (the search API): a
# "restricted" source (intelligence) is seen only by those cleared for restricted
# columns, as Lake Formation does for the columns of veracity.schema.
SOURCE_SENSITIVITY = ("general", "restricted")
EVENT_KEYS = {"kind", "ref", "date", "category", "area", "role"}
# How far a source is trusted for golden record values, 0-100 (see survivorship).
DEFAULT_TRUST = 50
EXTRA_COLUMNS = ("ignore", "reject")
COMPRESSION = ("none", "gzip", "auto")
FIELD_KEYS = {"column", "columns", "format", "order", "separator", "validate", "values", "from", "joiner"}
NAME_ORDERS = ("surname_first", "forename_first")
BIRTH_YEAR_FROM = ("year", "age")
DEFAULT_SOURCES_DIR = Path(__file__).resolve().parent.parent / "sources"


@dataclass(frozen=True)
class FieldSpec:
    """How to get one canonical field from a source's native columns."""

    columns: tuple[str, ...]
    formats: tuple[str, ...] = ()
    order: str = "forename_first"
    separator: str | None = None
    validate: bool = True
    values: dict[str, str] = field(default_factory=dict)
    from_: str = "year"
    joiner: str = " "


@dataclass(frozen=True)
class EventSpec:
    """Each record of the source is a person's part in an event (a crime, an incident,
    a search): where its reference, date, category, area and the person's role are."""

    kind: str
    date_column: str
    date_formats: tuple[str, ...]
    ref: str | None = None  # none: each record is an event of its own
    category: str | None = None
    area: str | None = None
    role: str | None = None

    @property
    def columns(self) -> set[str]:
        return {c for c in (self.date_column, self.ref, self.category, self.area, self.role) if c}


@dataclass(frozen=True)
class SourceConfig:
    name: str
    path: str
    format: str
    record_id: tuple[str, ...]
    fields: dict[str, FieldSpec]
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"
    header: bool = True
    widths: dict[str, tuple[int, int]] = field(default_factory=dict)
    description: str = ""
    extra_columns: str = "ignore"  # columns in the extract the config does not map
    compression: str = "auto"  # auto: gzip when the extract's name ends in .gz
    trust: int = DEFAULT_TRUST  # higher wins where survivorship ranks sources
    sensitivity: str = "general"  # one of SOURCE_SENSITIVITY
    events: EventSpec | None = None

    @property
    def referenced_columns(self) -> set[str]:
        cols = set(self.record_id)
        for spec in self.fields.values():
            cols.update(spec.columns)
        return cols | (self.events.columns if self.events else set())


def _fail(path: str, key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {problem}; {fix}")


def _field(path: str, name: str, raw) -> FieldSpec:
    key = f"fields.{name}"
    if name not in CANONICAL_FIELDS:
        raise _fail(path, key, "not a canonical field", f"use one of: {', '.join(CANONICAL_FIELDS)}")
    if isinstance(raw, str):
        raw = {"column": raw}
    if not isinstance(raw, dict):
        raise _fail(path, key, f"expected a column name or a mapping, got {type(raw).__name__}",
                    "write e.g. 'first_name: FORENAME' or 'date_of_birth: {column: DOB, format: \"%d/%m/%Y\"}'")
    unknown = set(raw) - FIELD_KEYS
    if unknown:
        raise _fail(path, f"{key}.{sorted(unknown)[0]}", "unknown key", f"allowed keys: {', '.join(sorted(FIELD_KEYS))}")
    if ("column" in raw) == ("columns" in raw):
        raise _fail(path, key, "needs exactly one of 'column' or 'columns'", "name the source column(s) to read")
    columns = (raw["column"],) if "column" in raw else tuple(raw["columns"] or ())
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise _fail(path, key, "column names must be non-empty strings", "list the source column names")
    formats = raw.get("format", ())
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    for fmt in formats:
        if not isinstance(fmt, str) or "%" not in fmt:
            raise _fail(path, f"{key}.format", f"{fmt!r} is not a strptime format", "write e.g. \"%d/%m/%Y\"")
    if name == "date_of_birth" and not formats:
        raise _fail(path, f"{key}.format", "missing", "give the date format(s), e.g. format: \"%d/%m/%Y\"")
    order = raw.get("order", "forename_first")
    if order not in NAME_ORDERS:
        raise _fail(path, f"{key}.order", f"{order!r} is not a name order", f"use one of: {', '.join(NAME_ORDERS)}")
    from_ = raw.get("from", "year")
    if from_ not in BIRTH_YEAR_FROM:
        raise _fail(path, f"{key}.from", f"{from_!r} is not supported", f"use one of: {', '.join(BIRTH_YEAR_FROM)}")
    values = raw.get("values", {}) or {}
    if not isinstance(values, dict):
        raise _fail(path, f"{key}.values", "expected a mapping", "map raw values to canonical ones, e.g. {Male: M}")
    validate = raw.get("validate", True)
    if not isinstance(validate, bool):
        raise _fail(path, f"{key}.validate", f"{validate!r} is not true or false", "write validate: false")
    return FieldSpec(
        columns=columns, formats=formats, order=order, separator=raw.get("separator"),
        validate=validate, values={str(k): str(v) for k, v in values.items()}, from_=from_,
        joiner=str(raw.get("joiner", " ")),
    )


def _events(path: str, raw) -> EventSpec:
    if not isinstance(raw, dict):
        raise _fail(path, "events", "expected a mapping", "write kind, date and the columns of ref, category, area, role")
    unknown = set(raw) - EVENT_KEYS
    if unknown:
        raise _fail(path, f"events.{sorted(unknown)[0]}", "unknown key", f"allowed keys: {', '.join(sorted(EVENT_KEYS))}")
    kind = raw.get("kind")
    if not isinstance(kind, str) or not kind.replace("_", "").isalnum() or not kind.islower():
        raise _fail(path, "events.kind", f"{kind!r} is not a valid kind", "name the kind of event, e.g. kind: crime")
    date_ = raw.get("date")
    if not isinstance(date_, dict) or not isinstance(date_.get("column"), str) or not date_["column"]:
        raise _fail(path, "events.date", "needs a column and a format", 'write e.g. date: {column: OFFENCE_DATE, format: "%Y-%m-%d"}')
    formats = date_.get("format", ())
    formats = (formats,) if isinstance(formats, str) else tuple(formats or ())
    if not formats or not all(isinstance(f, str) and "%" in f for f in formats):
        raise _fail(path, "events.date.format", f"{date_.get('format')!r} is not a strptime format", 'write e.g. format: "%d/%m/%Y"')
    columns = {}
    for key in ("ref", "category", "area", "role"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise _fail(path, f"events.{key}", f"{value!r} is not a column name", "name the source column")
        columns[key] = value
    return EventSpec(kind=kind, date_column=date_["column"], date_formats=formats, **columns)


def parse_config(raw, path: str) -> SourceConfig:
    if not isinstance(raw, dict):
        raise _fail(path, "(top level)", "expected a mapping", "see README.md, 'Adding a source system'")
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        raise _fail(path, sorted(unknown)[0], "unknown key", f"allowed keys: {', '.join(sorted(TOP_LEVEL_KEYS))}")
    for required in ("source", "format", "record_id", "fields"):
        if required not in raw:
            raise _fail(path, required, "missing", "every source config needs source, format, record_id and fields")
    name = raw["source"]
    if not isinstance(name, str) or not name.replace("_", "").isalnum() or not name.islower():
        raise _fail(path, "source", f"{name!r} is not a valid name", "use lower_snake_case, e.g. custody")
    fmt = raw["format"]
    if fmt not in FORMATS:
        raise _fail(path, "format", f"{fmt!r} is not supported", f"use one of: {', '.join(FORMATS)}")
    encoding = raw.get("encoding", "utf-8")
    try:
        "".encode(encoding)
    except (LookupError, TypeError):
        raise _fail(path, "encoding", f"{encoding!r} is not a known codec", "use a Python codec name such as utf-8 or latin-1") from None
    delimiter = raw.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise _fail(path, "delimiter", f"{delimiter!r} is not a single character", "write e.g. delimiter: \"|\"")
    widths: dict[str, tuple[int, int]] = {}
    if fmt == "fixed_width":
        raw_widths = raw.get("widths")
        if not isinstance(raw_widths, dict) or not raw_widths:
            raise _fail(path, "widths", "missing for a fixed_width source", "map each column to [start, length], start at 0")
        for col, spec in raw_widths.items():
            if not (isinstance(spec, list | tuple) and len(spec) == 2 and all(isinstance(n, int) and n >= 0 for n in spec) and spec[1] > 0):
                raise _fail(path, f"widths.{col}", f"{spec!r} is not [start, length]", "write e.g. SURNAME: [12, 25]")
            widths[str(col)] = (spec[0], spec[1])
    extra_columns = raw.get("extra_columns", "ignore")
    if extra_columns not in EXTRA_COLUMNS:
        raise _fail(path, "extra_columns", f"{extra_columns!r} is not supported", f"use one of: {', '.join(EXTRA_COLUMNS)}")
    compression = raw.get("compression", "auto")
    if compression not in COMPRESSION:
        raise _fail(path, "compression", f"{compression!r} is not supported", f"use one of: {', '.join(COMPRESSION)}")
    trust = raw.get("trust", DEFAULT_TRUST)
    if not isinstance(trust, int) or isinstance(trust, bool) or not 0 <= trust <= 100:
        raise _fail(path, "trust", f"{trust!r} is not a whole number from 0 to 100", "write e.g. trust: 80 (higher is more trusted)")
    sensitivity = raw.get("sensitivity", "general")
    if sensitivity not in SOURCE_SENSITIVITY:
        raise _fail(path, "sensitivity", f"{sensitivity!r} is not supported", f"use one of: {', '.join(SOURCE_SENSITIVITY)}")
    record_id = raw["record_id"]
    record_id = (record_id,) if isinstance(record_id, str) else tuple(record_id or ())
    if not record_id:
        raise _fail(path, "record_id", "empty", "name the column (or list of columns) that keys a record")
    fields_raw = raw["fields"]
    if not isinstance(fields_raw, dict) or not fields_raw:
        raise _fail(path, "fields", "expected a non-empty mapping", "map canonical fields to source columns")
    fields = {name_: _field(path, name_, spec) for name_, spec in fields_raw.items()}
    config = SourceConfig(
        name=name, path=path, format=fmt, record_id=record_id, fields=fields, delimiter=delimiter,
        quotechar=str(raw.get("quotechar", '"')), encoding=encoding, header=bool(raw.get("header", True)),
        widths=widths, description=str(raw.get("description", "")), extra_columns=extra_columns,
        compression=compression, trust=trust, sensitivity=sensitivity, events=_events(path, raw["events"]) if "events" in raw else None,
    )
    if widths:
        missing = sorted(config.referenced_columns - set(widths))
        if missing:
            raise _fail(path, "widths", f"no width for column {missing[0]!r}", "add it to widths as [start, length]")
    return config


def load_config(path: str | Path) -> SourceConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    config = parse_config(raw, str(path))
    if config.name != path.stem:
        raise _fail(str(path), "source", f"{config.name!r} does not match the file name", f"name the file {config.name}.yaml")
    return config


def load_sources(directory: str | Path | None = None) -> dict[str, SourceConfig]:
    directory = Path(directory) if directory else DEFAULT_SOURCES_DIR
    if not directory.is_dir():
        raise ConfigError(f"sources directory {directory} does not exist; pass --sources DIR")
    configs = [load_config(p) for p in sorted(directory.glob("*.yaml"))]
    if not configs:
        raise ConfigError(f"no source configs (*.yaml) in {directory}")
    return {c.name: c for c in configs}
