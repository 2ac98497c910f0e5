"""Name pools with skewed frequencies, built from name lists that ship with Faker.

The mix of origins loosely follows the West Midlands' population. Where a Faker list
carries weights they are used; otherwise a Zipf-like weight by list position makes a
few names common and most rare, which is what makes matching hard.
"""

from __future__ import annotations

import bisect
import importlib
import itertools
import random
from dataclasses import dataclass
from functools import cache

# (Faker locale, share of the population). Lists must be romanised.
ORIGINS: tuple[tuple[str, float], ...] = (
    ("en_GB", 0.66),
    ("en_IE", 0.06),
    ("en_IN", 0.12),
    ("en_PK", 0.06),
    ("yo_NG", 0.04),
    ("ro_RO", 0.03),
    ("sw", 0.03),
)


@dataclass(frozen=True)
class WeightedPool:
    values: tuple[str, ...]
    cumulative: tuple[float, ...]

    def draw(self, rng: random.Random) -> str:
        return self.values[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


def _pool(names) -> WeightedPool:
    if isinstance(names, dict):
        items = [(str(k), float(v)) for k, v in names.items()]
    else:
        items = [(str(n), 1.0 / (rank + 1) ** 0.8) for rank, n in enumerate(names)]
    items = [(n, w) for n, w in items if n.isascii() and n.replace("-", "").replace("'", "").isalpha()]
    values = tuple(n for n, _ in items)
    return WeightedPool(values, tuple(itertools.accumulate(w for _, w in items)))


@cache
def pools(locale: str) -> dict[str, WeightedPool]:
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    male = getattr(provider, "first_names_male", None) or provider.first_names
    female = getattr(provider, "first_names_female", None) or provider.first_names
    return {"M": _pool(male), "F": _pool(female), "last": _pool(provider.last_names)}


_ORIGIN_CUMULATIVE = tuple(itertools.accumulate(share for _, share in ORIGINS))


def draw_origin(rng: random.Random) -> str:
    return ORIGINS[bisect.bisect(_ORIGIN_CUMULATIVE, rng.random() * _ORIGIN_CUMULATIVE[-1])][0]
