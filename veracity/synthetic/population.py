"""A synthetic population: people with names, dates of birth, address histories and identifiers.

People are made in blocks of BLOCK_SIZE from one random stream per (seed, block), so
the population for a seed is the same whatever the chunking or the number of workers.
Hard negatives are planted inside a block: twins (same surname, date of birth and
address) and fathers and sons who share a name and an address.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import cached_property

from veracity import uk
from veracity.synthetic.draws import choice, randint, randrange
from veracity.synthetic.names import Origin, draw_origin, female_surname, origins

BLOCK_SIZE = 1000
REFERENCE_DATE = date(2026, 11, 1)  # the initial extraction
HISTORY_START = date(2023, 1, 1)  # records describe contacts from here on
TWIN_RATE = 0.008
FATHER_SON_RATE = 0.005
NAMESAKE_RATE = 0.005  # an unrelated person with the same name and birth year
MARRIAGE_NAME_CHANGE_RATE = 0.12  # of women over 20
DOUBLE_BARRELLED_RATE = 0.02
ALIAS_RATE = 0.05

# West Midlands postcode areas: (area, highest district number, post town, weight).
POSTCODE_AREAS: tuple[tuple[str, int, str, int], ...] = (
    ("B", 99, "BIRMINGHAM", 60),
    ("CV", 47, "COVENTRY", 12),
    ("WV", 16, "WOLVERHAMPTON", 10),
    ("WS", 15, "WALSALL", 9),
    ("DY", 14, "DUDLEY", 9),
)
STREETS = (
    "High Street", "Church Road", "Station Road", "Victoria Road", "Park Road", "Green Lane",
    "Manor Road", "Coventry Road", "Stratford Road", "Soho Road", "Alum Rock Road", "Ladypool Road",
    "Walsall Road", "Dudley Road", "Bristol Road", "Hagley Road", "Pershore Road", "Warwick Road",
    "Moseley Road", "Lichfield Road", "Holyhead Road", "Foleshill Road", "Wednesfield Road",
    "Stafford Street", "Kings Road", "Queens Road", "Albert Road", "Grove Lane", "Mill Lane", "Oak Tree Lane",
)


_AREA_CUMULATIVE = tuple(itertools.accumulate(a[3] for a in POSTCODE_AREAS))


@dataclass(frozen=True)
class Address:
    line: str
    town: str
    postcode: str


@dataclass(frozen=True)
class Residence:
    address: Address
    since: date


@dataclass(frozen=True)
class Person:
    person_id: str
    index: int
    origin: str
    first_name: str
    middle_names: str
    last_name: str
    sex: str
    date_of_birth: date
    residences: tuple[Residence, ...]  # oldest first
    phone: str | None
    email: str | None
    pnc_id: str | None
    cro_number: str | None
    ni_number: str | None
    driving_licence: str | None
    activity: int  # records the person leaves across systems on their own account
    maiden_name: str | None = None  # surname before marriage, used by records before married_on
    married_on: date | None = None
    aliases: tuple[str, ...] = field(default=())
    relation: str | None = None  # "twin_of:<id>" or "son_of:<id>": planted hard negatives

    def surname_on(self, day: date) -> str:
        if self.maiden_name and self.married_on and day < self.married_on:
            return self.maiden_name
        return self.last_name

    def residence_index_on(self, day: date) -> int:
        index = 0
        for i, r in enumerate(self.residences):
            if r.since <= day:
                index = i
        return index

    @cached_property
    def active_from(self) -> date:
        twelfth = _add_years(self.date_of_birth, 12)
        return max(HISTORY_START, twelfth)


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def random_postcode(rng: random.Random) -> tuple[str, str]:
    area, top, town, _ = rng.choices(POSTCODE_AREAS, cum_weights=_AREA_CUMULATIVE)[0]
    unit = choice(rng, uk.POSTCODE_UNIT_LETTERS) + choice(rng, uk.POSTCODE_UNIT_LETTERS)
    return f"{area}{randint(rng, 1, top)} {randint(rng, 0, 9)}{unit}", town


def random_address(rng: random.Random) -> Address:
    postcode, town = random_postcode(rng)
    return Address(f"{randint(rng, 1, 250)} {choice(rng, STREETS)}", town, postcode)


def _dob(rng: random.Random) -> date:
    # Ages that meet the police: most between 15 and 45, a long tail to old age.
    age = min(95.0, max(12.5, rng.lognormvariate(3.4, 0.38)))
    return REFERENCE_DATE - timedelta(days=int(age * 365.25))


def _activity(rng: random.Random) -> int:
    """Records a person leaves: most appear once or twice, prolific offenders dozens of times."""
    return max(1, min(200, int(rng.paretovariate(1.1) * 2.4) - 1))


def _ni_number(rng: random.Random) -> str:
    while True:
        prefix = choice(rng, uk.NI_FIRST) + choice(rng, uk.NI_SECOND)
        if prefix not in uk.NI_BANNED_PREFIXES:
            return f"{prefix}{randint(rng, 0, 999999):06d}{choice(rng, 'ABCD')}"


def _driving_licence(rng: random.Random, last: str, first: str, middle: str, dob: date, sex: str) -> str:
    stem = uk.driving_licence_stem(last, first[:1] + middle[:1], dob, sex == "F")
    return stem + str(randint(rng, 0, 9)) + choice(rng, "ABCDEFGHJKLMNPRSTUVWXYZ") + choice(rng, "ABCDEFGHJKLMNPRSTUVWXYZ")


def _residences(rng: random.Random, dob: date, first: Address | None = None) -> tuple[Residence, ...]:
    moves = min(5, int(rng.expovariate(0.8)))
    start = _add_years(dob, 16)
    span = max(1, (REFERENCE_DATE - start).days)
    dates = sorted(start + timedelta(days=randrange(rng, span)) for _ in range(moves))
    addresses = [first or random_address(rng)] + [random_address(rng) for _ in dates]
    return tuple(Residence(a, d) for a, d in zip(addresses, [dob, *dates], strict=True))


def make_person(rng: random.Random, seed: int, index: int, origin: Origin | None = None) -> Person:
    origin = origin or draw_origin(rng)
    sex = choice(rng, "MF")
    first = origin.first(sex).draw(rng)
    middle = origin.first(sex).draw(rng) if rng.random() < 0.35 else ""
    last = origin.last.draw(rng)
    if rng.random() < DOUBLE_BARRELLED_RATE and origin.name == "english_welsh_scottish":
        last = f"{last}-{origin.last.draw(rng)}"
    if sex == "F":
        last = female_surname(origin, last)
    dob = _dob(rng)
    age = (REFERENCE_DATE - dob).days // 365
    maiden, married_on = None, None
    if sex == "F" and age > 20 and rng.random() < MARRIAGE_NAME_CHANGE_RATE:
        maiden, last = last, female_surname(origin, origin.last.draw(rng))
        married_on = HISTORY_START + timedelta(days=randrange(rng, (REFERENCE_DATE - HISTORY_START).days))
    activity = _activity(rng)
    offender = rng.random() < min(0.9, 0.2 + 0.08 * activity)
    pnc = uk.format_pnc_id(randint(rng, 0, 26), randint(rng, 1, 9_999_999)) if offender else None
    cro = uk.format_cro_number(randint(rng, 1, 999_999), randint(rng, 70, 99)) if offender and rng.random() < 0.5 else None
    ni = _ni_number(rng) if age >= 16 and rng.random() < 0.8 else None
    dl = _driving_licence(rng, last, first, middle, dob, sex) if age >= 17 and rng.random() < 0.6 else None
    phone = f"07{randint(rng, 100_000_000, 999_999_999)}" if rng.random() < 0.7 else None
    email = f"{first}.{last}{randint(rng, 1, 99)}@example.com".lower().replace(" ", "") if rng.random() < 0.4 else None
    aliases = ()
    if rng.random() < ALIAS_RATE:
        aliases = (f"{origin.first(sex).draw(rng)} {last}" if rng.random() < 0.5 else f"{first} {origin.last.draw(rng)}",)
    return Person(
        person_id=f"T{seed}-{index:09d}", index=index, origin=origin.name, first_name=first, middle_names=middle,
        last_name=last, sex=sex, date_of_birth=dob, residences=_residences(rng, dob), phone=phone, email=email,
        pnc_id=pnc, cro_number=cro, ni_number=ni, driving_licence=dl, activity=activity,
        maiden_name=maiden, married_on=married_on, aliases=aliases,
    )


def _origin_named(name: str) -> Origin:
    return next(o for o in origins() if o.name == name)


def make_twin(rng: random.Random, seed: int, index: int, of: Person) -> Person:
    """Same surname, date of birth and home; a different person with a different forename."""
    base = make_person(rng, seed, index, _origin_named(of.origin))
    pool = _origin_named(of.origin).first(base.sex)
    for _ in range(20):  # unisex names (Harpreet) can repeat: twins are told apart by forename
        if base.first_name != of.first_name:
            break
        base = replace(base, first_name=pool.draw(rng))
    return replace(
        base, last_name=of.last_name, maiden_name=of.maiden_name if base.sex == of.sex else None,
        married_on=of.married_on if base.sex == of.sex else None, date_of_birth=of.date_of_birth,
        residences=of.residences, driving_licence=None, relation=f"twin_of:{of.person_id}",
    )


def make_son(rng: random.Random, seed: int, index: int, father: Person) -> Person:
    """A son with his father's name and address, born 18 to 35 years later."""
    base = make_person(rng, seed, index, _origin_named(father.origin))
    dob = father.date_of_birth + timedelta(days=int(365.25 * randint(rng, 18, 35)))
    dob = min(dob, REFERENCE_DATE - timedelta(days=365 * 13))
    return replace(
        base, first_name=father.first_name, last_name=father.last_name, sex="M", date_of_birth=dob,
        maiden_name=None, married_on=None, residences=_residences(rng, dob, father.residences[-1].address),
        driving_licence=None, relation=f"son_of:{father.person_id}",
    )


def make_namesake(rng: random.Random, seed: int, index: int, of: Person) -> Person:
    """An unrelated person who shares a name and a birth year, living elsewhere."""
    base = make_person(rng, seed, index, _origin_named(of.origin))
    dob = of.date_of_birth.replace(month=randint(rng, 1, 12), day=randint(rng, 1, 28))
    return replace(
        base, first_name=of.first_name, last_name=of.last_name, sex=of.sex, date_of_birth=dob,
        maiden_name=None, married_on=None, driving_licence=None, relation=f"namesake_of:{of.person_id}",
    )


def block_rng(seed: int, block: int, stream: str = "people") -> random.Random:
    return random.Random(f"{seed}:{stream}:{block}")


def make_block(seed: int, block: int, size: int = BLOCK_SIZE) -> list[Person]:
    """People block*BLOCK_SIZE ... + size - 1, from the block's own random stream."""
    rng = block_rng(seed, block)
    people: list[Person] = []
    while len(people) < size:
        index = block * BLOCK_SIZE + len(people)
        if people and people[-1].relation is None and people[-1].sex == "M" and rng.random() < FATHER_SON_RATE * 2:
            people.append(make_son(rng, seed, index, people[-1]))
        elif people and people[-1].relation is None and rng.random() < TWIN_RATE:
            people.append(make_twin(rng, seed, index, people[-1]))
        elif people and rng.random() < NAMESAKE_RATE:
            people.append(make_namesake(rng, seed, index, people[randrange(rng, len(people))]))
        else:
            people.append(make_person(rng, seed, index))
    return people


def make_population(n: int, seed: int) -> list[Person]:
    """The first n people for a seed (for tests and small tools; generation streams blocks)."""
    people: list[Person] = []
    for block in range((n + BLOCK_SIZE - 1) // BLOCK_SIZE):
        people += make_block(seed, block, min(BLOCK_SIZE, n - block * BLOCK_SIZE))
    return people
