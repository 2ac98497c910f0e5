"""Serialise rendered rows in a system's native format, and describe them in a manifest."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime

from veracity.synthetic.systems import System

MANIFEST_SCHEMA_VERSION = 1


def serialise(system: System, rows: list[dict]) -> bytes:
    if system.format == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=system.delimiter, lineterminator="\n")
        writer.writerow(list(system.columns))
        writer.writerows([row[c] for c in system.columns] for row in rows)
        text = buf.getvalue()
    elif system.format == "jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    elif system.format == "fixed_width":
        text = "".join(
            "".join(str(row[c])[:w].ljust(w) for c, w in system.widths.items()) + "\n" for row in rows
        )
    else:
        raise ValueError(f"unknown format {system.format!r}")
    return text.encode(system.encoding, errors="replace")


def manifest(system: System, batch_id: str, extracted_at: datetime, name: str, data: bytes, rows: int) -> dict:
    return {
        "source": system.name,
        "batch_id": batch_id,
        "extracted_at": extracted_at.isoformat(),
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "files": [
            {"name": name, "rows": rows, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        ],
    }
