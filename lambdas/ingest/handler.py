"""Ingest Lambda: checks the batch an S3 "Object Created" event belongs to.

The event is EventBridge's S3 notification. The landing key is
``<prefix>/landing/<source>/<batch_id>/<file>``; the verdict says whether the batch
is complete and sound (manifest present, checksum right) and so ready to run.
"""

from __future__ import annotations

import os
import posixpath

from veracity.batches import Batch, check
from veracity.lake import Lake


def batch_of(key: str) -> tuple[str, Batch] | None:
    """(lake prefix, batch) for a landing key, or None for keys outside landing/."""
    parts = key.split("/")
    if "landing" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("landing")
    if len(parts) - i != 4:  # landing/<source>/<batch_id>/<file>
        return None
    return "/".join(parts[:i]), Batch(parts[i + 1], parts[i + 2])


def handle(event: dict) -> dict:
    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    key = (detail.get("object") or {}).get("key")
    if not bucket or not key:
        return {"status": "ignored", "reason": "not an S3 Object Created event"}
    located = batch_of(key)
    if located is None:
        return {"status": "ignored", "reason": f"{key} is not under landing/<source>/<batch_id>/"}
    prefix, batch = located
    lake = Lake.open(posixpath.join(f"s3://{bucket}", prefix) if prefix else f"s3://{bucket}")
    checked = check(lake, batch)
    if checked.problem:
        return {"status": "waiting" if checked.problem.startswith("missing_") else "rejected",
                "batch": batch.key, "reason": checked.problem}
    return {"status": "ready", "batch": batch.key}


def lambda_handler(event: dict, _context: object) -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "eu-west-2"))
    return handle(event)
