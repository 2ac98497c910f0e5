"""Write synthetic extracts for the eleven systems into a lake, with ground truth."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from veracity.lake import Lake
from veracity.synthetic.errors import draft
from veracity.synthetic.extracts import manifest, serialise
from veracity.synthetic.population import make_population
from veracity.synthetic.systems import SYSTEMS, System

EXTRACTED_AT = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
# Row-level faults each system's extract carries, which the scrub must quarantine.
MISSING_ID_RATE = 0.001
DUPLICATE_ID_RATE = 0.001

TRUTH_SCHEMA = pa.schema(
    [("source_system", pa.string()), ("source_record_id", pa.string()), ("person_id", pa.string())]
)


@dataclass
class GenerateSummary:
    people: int
    records_per_system: dict[str, int]

    @property
    def records(self) -> int:
        return sum(self.records_per_system.values())


def _system_picker() -> Callable[[random.Random], System]:
    cumulative = list(itertools.accumulate(s.share for s in SYSTEMS))
    return lambda rng: SYSTEMS[bisect.bisect(cumulative, rng.random() * cumulative[-1])]


def generate(lake: Lake, people: int, seed: int, progress: Callable[[int], None] | None = None) -> GenerateSummary:
    if people < 1:
        raise ValueError("people must be at least 1")
    population = make_population(people, seed)
    pick = _system_picker()
    rows: dict[str, list[dict]] = {s.name: [] for s in SYSTEMS}
    truth: dict[str, list[str]] = {s.name: [] for s in SYSTEMS}
    truth_people: dict[str, list[str]] = {s.name: [] for s in SYSTEMS}
    for index, person in enumerate(population):
        rng = random.Random(seed * 7_919 + index * 2 + 1)
        for _ in range(person.activity):
            system = pick(rng)
            record_id = f"{system.id_prefix}{len(rows[system.name]) + 1:09d}"
            record = draft(rng, person, system.quality)
            rows[system.name].append(
                {col: render(record, record_id, EXTRACTED_AT.date()) for col, render in system.columns.items()}
            )
            truth[system.name].append(record_id)
            truth_people[system.name].append(person.person_id)
        if progress and index % 1000 == 999:
            progress(1000)

    batch_id = EXTRACTED_AT.strftime("%Y%m%dT%H%M%SZ")
    for system in SYSTEMS:
        system_rows = rows[system.name]
        _inject_row_faults(random.Random(f"{seed}-{system.name}"), system, system_rows)
        data = serialise(system, system_rows)
        name = f"{system.name}_{batch_id}.{system.extension}"
        lake.write_bytes(data, "landing", system.name, batch_id, name)
        lake.write_json(
            manifest(system, batch_id, EXTRACTED_AT, name, data, len(system_rows)),
            "landing", system.name, batch_id, "manifest.json",
        )
        lake.write_table(
            pa.table(
                {
                    "source_system": [system.name] * len(truth[system.name]),
                    "source_record_id": truth[system.name],
                    "person_id": truth_people[system.name],
                },
                schema=TRUTH_SCHEMA,
            ),
            "truth", "records", system.name, f"{batch_id}.parquet",
        )
    return GenerateSummary(people, {s: len(r) for s, r in rows.items()})


def _inject_row_faults(rng: random.Random, system: System, rows: list[dict]) -> None:
    """Blank some record ids and resend some rows under an id already used."""
    id_col = next(iter(system.columns))
    if len(rows) < 2:
        return
    for _ in range(max(1, round(len(rows) * MISSING_ID_RATE))):
        rows[rng.randrange(len(rows))][id_col] = ""
    for _ in range(max(1, round(len(rows) * DUPLICATE_ID_RATE))):
        original = rows[rng.randrange(len(rows))]
        if original[id_col]:
            rows.insert(rng.randrange(len(rows)), dict(original))
