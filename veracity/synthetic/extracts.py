"""Serialise rendered rows in a system's native format, and describe them in a manifest."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from veracity.synthetic.systems import System

MANIFEST_SCHEMA_VERSION = 1


def header(system: System) -> bytes:
    """What starts the extract before any row: a header line for CSV, nothing otherwise."""
    if system.format != "csv":
        return b""
    buf = io.StringIO()
    csv.writer(buf, delimiter=system.delimiter, lineterminator="\n").writerow(list(system.columns))
    return buf.getvalue().encode(system.encoding, errors="replace")


def serialise_rows(system: System, rows: list[dict]) -> bytes:
    if system.format == "csv":
        buf = io.StringIO()
        csv.writer(buf, delimiter=system.delimiter, lineterminator="\n").writerows(
            [row[c] for c in system.columns] for row in rows
        )
        text = buf.getvalue()
    elif system.format == "jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    elif system.format == "fixed_width":
        widths = system.widths.items()
        text = "".join("".join(str(row[c])[:w].ljust(w) for c, w in widths) + "\n" for row in rows)
    else:
        raise ValueError(f"unknown format {system.format!r}")
    return text.encode(system.encoding, errors="replace")


def manifest(source: str, batch_id: str, extracted_at: datetime, files: list[dict]) -> dict:
    """files: [{"name", "kind": "extract" | "deletions", "rows", "bytes", "sha256"}]."""
    return {
        "source": source,
        "batch_id": batch_id,
        "extracted_at": extracted_at.isoformat(),
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "files": files,
    }
