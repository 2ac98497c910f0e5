"""Write synthetic extracts for the eleven systems into a lake, with ground truth.

People are generated in fixed blocks (population.BLOCK_SIZE), each from its own
random stream, by a pool of worker processes; the parent streams each block's rows
into the extracts in block order. The output for a seed is therefore identical
whatever the number of workers, and memory does not grow with the population.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import multiprocessing
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from veracity.lake import Lake
from veracity.synthetic import events as ev
from veracity.synthetic.errors import ErrorModel, RecordDraft, random_day
from veracity.synthetic.extracts import header, manifest, serialise_rows
from veracity.synthetic.population import BLOCK_SIZE, REFERENCE_DATE, Person, block_rng, make_block
from veracity.synthetic.systems import SYSTEMS, System

EXTRACTED_AT = datetime(REFERENCE_DATE.year, REFERENCE_DATE.month, REFERENCE_DATE.day, 6, 0, tzinfo=UTC)
EXTRACTED_DAY = EXTRACTED_AT.date()
# Row-level faults each extract carries, which the scrub must quarantine.
MISSING_ID_RATE = 0.001
DUPLICATE_ID_RATE = 0.001
SOLO_CRIME_ROLES = (("suspect", 0.5), ("victim", 0.3), ("witness", 0.2))
INCIDENT_ROLES = (("subject", 0.4), ("caller", 0.3), ("victim", 0.2), ("witness", 0.1))

TRUTH_SCHEMA = pa.schema(
    [
        ("source_system", pa.string()), ("source_record_id", pa.string()), ("person_id", pa.string()),
        ("record_date", pa.date32()), ("errors", pa.string()), ("fault", pa.string()), ("op", pa.string()),
    ]
)
PEOPLE_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()), ("origin", pa.string()), ("first_name", pa.string()),
        ("middle_names", pa.string()), ("last_name", pa.string()), ("maiden_name", pa.string()),
        ("sex", pa.string()), ("date_of_birth", pa.date32()), ("postcode", pa.string()),
        ("pnc_id", pa.string()), ("ni_number", pa.string()), ("activity", pa.int32()), ("relation", pa.string()),
    ]
)
NETWORK_SCHEMA = pa.schema([("network_id", pa.string()), ("person_id", pa.string())])


@dataclass
class GenerateSummary:
    people: int
    records_per_system: dict[str, int]
    networks: int = 0

    @property
    def records(self) -> int:
        return sum(self.records_per_system.values())


@dataclass
class BlockOutput:
    bodies: dict[str, bytes]
    counts: dict[str, int]
    truth: pa.Table
    people: pa.Table
    networks: pa.Table


_SYSTEM_CUMULATIVE = tuple(itertools.accumulate(s.share for s in SYSTEMS))


def pick_system(rng: random.Random) -> System:
    return SYSTEMS[bisect.bisect(_SYSTEM_CUMULATIVE, rng.random() * _SYSTEM_CUMULATIVE[-1])]


def record_id(system: System, seed: int, *key: object) -> str:
    """A source key that reveals nothing of the person behind it."""
    digest = hashlib.blake2b(f"{seed}:{system.name}:{':'.join(map(str, key))}".encode(), digest_size=8)
    return system.id_prefix + digest.hexdigest().upper()


def _weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for value, share in options:
        x -= share
        if x < 0:
            return value
    return options[-1][0]


class _BlockWriter:
    """Collects one block's rendered rows and truth, system by system."""

    def __init__(self, seed: int):
        self.seed = seed
        self.rows: dict[str, list[dict]] = {s.name: [] for s in SYSTEMS}
        self.truth: list[tuple] = []
        self.models = {s.name: ErrorModel(s.quality, s.ocr) for s in SYSTEMS}

    def add(self, rng: random.Random, system: System, person: Person, rid: str, record: RecordDraft, errors: list[str]) -> None:
        fault = None
        if rng.random() < MISSING_ID_RATE:
            fault = "missing_record_id"
        elif rng.random() < DUPLICATE_ID_RATE:
            fault = "duplicate_record_id"
        shown_id = "" if fault == "missing_record_id" else rid
        row = {col: render(record, shown_id, EXTRACTED_DAY) for col, render in system.columns.items()}
        self.rows[system.name].append(row)
        if fault == "duplicate_record_id":
            self.rows[system.name].append(row)  # the same row delivered twice
        self.truth.append((system.name, rid, person.person_id, record.record_date, ";".join(errors) or None, fault, "insert"))

    def truth_table(self) -> pa.Table:
        return pa.Table.from_pylist([dict(zip(TRUTH_SCHEMA.names, t, strict=True)) for t in self.truth], schema=TRUTH_SCHEMA)

    def draft(self, rng: random.Random, system: System, person: Person, day) -> tuple[RecordDraft, list[str]]:
        return self.models[system.name].draft(rng, person, day)


def attach_event(rng: random.Random, system: System, person: Person, record: RecordDraft, key: tuple, recent: bool = False) -> None:
    """Make the record a participation in a crime, incident or search. ``recent`` dates a
    crime on the record's own day (a delta), instead of anywhere in the person's history."""
    home = person.residences[person.residence_index_on(record.record_date)].address.postcode
    area = ev.neighbourhood_near(rng, home)
    if system.events == "crime":
        event = ev.crime(rng, ev.event_ref("CR", *key), area, person.active_from)
        if recent:
            event = ev.Event(event.ref, event.kind, record.record_date, event.group, event.neighbourhood)
        record.role = _weighted(rng, SOLO_CRIME_ROLES)
    elif system.events == "incident":
        event = ev.incident(rng, ev.event_ref("IN", *key), area, record.record_date)
        record.role = _weighted(rng, INCIDENT_ROLES)
    else:
        event = ev.Event("", "search", record.record_date, "", ev.NEIGHBOURHOODS[area][0])
    record.event_ref, record.event_date = event.ref, event.day
    record.event_group, record.neighbourhood = event.group, event.neighbourhood


def block_records(seed: int, block: int, size: int, window: tuple | None = None, max_records: int | None = None) -> tuple[list[Person], _BlockWriter, list[tuple[str, str]]]:
    """A block's people, their rendered records and network memberships. ``window``
    (first day, last day) and ``max_records`` shape a delta's newcomers; the initial
    delivery spans each person's whole history."""
    people = make_block(seed, block, size)
    rng = block_rng(seed, block, "records")
    out = _BlockWriter(seed)
    for person in people:
        for k in range(min(person.activity, max_records or person.activity)):
            system = pick_system(rng)
            day = random_day(rng, *window) if window else random_day(rng, person.active_from, REFERENCE_DATE)
            record, errors = out.draft(rng, system, person, day)
            if system.events:
                attach_event(rng, system, person, record, (seed, person.index, k), recent=window is not None)
            out.add(rng, system, person, record_id(system, seed, person.index, k), record, errors)

    crime_system = next(s for s in SYSTEMS if s.events == "crime")
    network_rng = block_rng(seed, block, "networks")
    networks = ev.plan_networks(network_rng, seed, block, people) if window is None else []
    memberships = []
    for network in networks:
        memberships += [(network.network_id, people[m].person_id) for m in network.members]
        for event, cast in ev.network_events(network_rng, network, people):
            for member, role in cast:
                person = people[member]
                record, errors = out.draft(network_rng, crime_system, person, event.day)
                record.event_ref, record.event_date, record.event_group = event.ref, event.day, event.group
                record.neighbourhood, record.role = event.neighbourhood, role
                out.add(network_rng, crime_system, person, record_id(crime_system, seed, event.ref, member), record, errors)
    return people, out, memberships


def make_block_output(seed: int, block: int, size: int) -> BlockOutput:
    people, out, memberships = block_records(seed, block, size)
    return BlockOutput(
        bodies={s.name: serialise_rows(s, out.rows[s.name]) for s in SYSTEMS},
        counts={s.name: len(out.rows[s.name]) for s in SYSTEMS},
        truth=out.truth_table(),
        people=_people_table(people),
        networks=pa.Table.from_pylist([dict(zip(NETWORK_SCHEMA.names, r, strict=True)) for r in memberships], schema=NETWORK_SCHEMA),
    )


def _people_table(people: list[Person]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "person_id": p.person_id, "origin": p.origin, "first_name": p.first_name, "middle_names": p.middle_names,
                "last_name": p.last_name, "maiden_name": p.maiden_name, "sex": p.sex, "date_of_birth": p.date_of_birth,
                "postcode": p.residences[-1].address.postcode, "pnc_id": p.pnc_id, "ni_number": p.ni_number,
                "activity": p.activity, "relation": p.relation,
            }
            for p in people
        ],
        schema=PEOPLE_SCHEMA,
    )


def _block_job(args: tuple[int, int, int]) -> BlockOutput:
    return make_block_output(*args)


def _blocks(people: int, seed: int, workers: int) -> Iterator[BlockOutput]:
    jobs = [(seed, b, min(BLOCK_SIZE, people - b * BLOCK_SIZE)) for b in range((people + BLOCK_SIZE - 1) // BLOCK_SIZE)]
    if workers <= 1 or len(jobs) == 1:
        yield from map(_block_job, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_block_job, jobs, chunksize=1)


def generate(
    lake: Lake, people: int, seed: int, workers: int | None = None, progress: Callable[[int], None] | None = None
) -> GenerateSummary:
    """The initial delivery: one batch per system, for a population of ``people``."""
    if people < 1:
        raise ValueError("people must be at least 1")
    workers = workers if workers is not None else min(2, multiprocessing.cpu_count())
    batch_id = EXTRACTED_AT.strftime("%Y%m%dT%H%M%SZ")
    names = {s.name: f"{s.name}_{batch_id}.{s.extension}" for s in SYSTEMS}
    streams = {s.name: lake.open_output("landing", s.name, batch_id, names[s.name]) for s in SYSTEMS}
    digests = {s.name: hashlib.sha256() for s in SYSTEMS}
    sizes = dict.fromkeys(names, 0)
    counts = dict.fromkeys(names, 0)
    outputs = {
        "truth": (("truth", "records", f"{batch_id}.parquet"), TRUTH_SCHEMA),
        "people": (("truth", "people", f"{batch_id}.parquet"), PEOPLE_SCHEMA),
        "networks": (("truth", "networks", f"{batch_id}.parquet"), NETWORK_SCHEMA),
    }
    sinks = {k: lake.open_output(*parts) for k, (parts, _) in outputs.items()}
    writers = {k: pq.ParquetWriter(sinks[k], schema, compression="zstd") for k, (_, schema) in outputs.items()}
    networks = 0

    def write(system: str, data: bytes) -> None:
        streams[system].write(data)
        digests[system].update(data)
        sizes[system] += len(data)

    try:
        for s in SYSTEMS:
            write(s.name, header(s))
        for block in _blocks(people, seed, workers):
            for name, body in block.bodies.items():
                write(name, body)
                counts[name] += block.counts[name]
            writers["truth"].write_table(block.truth)
            writers["people"].write_table(block.people)
            writers["networks"].write_table(block.networks)
            networks += len(set(block.networks.column("network_id").to_pylist()))
            if progress:
                progress(block.people.num_rows)
    finally:
        for w in writers.values():
            w.close()
        for sink in sinks.values():
            sink.close()
        for stream in streams.values():
            stream.close()
    # Manifests last: a batch is complete only once its manifest is there.
    for s in SYSTEMS:
        entry = {"name": names[s.name], "kind": "extract", "rows": counts[s.name], "bytes": sizes[s.name],
                 "sha256": digests[s.name].hexdigest()}
        lake.write_json(manifest(s.name, batch_id, EXTRACTED_AT, [entry]), "landing", s.name, batch_id, "manifest.json")
    lake.write_json({"seed": seed, "people": people, "block_size": BLOCK_SIZE, "batches": [batch_id]}, "truth", "population.json")
    return GenerateSummary(people, counts, networks)
