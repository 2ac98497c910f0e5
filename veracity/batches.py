"""Landing batches: discovery, manifest checks and the ledger of what was processed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from veracity.lake import Lake
from veracity.scrub.readers import ExtractError, count_rows, is_compressed
from veracity.sources import SourceConfig

MANIFEST = "manifest.json"
SUPPORTED_SCHEMA_VERSIONS = (1,)
MAX_MANIFEST_BYTES = 1 << 20
MAX_EXTRACT_BYTES = 5 << 30  # one S3 copy's limit; a bigger extract should be split by its system
INCOMPLETE = "missing_"  # problems that mean "not all here yet", not "wrong"


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

    @property
    def incomplete(self) -> bool:
        """A file the manifest names (or the manifest itself) has not arrived yet."""
        return bool(self.problem and self.problem.startswith(INCOMPLETE))


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


def check(lake: Lake, batch: Batch, config: SourceConfig | None = None) -> CheckedBatch:
    """Read a batch's manifest and check the files it lists against it: present, within
    the size limits, the same sha256 and, when the source's config is given, the same
    number of rows (which takes a pass through the extract)."""
    parts = ("landing", batch.source, batch.batch_id)
    if not lake.exists(*parts, MANIFEST):
        return CheckedBatch(batch, None, "missing_manifest")
    if lake.size(*parts, MANIFEST) > MAX_MANIFEST_BYTES:
        return CheckedBatch(batch, None, f"manifest_too_large: over {MAX_MANIFEST_BYTES:,} bytes")
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
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("name"), str) for f in files):
        return CheckedBatch(batch, extracted_at, "bad_manifest: files must be a list of {name, kind, rows, sha256}")
    extracts = [f for f in files if f.get("kind", "extract") == "extract"]
    if len(extracts) != 1:
        return CheckedBatch(batch, extracted_at, "manifest_must_list_one_extract")
    deletions = [f for f in files if f.get("kind") == "deletions"]
    for entry in deletions:
        if not lake.exists(*parts, entry["name"]):
            return CheckedBatch(batch, extracted_at, f"missing_deletions: {entry['name']}")
        if _sha256(lake, *parts, entry["name"])[0] != entry.get("sha256"):
            return CheckedBatch(batch, extracted_at, f"deletions_checksum_mismatch: {entry['name']}")
    name = extracts[0]["name"]
    if not lake.exists(*parts, name):
        return CheckedBatch(batch, extracted_at, f"missing_extract: {name}")
    if lake.size(*parts, name) > MAX_EXTRACT_BYTES:
        return CheckedBatch(batch, extracted_at, f"extract_too_large: over {MAX_EXTRACT_BYTES:,} bytes", name)
    digest, size = _sha256(lake, *parts, name)
    if not size and extracts[0].get("rows") != 0:
        return CheckedBatch(batch, extracted_at, "empty_extract", name)
    if digest != extracts[0].get("sha256"):
        return CheckedBatch(batch, extracted_at, "checksum_mismatch", name)
    if config is not None and "rows" in extracts[0]:
        try:
            with lake.fs.open_input_stream(lake.path(*parts, name)) as stream:
                rows = count_rows(stream, config, is_compressed(config, name))
        except ExtractError as exc:
            return CheckedBatch(batch, extracted_at, f"unreadable_extract: {exc}", name)
        if rows != extracts[0]["rows"]:
            return CheckedBatch(batch, extracted_at,
                                f"row_count_mismatch: the manifest lists {extracts[0]['rows']} rows, the extract has {rows}", name)
    return CheckedBatch(batch, extracted_at, None, name, [d["name"] for d in deletions])


def _sha256(lake: Lake, *parts: str) -> tuple[str, int]:
    """Digest and size of an object, streamed: extracts can be larger than memory."""
    digest, size = hashlib.sha256(), 0
    with lake.fs.open_input_stream(lake.path(*parts)) as stream:
        while block := stream.read(8 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
