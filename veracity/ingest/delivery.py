"""What happens when one object lands: the ingest service behind the Lambda handler.

For the batch the object belongs to (``landing/<source>/<batch_id>/<file>``):

- its run started already → ``duplicate``: nothing more happens;
- a file it names has not landed yet → ``waiting`` (the last file to land completes it);
- unknown source, bad manifest, checksum or row-count mismatch, empty or oversized
  extract → ``rejected``: its objects are copied to ``rejected/<source>/<batch_id>/``
  (the quarantine bucket on AWS) beside a ``reason.json``, and the landing objects stay;
- sound → ``started``: its run is started and recorded in the ledger. A failure to
  start raises, so the message is retried; the ledger keeps the batch ``ready``.

Whichever of manifest and extract lands last completes the batch, and the run is
started once however often the batch is seen complete (see ``runs``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from veracity import batches
from veracity.batches import Batch
from veracity.ingest.ledger import STARTED, IngestLedger
from veracity.ingest.runs import RunStarter
from veracity.lake import Lake
from veracity.sources import SourceConfig

REJECTED = "rejected"  # the lake zone rejected deliveries are copied to
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")  # source, batch id and file names in landing keys


def reason_code(reason: str) -> str:
    """The code a rejection reason starts with ("checksum_mismatch: ..." -> checksum_mismatch)."""
    return reason.split(":", 1)[0]


@dataclass(frozen=True)
class Delivery:
    """One created object, as the S3 event describes it."""

    bucket: str
    key: str
    etag: str = ""
    size: int | None = None


@dataclass
class Outcome:
    status: str  # ignored | waiting | rejected | started | duplicate
    batch: str | None = None
    reason: str | None = None
    run: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class IngestService:
    def __init__(self, lake: Lake, ledger: IngestLedger, runs: RunStarter, sources: dict[str, SourceConfig]):
        self.lake, self.ledger, self.runs, self.sources = lake, ledger, runs, sources

    def deliver(self, delivery: Delivery) -> Outcome:
        landing = self.lake.path("landing") + "/"
        where = f"{delivery.bucket}/{delivery.key}"
        if not where.startswith(landing) or where.endswith("/"):
            return Outcome("ignored", reason=f"s3://{where} is not an object in the lake's landing zone")
        parts = where[len(landing):].split("/")
        if len(parts) != 3:
            return Outcome("ignored", reason=f"s3://{where} is not at landing/<source>/<batch_id>/<file>")
        batch, name = Batch(parts[0], parts[1]), parts[2]
        entry = self.ledger.get(batch)
        if entry and entry.get("state") in STARTED:
            self.ledger.note_file(batch, name)
            return Outcome("duplicate", batch.key, f"already_started: run {entry.get('run')}", entry.get("run"))

        checked = self._check(batch, parts)
        if checked.incomplete:
            self.ledger.record(batch, "waiting", name, checked.problem, checked.extracted_at)
            return Outcome("waiting", batch.key, checked.problem)
        if checked.problem:
            self._quarantine(batch, checked.problem)
            self.ledger.record(batch, "rejected", name, checked.problem, checked.extracted_at)
            return Outcome("rejected", batch.key, checked.problem)
        if not self.ledger.record(batch, "ready", name, None, checked.extracted_at):
            entry = self.ledger.get(batch) or {}
            return Outcome("duplicate", batch.key, f"already_started: run {entry.get('run')}", entry.get("run"))
        try:
            run = self.runs.start(batch)
        except Exception as exc:
            self.ledger.note_error(batch, f"{type(exc).__name__}: {exc}")
            raise
        self.ledger.mark_started(batch, run)
        return Outcome("started", batch.key, None, run)

    def _check(self, batch: Batch, parts: list[str]) -> batches.CheckedBatch:
        bad = [p for p in parts if not SAFE_NAME.match(p)]
        if bad:
            return batches.CheckedBatch(batch, None, f"bad_name: {bad[0]!r} (letters, digits, '.', '_', '-' only)")
        config = self.sources.get(batch.source)
        if config is None:
            return batches.CheckedBatch(batch, None, f"unknown_source: no source config named {batch.source!r}")
        return batches.check(self.lake, batch, config)

    def _quarantine(self, batch: Batch, reason: str) -> None:
        """Copy the batch's landed objects beside a reason document; landing keeps its own."""
        landed = ("landing", batch.source, batch.batch_id)
        copied, left = [], []
        for name in self.lake.list_files(*landed):
            if self.lake.size(*landed, name) > batches.MAX_EXTRACT_BYTES:
                left.append(name)  # too big to copy in one request: it stays in landing only
                continue
            self.lake.copy((*landed, name), (REJECTED, batch.source, batch.batch_id, name))
            copied.append(name)
        self.lake.write_json(
            {"batch": batch.key, "reason": reason, "reason_code": reason_code(reason), "files": copied,
             "left_in_landing": left, "landing": self.lake.display(*landed), "rejected_at": datetime.now(UTC).isoformat()},
            REJECTED, batch.source, batch.batch_id, "reason.json",
        )
