"""The error model: how a person's true details degrade when a system records them.

Rates are per record, at quality 1.0; each system scales them by its own quality
factor (systems.py) and some origins by their own (names written in another order).
Every error applied is recorded in the ground truth, so tests and benchmarks can
check that the rates land where they are configured.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from nicknames import NickNamer

from veracity import uk
from veracity.synthetic.draws import choice, randint, randrange
from veracity.synthetic.names import variants
from veracity.synthetic.population import Person

# Base per-record rates at quality factor 1.0. An error applies only where it can
# (a nickname needs a name that has one; a day/month swap needs a day <= 12).
BASE_RATES: dict[str, float] = {
    "first_name_typo": 0.03,
    "last_name_typo": 0.025,
    "phonetic_variant": 0.15,
    "nickname": 0.06,
    "name_order_swap": 0.01,
    "double_barrel_split": 0.3,
    "old_surname_after_marriage": 0.1,
    "alias_used": 0.05,
    "middle_name_dropped": 0.5,
    "dob_missing": 0.03,
    "dob_day_month_swap": 0.015,
    "dob_digit_slip": 0.015,
    "dob_placeholder": 0.005,
    "sex_missing": 0.02,
    "stale_address": 0.2,
    "postcode_typo": 0.02,
    "postcode_missing": 0.05,
    "identifier_missing": 0.3,
    "pnc_wrong": 0.002,
}
# Errors whose rate does not scale with a system's quality (they are habits, not slips).
UNSCALED = {"middle_name_dropped", "identifier_missing", "double_barrel_split"}
# Origins whose names are often written family name first.
ORDER_SWAP_FACTOR = {"chinese": 8.0}

_KEYBOARD_NEIGHBOURS = {
    "a": "qswz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc",
    "g": "ftyhbv", "h": "gyujnb", "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop",
    "m": "njk", "n": "bhjm", "o": "iklp", "p": "ol", "q": "wa", "r": "edft", "s": "awedxz",
    "t": "rfgy", "u": "yhji", "v": "cfgb", "w": "qase", "x": "zsdc", "y": "tghu", "z": "asx",
}
_OCR_CONFUSIONS = (("m", "rn"), ("rn", "m"), ("cl", "d"), ("d", "cl"), ("O", "0"), ("I", "1"), ("l", "1"), ("S", "5"), ("B", "8"), ("e", "c"), ("h", "b"))


@dataclass
class RecordDraft:
    """One source record's view of a person on a given day, before a system renders it."""

    first_name: str
    middle_names: str
    last_name: str
    date_of_birth: date | None
    sex: str | None
    address_line: str
    town: str
    postcode: str | None
    phone: str | None
    email: str | None
    pnc_id: str | None
    cro_number: str | None
    ni_number: str | None
    driving_licence: str | None
    aliases: tuple[str, ...]
    record_date: date
    event_ref: str = ""
    event_date: date | None = None
    event_group: str = ""
    neighbourhood: str = ""
    role: str = ""


def typo(rng: random.Random, word: str, ocr: bool = False) -> str:
    """A keyboard slip (neighbour key, dropped, swapped or doubled letter) or an OCR misread."""
    if len(word) < 3:
        return word
    if ocr:
        options = [(a, b) for a, b in _OCR_CONFUSIONS if a in word[1:]]
        if options:
            a, b = choice(rng, options)
            at = word.index(a, 1)
            return word[:at] + b + word[at + len(a) :]
    i = randrange(rng, 1, len(word))
    kind = rng.random()
    if kind < 0.35:
        c = word[i].lower()
        sub = choice(rng, _KEYBOARD_NEIGHBOURS.get(c, c))
        return word[:i] + (sub.upper() if word[i].isupper() else sub) + word[i + 1 :]
    if kind < 0.6:
        return word[:i] + word[i + 1 :]
    if kind < 0.85 and i < len(word) - 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i] + word[i:]


@cache
def _nicknamer() -> NickNamer:
    return NickNamer()


@cache
def nicknames_of(first_name: str) -> tuple[str, ...]:
    return tuple(sorted(n.title() for n in _nicknamer().nicknames_of(first_name.lower()) if len(n) > 2))


def _slip_digit(rng: random.Random, d: date) -> date:
    try:
        if rng.random() < 0.5:
            return d.replace(day=max(1, min(28, d.day + choice(rng, (-10, -1, 1, 10)))))
        return d.replace(year=d.year + choice(rng, (-1, 1)))
    except ValueError:
        return d


class ErrorModel:
    """Per-record error draws for one system."""

    def __init__(self, quality: float, ocr: bool = False):
        self.quality = quality
        self.ocr = ocr
        self.rates = {k: (v if k in UNSCALED else min(1.0, v * quality)) for k, v in BASE_RATES.items()}

    def draft(self, rng: random.Random, person: Person, day: date) -> tuple[RecordDraft, list[str]]:
        rates = self.rates
        applied: list[str] = []

        def hit(error: str, factor: float = 1.0) -> bool:
            if rng.random() < rates[error] * factor:
                applied.append(error)
                return True
            return False

        first = person.first_name
        last = person.surname_on(day)
        if person.maiden_name and last == person.last_name and hit("old_surname_after_marriage"):
            last = person.maiden_name
        if person.aliases and hit("alias_used"):
            alias_first, _, alias_last = person.aliases[0].partition(" ")
            first, last = alias_first, alias_last
        if first in variants() and hit("phonetic_variant"):
            first = choice(rng, variants()[first])
        elif last in variants() and hit("phonetic_variant"):
            last = choice(rng, variants()[last])
        if nicknames_of(first) and hit("nickname"):
            first = choice(rng, nicknames_of(first))
        if "-" in last and hit("double_barrel_split"):
            parts = last.split("-")
            last = choice(rng, (parts[-1], " ".join(parts)))
        if hit("first_name_typo"):
            first = typo(rng, first, self.ocr)
        if hit("last_name_typo"):
            last = typo(rng, last, self.ocr)
        if hit("name_order_swap", ORDER_SWAP_FACTOR.get(person.origin, 1.0)):
            first, last = last, first
        middle = person.middle_names
        if middle and hit("middle_name_dropped"):
            middle = ""

        dob: date | None = person.date_of_birth
        if hit("dob_missing"):
            dob = None
        elif hit("dob_placeholder"):
            dob = date(1900, 1, 1)
        elif dob.day <= 12 and dob.day != dob.month and hit("dob_day_month_swap"):
            dob = dob.replace(day=dob.month, month=dob.day)
        elif hit("dob_digit_slip"):
            dob = _slip_digit(rng, dob)

        sex: str | None = None if hit("sex_missing") else person.sex
        current = person.residence_index_on(day)
        address = person.residences[current].address
        if current > 0 and hit("stale_address"):
            address = person.residences[randrange(rng, current)].address
        postcode: str | None = address.postcode
        if hit("postcode_missing"):
            postcode = None
        elif hit("postcode_typo"):
            postcode = postcode[:-1] + choice(rng, uk.POSTCODE_UNIT_LETTERS)

        def ident(value: str | None) -> str | None:
            if value is None or rng.random() < rates["identifier_missing"]:
                return None
            return value

        pnc = ident(person.pnc_id)
        if pnc and hit("pnc_wrong"):
            pnc = uk.format_pnc_id(randint(rng, 0, 26), randint(rng, 1, 9_999_999))
        record = RecordDraft(
            first_name=first, middle_names=middle, last_name=last, date_of_birth=dob, sex=sex,
            address_line=address.line, town=address.town, postcode=postcode,
            phone=ident(person.phone), email=ident(person.email), pnc_id=pnc,
            cro_number=ident(person.cro_number), ni_number=ident(person.ni_number),
            driving_licence=ident(person.driving_licence), aliases=person.aliases, record_date=day,
        )
        return record, applied


def random_day(rng: random.Random, start: date, end: date) -> date:
    span = (end - start).days
    return start + timedelta(days=randrange(rng, span)) if span > 0 else start
