"""A synthetic population: people with names, dates of birth, addresses and identifiers.

Each person is drawn from its own random stream (seed, person index), so the
population is the same for a seed whatever order or chunk size it is built in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from veracity import uk
from veracity.synthetic.names import draw_origin, pools

# West Midlands postcode districts: (area, highest district number) and a post town.
POSTCODE_AREAS: tuple[tuple[str, int, str], ...] = (
    ("B", 99, "BIRMINGHAM"),
    ("CV", 47, "COVENTRY"),
    ("WV", 16, "WOLVERHAMPTON"),
    ("WS", 15, "WALSALL"),
    ("DY", 14, "DUDLEY"),
)
STREETS = (
    "High Street", "Church Road", "Station Road", "Victoria Road", "Park Road",
    "Green Lane", "Manor Road", "Coventry Road", "Stratford Road", "Soho Road",
    "Alum Rock Road", "Ladypool Road", "Walsall Road", "Dudley Road", "Bristol Road",
    "Hagley Road", "Pershore Road", "Warwick Road", "Moseley Road", "Lichfield Road",
)
REFERENCE_DATE = date(2026, 11, 1)


@dataclass(frozen=True)
class Address:
    line: str
    town: str
    postcode: str


@dataclass(frozen=True)
class Person:
    person_id: str
    first_name: str
    middle_names: str
    last_name: str
    sex: str
    date_of_birth: date
    addresses: tuple[Address, ...]  # oldest first; the last is current
    phone: str | None
    email: str | None
    pnc_id: str | None
    cro_number: str | None
    ni_number: str | None
    driving_licence: str | None
    activity: int  # how many records the person leaves across systems
    aliases: tuple[str, ...] = field(default=())


def person_rng(seed: int, index: int) -> random.Random:
    return random.Random(seed * 1_000_003 + index)


def random_postcode(rng: random.Random) -> tuple[str, str]:
    area, top, town = rng.choices(POSTCODE_AREAS, weights=(60, 12, 10, 9, 9))[0]
    district = rng.randint(1, top)
    unit = "".join(rng.choice(uk.POSTCODE_UNIT_LETTERS) for _ in range(2))
    return f"{area}{district} {rng.randint(0, 9)}{unit}", town


def random_address(rng: random.Random) -> Address:
    postcode, town = random_postcode(rng)
    return Address(f"{rng.randint(1, 250)} {rng.choice(STREETS)}", town, postcode)


def _dob(rng: random.Random) -> date:
    # Ages that meet the police: concentrated in the late teens to forties.
    age = min(95.0, max(10.0, rng.lognormvariate(3.4, 0.35)))
    return REFERENCE_DATE - timedelta(days=int(age * 365.25) + rng.randint(0, 364))


def _activity(rng: random.Random) -> int:
    """Records a person leaves: most appear once or twice, a few dozens of times."""
    return max(1, min(200, int(rng.paretovariate(1.1) * 2.4) - 1))


def _ni_number(rng: random.Random) -> str:
    while True:
        prefix = rng.choice(uk.NI_FIRST) + rng.choice(uk.NI_SECOND)
        if prefix not in uk.NI_BANNED_PREFIXES:
            return f"{prefix}{rng.randint(0, 999999):06d}{rng.choice('ABCD')}"


def make_person(seed: int, index: int) -> Person:
    rng = person_rng(seed, index)
    origin = draw_origin(rng)
    names = pools(origin)
    sex = rng.choice("MF")
    first = names[sex].draw(rng)
    middle = names[sex].draw(rng) if rng.random() < 0.4 else ""
    last = names["last"].draw(rng)
    dob = _dob(rng)
    addresses = tuple(random_address(rng) for _ in range(1 + min(4, int(rng.expovariate(0.9)))))
    activity = _activity(rng)
    offender = rng.random() < min(0.9, 0.25 + 0.1 * activity)
    pnc = uk.format_pnc_id(rng.randint(0, 26), rng.randint(1, 9_999_999)) if offender else None
    cro = uk.format_cro_number(rng.randint(1, 999_999), rng.randint(70, 99)) if offender and rng.random() < 0.5 else None
    age = (REFERENCE_DATE - dob).days // 365
    ni = _ni_number(rng) if age >= 16 and rng.random() < 0.8 else None
    dl = None
    if age >= 17 and rng.random() < 0.6:
        stem = uk.driving_licence_stem(last, first[0] + (middle[:1] or ""), dob, sex == "F")
        dl = stem + str(rng.randint(0, 9)) + "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
    phone = f"07{rng.randint(100_000_000, 999_999_999)}" if rng.random() < 0.7 else None
    email = f"{first}.{last}{rng.randint(1, 99)}@example.com".lower() if rng.random() < 0.4 else None
    aliases = (names["last"].draw(rng),) if rng.random() < 0.05 else ()
    return Person(
        person_id=f"T{seed}-{index:08d}",
        first_name=first, middle_names=middle, last_name=last, sex=sex, date_of_birth=dob,
        addresses=addresses, phone=phone, email=email, pnc_id=pnc, cro_number=cro,
        ni_number=ni, driving_licence=dl, activity=activity,
        aliases=tuple(f"{first} {a}" for a in aliases),
    )


def make_relative(seed: int, index: int, of: Person, kind: str) -> Person:
    """Hard negatives: a twin (same surname, DOB, address) or a son with his father's name."""
    base = make_person(seed, index)
    if kind == "twin":
        return replace(
            base, last_name=of.last_name, date_of_birth=of.date_of_birth,
            addresses=of.addresses, pnc_id=base.pnc_id, driving_licence=None,
        )
    son_dob = of.date_of_birth + timedelta(days=int(365.25 * person_rng(seed, index).randint(18, 35)))
    son_dob = min(son_dob, REFERENCE_DATE - timedelta(days=365 * 12))
    return replace(
        base, first_name=of.first_name, last_name=of.last_name, sex=of.sex,
        date_of_birth=son_dob, addresses=of.addresses, driving_licence=None,
    )


def make_population(n: int, seed: int) -> list[Person]:
    people: list[Person] = []
    for i in range(n):
        rng = person_rng(seed, -1 - i)
        roll = rng.random()
        if people and roll < 0.01:
            people.append(make_relative(seed, i, people[rng.randrange(len(people))], "twin"))
        elif people and roll < 0.015:
            people.append(make_relative(seed, i, people[rng.randrange(len(people))], "son"))
        else:
            people.append(make_person(seed, i))
    return people
