"""The error model: how a person's true details degrade when a system records them.

Rates are per record. Each system scales the base rates by its own quality factor
(see systems.py), so a hurried roadside system errs more than a custody suite.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from functools import cache

from nicknames import NickNamer

from veracity.synthetic.population import Person

# Base per-record rates at quality factor 1.0.
BASE_RATES: dict[str, float] = {
    "first_name_typo": 0.04,
    "last_name_typo": 0.03,
    "nickname": 0.06,
    "name_order_swap": 0.01,
    "middle_name_dropped": 0.5,
    "dob_missing": 0.03,
    "dob_day_month_swap": 0.015,
    "dob_digit_slip": 0.015,
    "dob_placeholder": 0.005,
    "stale_address": 0.25,
    "postcode_typo": 0.02,
    "postcode_missing": 0.05,
    "identifier_missing": 0.3,
}

_KEYBOARD_NEIGHBOURS = {
    "a": "qswz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc",
    "g": "ftyhbv", "h": "gyujnb", "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop",
    "m": "njk", "n": "bhjm", "o": "iklp", "p": "ol", "q": "wa", "r": "edft", "s": "awedxz",
    "t": "rfgy", "u": "yhji", "v": "cfgb", "w": "qase", "x": "zsdc", "y": "tghu", "z": "asx",
}


@dataclass
class RecordDraft:
    """One source record's view of a person, before a system renders it."""

    first_name: str
    middle_names: str
    last_name: str
    date_of_birth: date | None
    sex: str
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


def typo(rng: random.Random, word: str) -> str:
    if len(word) < 3:
        return word
    i = rng.randrange(1, len(word))
    kind = rng.random()
    if kind < 0.35:  # keyboard neighbour
        c = word[i].lower()
        sub = rng.choice(_KEYBOARD_NEIGHBOURS.get(c, c))
        return word[:i] + (sub.upper() if word[i].isupper() else sub) + word[i + 1 :]
    if kind < 0.6:  # dropped letter
        return word[:i] + word[i + 1 :]
    if kind < 0.85 and i < len(word) - 1:  # transposition
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i] + word[i:]  # doubled letter


@cache
def _nicknamer() -> NickNamer:
    return NickNamer()


def nickname(rng: random.Random, first_name: str) -> str:
    options = sorted(n for n in _nicknamer().nicknames_of(first_name.lower()) if len(n) > 2)
    return rng.choice(options).title() if options else first_name


def _slip_digit(rng: random.Random, d: date) -> date:
    try:
        if rng.random() < 0.5:
            return d.replace(day=max(1, min(28, d.day + rng.choice((-10, -1, 1, 10)))))
        return d.replace(year=d.year + rng.choice((-1, 1)))
    except ValueError:
        return d


def draft(rng: random.Random, person: Person, quality: float) -> RecordDraft:
    """The person as one record in a system with the given quality factor."""

    def hit(error: str) -> bool:
        return rng.random() < BASE_RATES[error] * quality

    first, last = person.first_name, person.last_name
    if hit("nickname"):
        first = nickname(rng, first)
    if hit("first_name_typo"):
        first = typo(rng, first)
    if hit("last_name_typo"):
        last = typo(rng, last)
    if hit("name_order_swap"):
        first, last = last, first
    middle = "" if rng.random() < BASE_RATES["middle_name_dropped"] else person.middle_names

    dob: date | None = person.date_of_birth
    if hit("dob_missing"):
        dob = None
    elif hit("dob_placeholder"):
        dob = date(1900, 1, 1)
    elif hit("dob_day_month_swap") and dob.day <= 12 and dob.day != dob.month:
        dob = dob.replace(day=dob.month, month=dob.day)
    elif hit("dob_digit_slip"):
        dob = _slip_digit(rng, dob)

    addresses = person.addresses
    address = addresses[-1]
    if len(addresses) > 1 and rng.random() < BASE_RATES["stale_address"]:
        address = rng.choice(addresses[:-1])
    postcode: str | None = address.postcode
    if hit("postcode_missing"):
        postcode = None
    elif hit("postcode_typo"):
        postcode = postcode[:-1] + rng.choice("ABDEFGHJLNPQRSTUWXYZ")

    def ident(value: str | None) -> str | None:
        if value is None or rng.random() < BASE_RATES["identifier_missing"]:
            return None
        return value

    return RecordDraft(
        first_name=first, middle_names=middle, last_name=last, date_of_birth=dob,
        sex=person.sex, address_line=address.line, town=address.town, postcode=postcode,
        phone=ident(person.phone), email=ident(person.email),
        pnc_id=ident(person.pnc_id), cro_number=ident(person.cro_number),
        ni_number=ident(person.ni_number), driving_licence=ident(person.driving_licence),
        aliases=person.aliases,
    )
