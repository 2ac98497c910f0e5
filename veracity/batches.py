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
    problem: str | None  # why the batch as a whole is rejected, if it is
    extract_name: str | None = None
    deletion_files: list[str] = field(default_factory=list)


def landed_batches(lake: Lake) -> list[Batch]:
    return [Batch(s, b) for s in lake.list_dirs("landing") for b in lake.list_dirs("landing", s)]


def processed(lake: Lake, batch: Batch) -> bool:
    return lake.exists("state", "batches", batch.source, f"{batch.batch_id}.json")


def record_processed(lake: Lake, batch: Batch, entry: dict) -> None:
    lake.write_json(entry, "state", "batches", batch.source, f"{batch.batch_id}.json")


def processed_keys(lake: Lake) -> list[str]:
    """'source/batch_id' of every batch in the ledger, from the ledger's file names."""
    return sorted(
        f"{s}/{f.removesuffix('.json')}"
        for s in lake.list_dirs("state", "batches")
        for f in lake.list_files("state", "batches", s)
        if f.endswith(".json")
    )


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
        return CheckedBatch(batch, None, "missing_manifest")
    try:
        manifest = lake.read_json(*parts, MANIFEST)
        files = manifest["files"]
        extracted_at = datetime.fromisoformat(manifest["extracted_at"])
        version = manifest.get("schema_version")
    except (ValueError, KeyError, TypeError) as exc:
        return CheckedBatch(batch, None, f"bad_manifest: {exc}")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        return CheckedBatch(batch, extracted_at, f"unsupported_schema_version: {version}")
    if manifest.get("source") != batch.source:
        return CheckedBatch(batch, extracted_at, f"manifest_source_mismatch: {manifest.get('source')}")
    extracts = [f for f in files if f.get("kind", "extract") == "extract"]
    if len(extracts) != 1:
        return CheckedBatch(batch, extracted_at, "manifest_must_list_one_extract")
    deletions = [f for f in files if f.get("kind") == "deletions"]
    for entry in deletions:
        if not lake.exists(*parts, entry["name"]) or _sha256(lake, *parts, entry["name"])[0] != entry.get("sha256"):
            return CheckedBatch(batch, extracted_at, f"deletions_checksum_mismatch: {entry['name']}")
    name = extracts[0]["name"]
    if not lake.exists(*parts, name):
        return CheckedBatch(batch, extracted_at, f"missing_extract: {name}")
    digest, size = _sha256(lake, *parts, name)
    if not size and extracts[0].get("rows") != 0:
        return CheckedBatch(batch, extracted_at, "empty_extract", name)
    if digest != extracts[0].get("sha256"):
        return CheckedBatch(batch, extracted_at, "checksum_mismatch", name)
    return CheckedBatch(batch, extracted_at, None, name, [d["name"] for d in deletions])


def _sha256(lake: Lake, *parts: str) -> tuple[str, int]:
    """Digest and size of an object, streamed: extracts can be larger than memory."""
    digest, size = hashlib.sha256(), 0
    with lake.fs.open_input_stream(lake.path(*parts)) as stream:
        while block := stream.read(8 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
