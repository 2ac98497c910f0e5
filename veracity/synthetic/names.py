"""Name pools with skewed frequencies, for a population like the West Midlands'.

Origins, their shares and their name lists are data (``data/names.yaml``): lists
from Faker's locales where Faker has them romanised, curated lists otherwise.
Where a Faker list carries weights they are used; otherwise a Zipf-like weight by
position makes a few names common and most rare, which is what makes matching hard.
"""

from __future__ import annotations

import bisect
import importlib
import itertools
import random
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parent / "data" / "names.yaml"
ZIPF_EXPONENT = 0.9


@dataclass(frozen=True)
class WeightedPool:
    values: tuple[str, ...]
    cumulative: tuple[float, ...]

    def draw(self, rng: random.Random) -> str:
        return self.values[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


@dataclass(frozen=True)
class Origin:
    name: str
    share: float
    male: WeightedPool
    female: WeightedPool
    last: WeightedPool

    def first(self, sex: str) -> WeightedPool:
        return self.male if sex == "M" else self.female


def _latin(name: str) -> bool:
    """Latin-script names only (accents allowed): systems here record romanised names."""
    return bool(name) and all(
        ch in " -'" or (ch.isalpha() and "LATIN" in unicodedata.name(ch, "")) for ch in name
    )


def _faker_list(spec: str) -> list[tuple[str, float | None]]:
    _, locale, attribute = spec.split(":")
    values = getattr(importlib.import_module(f"faker.providers.person.{locale}").Provider, attribute)
    if isinstance(values, dict):
        return [(str(k), float(v)) for k, v in values.items()]
    return [(str(v), None) for v in values]


def _pool(sources: list[str], lists: dict[str, list[str]]) -> WeightedPool:
    weighted: dict[str, float] = {}
    for source in sources:
        items = _faker_list(source) if source.startswith("faker:") else [(n, None) for n in lists[source]]
        items = [(n, w) for n, w in items if _latin(n)]
        # Curated lists come first and are weighted more; later sources extend the tail.
        scale = 1.0 / (1 + len(weighted))
        total = sum(w for _, w in items if w) or 1.0
        for rank, (name, weight) in enumerate(items):
            w = (weight / total if weight else 1.0 / (rank + 1) ** ZIPF_EXPONENT) * scale
            weighted[name] = weighted.get(name, 0.0) + w
    values = tuple(weighted)
    return WeightedPool(values, tuple(itertools.accumulate(weighted.values())))


@cache
def _data() -> dict:
    return yaml.safe_load(DATA.read_text(encoding="utf-8"))


@cache
def origins() -> tuple[Origin, ...]:
    data = _data()
    return tuple(
        Origin(name, float(o["share"]), _pool(o["male"], data["lists"]), _pool(o["female"], data["lists"]),
               _pool(o["last"], data["lists"]))
        for name, o in data["origins"].items()
    )


@cache
def _origin_cumulative() -> tuple[float, ...]:
    return tuple(itertools.accumulate(o.share for o in origins()))


def draw_origin(rng: random.Random) -> Origin:
    cumulative = _origin_cumulative()
    return origins()[bisect.bisect(cumulative, rng.random() * cumulative[-1])]


@cache
def variants() -> dict[str, tuple[str, ...]]:
    """Name -> the other spellings systems record it under."""
    out: dict[str, set[str]] = {}
    for group in _data()["variants"]:
        for name in group:
            out.setdefault(name, set()).update(n for n in group if n != name)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def female_surname(origin: Origin, surname: str) -> str:
    """Polish surnames agree with sex: Kowalski -> Kowalska."""
    if origin.name == "polish":
        for male, female in (("ski", "ska"), ("cki", "cka"), ("dzki", "dzka")):
            if surname.endswith(male):
                return surname[: -len(male)] + female
    return surname
