"""Follow-on batches for an existing synthetic population: the every-few-hours reload.

A delta holds new people, new records for people already known, records delivered
again under their existing source id with changed details, and a few deletions
(retention reviews, erasure requests), each source in its own native format.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from dataclasses import dataclass, field
from datetime import timedelta

import pyarrow as pa

from veracity.errors import VeracityError
from veracity.lake import Lake
from veracity.synthetic.errors import ErrorModel, random_day
from veracity.synthetic.extracts import header, manifest, serialise_rows
from veracity.synthetic.generate import (
    EXTRACTED_AT,
    NETWORK_SCHEMA,
    TRUTH_SCHEMA,
    _people_table,
    attach_event,
    block_records,
    pick_system,
    record_id,
)
from veracity.synthetic.population import BLOCK_SIZE
from veracity.synthetic.systems import SYSTEMS, SYSTEMS_BY_NAME, System

DELTA_INTERVAL = timedelta(hours=4)
NEW_PEOPLE_SHARE = 0.005  # of the population, per delta
KNOWN_PEOPLE_SHARE = 0.01  # who leave a new record
UPDATE_SHARE = 0.002  # of the records in the sampled blocks
DELETE_SHARE = 0.0005
SAMPLED_BLOCKS = 20  # known people, updates and deletions come from this many blocks
DELTA_BLOCK_BASE = 1_000_000  # newcomers' block numbers: far above any initial block


@dataclass
class DeltaSummary:
    batch_id: str
    new_people: int
    records_per_system: dict[str, int]
    updates: int
    deletions: int
    rows: dict[str, list[dict]] = field(default_factory=dict, repr=False)

    @property
    def records(self) -> int:
        return sum(self.records_per_system.values())


def _population(lake: Lake) -> dict:
    if not lake.exists("truth", "population.json"):
        raise VeracityError(f"no synthetic population in {lake.display()}: run 'veracity generate' without --delta first")
    return lake.read_json("truth", "population.json")


def _earlier_changes(lake: Lake, batches: list[str]) -> set[tuple[str, str]]:
    """Records updated or deleted by earlier deltas: a delta leaves them alone."""
    changed: set[tuple[str, str]] = set()
    for batch in batches[1:]:
        t = lake.read_table("truth", "records", f"{batch}.parquet")
        for r in t.filter(pa.compute.not_equal(t.column("op"), "insert")).to_pylist():
            changed.add((r["source_system"], r["source_record_id"]))
    return changed


def generate_delta(lake: Lake, batch: int, load: float = 1.0) -> DeltaSummary:
    """Follow-on batch ``batch`` (1, 2, ...); ``load`` scales every share of change (1: the usual four-hourly load)."""
    population = _population(lake)
    seed, people = population["seed"], population["people"]
    batches: list[str] = population["batches"]
    extracted_at = EXTRACTED_AT + batch * DELTA_INTERVAL
    batch_id = extracted_at.strftime("%Y%m%dT%H%M%SZ")
    if batch < 1:
        raise VeracityError("--batch must be 1 or more: batch 0 is the initial delivery")
    if batch_id in batches:
        raise VeracityError(f"delta batch {batch} ({batch_id}) was already generated in {lake.display()}")
    rng = random.Random(f"{seed}:delta:{batch}")
    window = (extracted_at.date() - timedelta(days=1), extracted_at.date())
    rows: dict[str, list[dict]] = {s.name: [] for s in SYSTEMS}
    deletions: dict[str, list[str]] = {s.name: [] for s in SYSTEMS}
    truth: list[dict] = []

    def emit(system: System, rid: str, person_id: str, record, errors: list[str], op: str) -> None:
        rows[system.name].append({c: render(record, rid, extracted_at.date()) for c, render in system.columns.items()})
        truth.append({"source_system": system.name, "source_record_id": rid, "person_id": person_id,
                      "record_date": record.record_date, "errors": ";".join(errors) or None, "fault": None, "op": op})

    # Newcomers: a small block of new people with one to three records each.
    new_count = max(1, round(people * NEW_PEOPLE_SHARE * load))
    newcomers, written, _ = block_records(seed, DELTA_BLOCK_BASE + batch, min(new_count, BLOCK_SIZE), window=window, max_records=3)
    for system in SYSTEMS:
        rows[system.name] += written.rows[system.name]
    truth += written.truth_table().to_pylist()
    new_people = _people_table(newcomers)

    # Known people: new records, and changes to records already delivered.
    all_blocks = (people + BLOCK_SIZE - 1) // BLOCK_SIZE
    blocks = sorted(rng.sample(range(all_blocks), min(SAMPLED_BLOCKS, all_blocks)))
    sampled_people = sum(min(BLOCK_SIZE, people - b * BLOCK_SIZE) for b in blocks)
    scale = people / sampled_people  # the sampled blocks carry the whole population's share of change
    changed = _earlier_changes(lake, batches)
    models = {s.name: ErrorModel(s.quality, s.ocr) for s in SYSTEMS}
    updates = 0
    for block in blocks:
        size = min(BLOCK_SIZE, people - block * BLOCK_SIZE)
        block_people, delivered_records, _ = block_records(seed, block, size)
        known = {p.person_id: p for p in block_people}
        for j, person in enumerate(block_people):
            if rng.random() < KNOWN_PEOPLE_SHARE * scale * load:
                system = pick_system(rng)
                record, errors = models[system.name].draft(rng, person, random_day(rng, *window))
                if system.events:
                    attach_event(rng, system, person, record, (seed, "delta", batch, person.index, j), recent=True)
                emit(system, record_id(system, seed, "delta", batch, person.index, j), person.person_id, record, errors, "insert")
        for r in delivered_records.truth_table().to_pylist():
            key = (r["source_system"], r["source_record_id"])
            if r["fault"] or key in changed:
                continue
            roll = rng.random() / (scale * load)
            if roll < DELETE_SHARE:
                deletions[r["source_system"]].append(r["source_record_id"])
                truth.append({**r, "op": "delete"})
            elif roll < DELETE_SHARE + UPDATE_SHARE:
                system = SYSTEMS_BY_NAME[r["source_system"]]
                person = known[r["person_id"]]
                record, errors = models[system.name].draft(rng, person, window[1])
                if system.events:
                    attach_event(rng, system, person, record, (seed, "update", batch, r["source_record_id"]), recent=True)
                emit(system, r["source_record_id"], person.person_id, record, errors, "update")
                updates += 1

    counts = _write(lake, batch_id, extracted_at, rows, deletions)
    lake.write_table(pa.Table.from_pylist(truth, schema=TRUTH_SCHEMA), "truth", "records", f"{batch_id}.parquet")
    lake.write_table(new_people, "truth", "people", f"{batch_id}.parquet")
    lake.write_table(NETWORK_SCHEMA.empty_table(), "truth", "networks", f"{batch_id}.parquet")
    lake.write_json({**population, "batches": [*batches, batch_id]}, "truth", "population.json")
    return DeltaSummary(batch_id, new_people.num_rows, counts, updates, sum(len(v) for v in deletions.values()))


def _write(lake: Lake, batch_id: str, extracted_at, rows: dict[str, list[dict]], deletions: dict[str, list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for system in SYSTEMS:
        if not rows[system.name] and not deletions[system.name]:
            continue
        # Every batch carries an extract, possibly with no rows, so a batch of deletions
        # alone is still a complete delivery.
        data = header(system) + serialise_rows(system, rows[system.name])
        name = f"{system.name}_{batch_id}.{system.extension}"
        lake.write_bytes(data, "landing", system.name, batch_id, name)
        files = [{"name": name, "kind": "extract", "rows": len(rows[system.name]), "bytes": len(data),
                  "sha256": hashlib.sha256(data).hexdigest()}]
        if deletions[system.name]:
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(["record_id"])
            writer.writerows([[d] for d in deletions[system.name]])
            ddata = buf.getvalue().encode()
            dname = f"deletions_{batch_id}.csv"
            lake.write_bytes(ddata, "landing", system.name, batch_id, dname)
            files.append({"name": dname, "kind": "deletions", "rows": len(deletions[system.name]), "bytes": len(ddata),
                          "sha256": hashlib.sha256(ddata).hexdigest()})
        lake.write_json(manifest(system.name, batch_id, extracted_at, files), "landing", system.name, batch_id, "manifest.json")
        counts[system.name] = len(rows[system.name])
    return counts
