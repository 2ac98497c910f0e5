"""A data set of another shape, for checking that nothing assumes UK-shaped sources.

A fictional continental agency with three systems, none of which holds a PNC id, a
CRO or NI number, a driving licence or a UK postcode:

- ``case_register``: CSV with semicolons; one "SURNAME, Forenames" field, dates of
  birth as yyyymmdd, a national id number (canonical ``other_id``), postal code, city.
- ``population_registry``: JSON lines; given names and family name apart, the year
  of birth only, sex coded M/W/D, email and mobile in international format, postal
  code and city nested under ``address``.
- ``contacts``: CSV; one "Forename Surname" field holding the name the person goes
  by, dates of birth as dd.mm.yyyy, email, phone.

People are of German, Swedish, Polish and Spanish origin (name lists from Faker's
locales, common names made common), each with one to four records. Errors are drawn
per record and recorded in the ground truth: typos, names keyed without their
letters' accents or transcribed (Müller -> Mueller), diminutives (Katarzyna ->
Kasia), a Swede's second given name used as the call name, a Spaniard's second
surname dropped, a Polish woman's surname in its masculine form, missing fields,
day and month swapped, a digit slipped, a birth year off by one, a second email
address, emails in any case, phones written with or without spaces. Planted hard
negatives: namesakes who share a forename, surname and birth year with someone else.

Deterministic for a seed: stdlib ``random`` only, with Faker's name lists as data.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import io
import json
import random
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate

import pyarrow as pa

from veracity.lake import Lake
from veracity.synthetic.extracts import manifest

EXTRACTED_AT = datetime(2026, 3, 2, 5, 30, tzinfo=UTC)
BATCH_ID = EXTRACTED_AT.strftime("%Y%m%dT%H%M%SZ")
SOURCES = ("case_register", "population_registry", "contacts")

# Share of the population by origin, and each origin's mobile prefix.
ORIGINS = {"de_DE": 0.4, "sv_SE": 0.2, "pl_PL": 0.2, "es_ES": 0.2}
MOBILE_PREFIX = {"de_DE": ("+49", ("151", "160", "170", "176")), "sv_SE": ("+46", ("70", "72", "73", "76")),
                 "pl_PL": ("+48", ("501", "602", "691", "725")), "es_ES": ("+34", ("612", "634", "655", "699"))}
EMAIL_DOMAINS = ("gmx.de", "web.de", "t-online.de", "gmail.com", "outlook.com", "telia.com", "wp.pl", "onet.pl",
                 "hotmail.es", "yahoo.es", "proton.me", "icloud.com")
CITIES = ("Berlin", "Hamburg", "Bremen", "Hannover", "Kiel", "Rostock", "Lübeck", "Oldenburg")
# Zipf-like name frequencies, 1 / (rank + ZIPF_OFFSET): common names are common (the
# commonest holding a few per cent), so namesakes arise on their own as well as planted.
ZIPF_OFFSET = 10

# Diminutives and short forms a person may go by; the nicknames package knows none.
DIMINUTIVES = {
    "Katarzyna": "Kasia", "Małgorzata": "Gosia", "Aleksandra": "Ola", "Agnieszka": "Aga", "Magdalena": "Magda",
    "Aleksander": "Olek", "Wojciech": "Wojtek", "Krzysztof": "Krzysiek", "Tomasz": "Tomek", "Stanisław": "Staszek",
    "Francisco": "Paco", "José": "Pepe", "Manuel": "Manolo", "Ignacio": "Nacho", "Dolores": "Lola",
    "Guadalupe": "Lupe", "Concepción": "Concha", "Rosario": "Charo", "Antonio": "Toño", "Enrique": "Quique",
    "Johannes": "Hans", "Elisabeth": "Lisa", "Alexander": "Alex", "Katharina": "Kathi", "Wolfgang": "Wolfi",
    "Christian": "Chris", "Margarete": "Grete", "Friedrich": "Fritz", "Susanne": "Susi",
    "Kristina": "Stina", "Katarina": "Kajsa", "Margareta": "Greta", "Elisabet": "Lisa", "Johan": "Jocke",
}
TRANSCRIPTIONS = {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "å": "aa", "Å": "Aa"}
KEYBOARD = "qwertzuiop asdfghjkl yxcvbnm"  # neighbouring keys, German layout


@dataclass
class Person:
    person_id: str
    origin: str
    sex: str  # M | F
    given_names: tuple[str, ...]
    call_name: str  # the given name the person goes by
    surnames: tuple[str, ...]  # two for Spaniards
    date_of_birth: date
    national_id: str
    emails: tuple[str, ...]  # the usual address first
    phone: tuple[str, str, str]  # country code, prefix, subscriber number
    homes: tuple[tuple[str, str], ...]  # (postal code, city), current first
    relation: str | None = None  # namesake_of:<person_id>


@dataclass
class OtherShape:
    people: list[Person]
    rows: dict[str, list[dict]]  # source -> rows in that source's native layout
    truth: list[dict] = field(default_factory=list)  # source_system, source_record_id, person_id, errors

    @property
    def records(self) -> int:
        return len(self.truth)


# -- names ------------------------------------------------------------------------------


def _weighted(names: list[str], weights: list[float] | None, rng: random.Random) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Names with cumulative weights: Faker's own weights where it has them, else Zipf
    over a shuffled list (Faker's lists are alphabetical)."""
    if weights is None:
        names = sorted(set(names))
        rng.shuffle(names)
        weights = [1 / (rank + ZIPF_OFFSET) for rank in range(len(names))]
    return tuple(names), tuple(accumulate(weights))


def _faker(locale: str, attribute: str) -> tuple[list[str], list[float] | None]:
    values = getattr(importlib.import_module(f"faker.providers.person.{locale}").Provider, attribute)
    if isinstance(values, dict):
        return [str(k) for k in values], [float(v) for v in values.values()]
    return [str(v) for v in values], None


def _feminine(surname: str) -> str:
    """Polish surnames agree with sex: Kowalski -> Kowalska."""
    for male, female in (("ski", "ska"), ("cki", "cka"), ("dzki", "dzka")):
        if surname.endswith(male):
            return surname[: -len(male)] + female
    return surname


def _masculine(surname: str) -> str:
    for male, female in (("ski", "ska"), ("cki", "cka"), ("dzki", "dzka")):
        if surname.endswith(female):
            return surname[: -len(female)] + male
    return surname


class Names:
    def __init__(self) -> None:
        order = random.Random(1)  # a fixed shuffle: name frequencies do not depend on the seed
        self.pools: dict[tuple[str, str], tuple[tuple[str, ...], tuple[float, ...]]] = {}
        for locale in ORIGINS:
            for sex, attribute in (("M", "first_names_male"), ("F", "first_names_female")):
                self.pools[(locale, sex)] = _weighted(*_faker(locale, attribute), order)
            surnames = "male_last_names" if locale == "pl_PL" else "last_names"
            self.pools[(locale, "last")] = _weighted(*_faker(locale, surnames), order)

    def draw(self, rng: random.Random, locale: str, kind: str) -> str:
        names, cumulative = self.pools[(locale, kind)]
        return rng.choices(names, cum_weights=cumulative)[0]


# -- people -----------------------------------------------------------------------------


def _email(rng: random.Random, given: str, surname: str, year: int, taken: set[str]) -> str:
    """An address made from the name, as people choose them; never one someone else holds."""
    def plain(s: str) -> str:
        s = "".join(TRANSCRIPTIONS.get(c, c) for c in s)
        s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
        return "".join(c for c in s.lower() if c.isalnum())

    g, s = plain(given.split()[0].split("-")[0]), plain(surname.split()[0])
    local = rng.choice((f"{g}.{s}", f"{g}{s}", f"{g[0]}.{s}", f"{g}_{s}", f"{s}.{g}"))
    if rng.random() < 0.6:
        local += rng.choice((str(year % 100).zfill(2), str(year), str(rng.randint(1, 99))))
    domain = rng.choice(EMAIL_DOMAINS)
    while f"{local}@{domain}" in taken:
        local += str(rng.randrange(10))
    taken.add(f"{local}@{domain}")
    return f"{local}@{domain}"


def _person(rng: random.Random, names: Names, taken: set[str], person_id: str, origin: str, sex: str | None = None) -> Person:
    sex = sex or rng.choice("MF")
    given = [names.draw(rng, origin, sex)]
    second_name_rate = {"sv_SE": 0.5, "de_DE": 0.25}.get(origin, 0.0)
    if rng.random() < second_name_rate:
        second = names.draw(rng, origin, sex)
        if second != given[0]:
            given.append(second)
    # Swedes often go by their second given name.
    call = given[1] if len(given) == 2 and origin == "sv_SE" and rng.random() < 0.3 else given[0]
    surname = names.draw(rng, origin, "last")
    if origin == "pl_PL" and sex == "F":
        surname = _feminine(surname)
    surnames = (surname, names.draw(rng, origin, "last")) if origin == "es_ES" else (surname,)
    dob = date(1940, 1, 1) + timedelta(days=rng.randrange((date(2008, 12, 31) - date(1940, 1, 1)).days))
    emails = tuple(_email(rng, call, surnames[0], dob.year, taken) for _ in range(2 if rng.random() < 0.2 else 1))
    country, prefixes = MOBILE_PREFIX[origin] if rng.random() < 0.4 else MOBILE_PREFIX["de_DE"]
    phone = (country, rng.choice(prefixes), "".join(str(rng.randrange(10)) for _ in range(7)))
    homes = tuple((f"{rng.choice((10, 12, 20, 22, 23, 28, 30, 18))}{rng.randrange(1000):03d}", rng.choice(CITIES))
                  for _ in range(2 if rng.random() < 0.2 else 1))
    national_id = "".join(str(rng.randrange(10)) for _ in range(10))
    return Person(person_id, origin, sex, tuple(given), call, surnames, dob, national_id, emails, phone, homes)


def _namesake(rng: random.Random, names: Names, taken: set[str], person_id: str, of: Person) -> Person:
    """Someone else with the same forename, surname and birth year."""
    other = _person(rng, names, taken, person_id, of.origin, of.sex)
    first = date(of.date_of_birth.year, 1, 1)
    dob = first + timedelta(days=rng.randrange(365))
    while dob == of.date_of_birth:
        dob = first + timedelta(days=rng.randrange(365))
    other.given_names, other.call_name, other.surnames = (of.call_name,), of.call_name, of.surnames
    other.date_of_birth, other.relation = dob, f"namesake_of:{of.person_id}"
    other.emails = tuple(_email(rng, of.call_name, of.surnames[0], dob.year, taken) for _ in other.emails)
    return other


# -- errors -----------------------------------------------------------------------------


def typo(rng: random.Random, word: str) -> str:
    """A keyboard slip inside a word: neighbouring key, dropped, doubled or swapped letter."""
    if len(word) < 3:
        return word
    i = rng.randrange(1, len(word))
    kind = rng.choice(("neighbour", "drop", "double", "swap"))
    if kind == "neighbour" and word[i].lower() in KEYBOARD:
        k = KEYBOARD.index(word[i].lower())
        near = [c for c in (KEYBOARD[k - 1 : k] + KEYBOARD[k + 1 : k + 2]) if c.isalpha()]
        if near:
            c = rng.choice(near)
            return word[:i] + (c.upper() if word[i].isupper() else c) + word[i + 1 :]
    if kind == "double":
        return word[: i + 1] + word[i:]
    if kind == "swap" and i < len(word) - 1 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i + 1 :]


def strip_accents(s: str) -> str:
    s = s.replace("ł", "l").replace("Ł", "L").replace("ß", "ss")
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def transcribe(s: str) -> str:
    """Umlauts and å written out: Müller -> Mueller, Åsa -> Aasa; other accents dropped."""
    return strip_accents("".join(TRANSCRIPTIONS.get(c, c) for c in s))


def _slip(rng: random.Random, d: date) -> date:
    """One digit of the day or the year's last digit keyed wrong."""
    for _ in range(10):
        try:
            if rng.random() < 0.5:
                candidate = d.replace(day=(d.day // 10) * 10 + rng.choice([x for x in range(10) if x != d.day % 10]))
            else:
                candidate = d.replace(year=(d.year // 10) * 10 + rng.choice([x for x in range(10) if x != d.year % 10]))
        except ValueError:
            continue
        if candidate != d and candidate.day > 0:
            return candidate
    return d


class Record:
    """One system's view of a person, with the errors applied on the way."""

    def __init__(self, rng: random.Random, person: Person, rates: dict[str, float]):
        self.rng, self.person, self.rates, self.errors = rng, person, rates, []

    def hit(self, error: str, applicable: bool = True) -> bool:
        if applicable and self.rng.random() < self.rates.get(error, 0.0):
            self.errors.append(error)
            return True
        return False

    def given(self, all_names: bool) -> str:
        p = self.person
        if all_names:
            names = list(p.given_names)
            if len(names) == 2 and self.hit("second_given_name_dropped"):
                names = names[:1]
        else:
            names = [p.call_name]
        if names[0] in DIMINUTIVES and self.hit("diminutive"):
            names[0] = DIMINUTIVES[names[0]]
        if self.hit("first_name_typo"):
            names[0] = typo(self.rng, names[0])
        return " ".join(names)

    def surname(self) -> str:
        p = self.person
        names = list(p.surnames)
        if len(names) == 2 and self.hit("second_surname_dropped"):
            names = names[:1]
        if p.origin == "pl_PL" and p.sex == "F" and self.hit("masculine_surname", _masculine(names[0]) != names[0]):
            names[0] = _masculine(names[0])
        if self.hit("last_name_typo"):
            names[0] = typo(self.rng, names[0])
        return " ".join(names)

    def lettering(self, text: str) -> str:
        if self.hit("transcribed", transcribe(text) != strip_accents(text)):
            return transcribe(text)
        if self.hit("accents_dropped", strip_accents(text) != text):
            return strip_accents(text)
        return text

    def date_of_birth(self) -> date | None:
        d = self.person.date_of_birth
        if self.hit("dob_missing"):
            return None
        if self.hit("dob_day_month_swap", d.day <= 12 and d.day != d.month):
            return d.replace(day=d.month, month=d.day)
        if self.hit("dob_digit_slip"):
            return _slip(self.rng, d)
        return d

    def email(self) -> str:
        p = self.person
        if self.hit("email_missing"):
            return ""
        address = p.emails[0]
        if len(p.emails) > 1 and self.hit("other_email"):
            address = p.emails[1]
        style = self.rng.random()
        if style < 0.15:
            return address.upper()
        if style < 0.4:
            local, domain = address.split("@")
            return ".".join(w.capitalize() for w in local.split(".")) + "@" + domain.capitalize()
        return address

    def phone(self) -> str:
        country, prefix, number = self.person.phone
        if self.hit("phone_missing"):
            return ""
        if self.hit("phone_compact"):
            return f"{country}{prefix}{number}"
        return f"{country} {prefix} {number}"

    def home(self) -> tuple[str, str]:
        homes = self.person.homes
        if self.hit("postcode_missing"):
            return "", homes[0][1]
        if len(homes) > 1 and self.hit("stale_address"):
            return homes[1]
        return homes[0]


# Per-record error rates, per system.
COMMON = {"first_name_typo": 0.03, "last_name_typo": 0.03, "dob_missing": 0.03, "dob_day_month_swap": 0.02,
          "dob_digit_slip": 0.015, "postcode_missing": 0.08, "stale_address": 0.3, "email_missing": 0.2,
          "other_email": 0.3, "phone_missing": 0.35}
RATES = {
    "case_register": {**COMMON, "second_given_name_dropped": 0.3, "second_surname_dropped": 0.15,
                      "masculine_surname": 0.05, "transcribed": 0.25, "accents_dropped": 0.5, "diminutive": 0.03,
                      "national_id_missing": 0.15, "national_id_typo": 0.01},
    "population_registry": {**COMMON, "birth_year_off_by_one": 0.03, "birth_year_missing": 0.02, "sex_missing": 0.03,
                            "second_surname_dropped": 0.05},
    "contacts": {**COMMON, "dob_missing": 0.08, "diminutive": 0.25, "second_surname_dropped": 0.5,
                 "accents_dropped": 0.3, "name_order_swap": 0.01, "phone_compact": 0.5},
}


# -- rendering, one function per system -------------------------------------------------


def _case_row(rec: Record, rid: str) -> dict:
    p = rec.person
    surname = rec.lettering(rec.surname()).upper()
    given = rec.lettering(rec.given(all_names=True))
    dob = rec.date_of_birth()
    national_id = "" if rec.hit("national_id_missing") else p.national_id
    if national_id and rec.hit("national_id_typo"):
        i = rec.rng.randrange(len(national_id))
        national_id = national_id[:i] + str((int(national_id[i]) + 1) % 10) + national_id[i + 1 :]
    postal_code, city = rec.home()
    return {"CASE_NO": rid, "NAME": f"{surname}, {given}", "BORN": dob.strftime("%Y%m%d") if dob else "",
            "ID_NUMBER": national_id, "ZIP": postal_code, "CITY": city}


def _registry_row(rec: Record, rid: str) -> dict:
    p = rec.person
    year: int | None = p.date_of_birth.year
    if rec.hit("birth_year_missing"):
        year = None
    elif rec.hit("birth_year_off_by_one"):
        year += rec.rng.choice((-1, 1))
    postal_code, city = rec.home()
    sex = "" if rec.hit("sex_missing") else {"M": "M", "F": "W"}[p.sex]
    return {
        "reg_id": rid,
        "person": {"given_names": rec.given(all_names=True), "family_name": rec.surname(), "sex": sex},
        "birth_year": year,
        "contact": {"email": rec.email() or None, "mobile": rec.phone() or None},
        "address": {"postal_code": postal_code or None, "city": city},
    }


def _contacts_row(rec: Record, rid: str) -> dict:
    given = rec.lettering(rec.given(all_names=False))
    surname = rec.lettering(rec.surname())
    name = f"{surname} {given}" if rec.hit("name_order_swap") else f"{given} {surname}"
    dob = rec.date_of_birth()
    return {"CONTACT_ID": rid, "FULL_NAME": name, "DATE_OF_BIRTH": dob.strftime("%d.%m.%Y") if dob else "",
            "EMAIL": rec.email(), "PHONE": rec.phone()}


RENDER = {"case_register": _case_row, "population_registry": _registry_row, "contacts": _contacts_row}
CSV_COLUMNS = {
    "case_register": ("CASE_NO", "NAME", "BORN", "ID_NUMBER", "ZIP", "CITY"),
    "contacts": ("CONTACT_ID", "FULL_NAME", "DATE_OF_BIRTH", "EMAIL", "PHONE"),
}
DELIMITERS = {"case_register": ";", "contacts": ","}


def _record_id(rng: random.Random, source: str, used: set[str]) -> str:
    while True:
        rid = {"case_register": lambda: f"CR{rng.randrange(10**8):08d}",
               "population_registry": lambda: f"REG-{rng.getrandbits(48):012x}",
               "contacts": lambda: f"K{rng.randrange(10**7):07d}"}[source]()
        if rid not in used:
            used.add(rid)
            return rid


def _systems(rng: random.Random) -> list[str]:
    """Which systems hold a person's records: one to four records in all."""
    held = rng.choices(
        [["case_register"], ["population_registry"], ["contacts"], ["case_register", "population_registry"],
         ["case_register", "contacts"], ["population_registry", "contacts"], list(SOURCES)],
        weights=[0.16, 0.12, 0.10, 0.2, 0.16, 0.1, 0.16],
    )[0]
    systems = list(held)
    if "case_register" in systems and rng.random() < 0.3:
        systems.append("case_register")  # a second case
    if "contacts" in systems and rng.random() < 0.08:
        systems.append("contacts")  # entered twice
    return systems[:4]


def build(people: int = 1500, seed: int = 11, namesakes: float = 0.02) -> OtherShape:
    """The people, each system's rows and the ground truth, for a seed."""
    rng = random.Random(seed)
    names = Names()
    origins, weights = list(ORIGINS), list(ORIGINS.values())
    planted = int(people * namesakes)
    population: list[Person] = []
    taken: set[str] = set()  # email addresses in use
    for i in range(people - planted):
        population.append(_person(rng, names, taken, f"X{i:06d}", rng.choices(origins, weights)[0]))
    # Namesakes of people whose forename and surname are both common.
    surnames, forenames = Counter(p.surnames for p in population), Counter(p.call_name for p in population)
    common = sorted(population, key=lambda p: (-surnames[p.surnames] * forenames[p.call_name], p.person_id))
    for j, of in enumerate(rng.sample(common[: planted * 4], planted)):
        population.append(_namesake(rng, names, taken, f"X{people - planted + j:06d}", of))
    rng.shuffle(population)

    rows: dict[str, list[dict]] = {s: [] for s in SOURCES}
    truth: list[dict] = []
    used: set[str] = set()
    for person in population:
        for source in _systems(rng):
            rec = Record(rng, person, RATES[source])
            rid = _record_id(rng, source, used)
            rows[source].append(RENDER[source](rec, rid))
            truth.append({"source_system": source, "source_record_id": rid, "person_id": person.person_id,
                          "errors": ";".join(rec.errors) or None})
    for source in SOURCES:
        order = sorted(range(len(rows[source])), key=lambda k: rng.random())
        rows[source] = [rows[source][k] for k in order]
    return OtherShape(population, rows, truth)


# -- landing ----------------------------------------------------------------------------


def serialise(source: str, rows: list[dict]) -> tuple[str, bytes]:
    """(file name, bytes) of one system's extract in its native format."""
    if source == "population_registry":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        return f"registry_{BATCH_ID}.jsonl", text.encode("utf-8")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_COLUMNS[source], delimiter=DELIMITERS[source], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return f"{source}_{BATCH_ID}.csv", buf.getvalue().encode("utf-8")


TRUTH_SCHEMA = pa.schema([("source_system", pa.string()), ("source_record_id", pa.string()),
                          ("person_id", pa.string()), ("errors", pa.string())])


def land(lake: Lake, data: OtherShape) -> None:
    """Each system's extract under landing/<system>/<batch>/ beside its manifest, and the
    ground truth under truth/ (which the pipeline never reads)."""
    for source in SOURCES:
        name, body = serialise(source, data.rows[source])
        lake.write_bytes(body, "landing", source, BATCH_ID, name)
        entry = {"name": name, "kind": "extract", "rows": len(data.rows[source]), "bytes": len(body),
                 "sha256": hashlib.sha256(body).hexdigest()}
        lake.write_json(manifest(source, BATCH_ID, EXTRACTED_AT, [entry]), "landing", source, BATCH_ID, "manifest.json")
    lake.write_table(pa.Table.from_pylist(data.truth, schema=TRUTH_SCHEMA), "truth", "records", f"{BATCH_ID}.parquet")
