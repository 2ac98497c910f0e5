"""Landing batches: discovery, manifest checks and the ledger of what was processed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from veracity.lake import Lake

MANIFEST = "manifest.json"
SUPPORTED_SCHEMA_VERSIONS = (1,)


@dataclass(frozen=True)
class Batch:
    source: str
    batch_id: str

    @property
    def key(self) -> str:
        return f"{self.source}/{self.batch_id}"


@dataclass
class CheckedBatch:
    batch: Batch
    extracted_at: datetime | None
    data: bytes | None
    problem: str | None  # why the batch as a whole is rejected, if it is
    deletion_files: list[str] = field(default_factory=list)


def landed_batches(lake: Lake) -> list[Batch]:
    return [Batch(s, b) for s in lake.list_dirs("landing") for b in lake.list_dirs("landing", s)]


def processed(lake: Lake, batch: Batch) -> bool:
    return lake.exists("state", "batches", batch.source, f"{batch.batch_id}.json")


def record_processed(lake: Lake, batch: Batch, entry: dict) -> None:
    lake.write_json(entry, "state", "batches", batch.source, f"{batch.batch_id}.json")


def ledger(lake: Lake) -> list[dict]:
    return [
        lake.read_json("state", "batches", s, f)
        for s in lake.list_dirs("state", "batches")
        for f in lake.list_files("state", "batches", s)
        if f.endswith(".json")
    ]


def check(lake: Lake, batch: Batch) -> CheckedBatch:
    """Read a batch's manifest and extract, and check one against the other."""
    parts = ("landing", batch.source, batch.batch_id)
    if not lake.exists(*parts, MANIFEST):
        return CheckedBatch(batch, None, None, "missing_manifest")
    try:
        manifest = lake.read_json(*parts, MANIFEST)
        files = manifest["files"]
        extracted_at = datetime.fromisoformat(manifest["extracted_at"])
        version = manifest.get("schema_version")
    except (ValueError, KeyError, TypeError) as exc:
        return CheckedBatch(batch, None, None, f"bad_manifest: {exc}")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        return CheckedBatch(batch, extracted_at, None, f"unsupported_schema_version: {version}")
    if manifest.get("source") != batch.source:
        return CheckedBatch(batch, extracted_at, None, f"manifest_source_mismatch: {manifest.get('source')}")
    extracts = [f for f in files if f.get("kind", "extract") == "extract"]
    if len(extracts) != 1:
        return CheckedBatch(batch, extracted_at, None, "manifest_must_list_one_extract")
    deletions = [f for f in files if f.get("kind") == "deletions"]
    for entry in deletions:
        if not lake.exists(*parts, entry["name"]) or hashlib.sha256(lake.read_bytes(*parts, entry["name"])).hexdigest() != entry.get("sha256"):
            return CheckedBatch(batch, extracted_at, None, f"deletions_checksum_mismatch: {entry['name']}")
    name = extracts[0]["name"]
    if not lake.exists(*parts, name):
        return CheckedBatch(batch, extracted_at, None, f"missing_extract: {name}")
    data = lake.read_bytes(*parts, name)
    if not data and extracts[0].get("rows") != 0:
        return CheckedBatch(batch, extracted_at, data, "empty_extract")
    if hashlib.sha256(data).hexdigest() != extracts[0].get("sha256"):
        return CheckedBatch(batch, extracted_at, data, "checksum_mismatch")
    return CheckedBatch(batch, extracted_at, data, None, [d["name"] for d in deletions])
