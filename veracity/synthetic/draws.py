"""Cheap random draws for the generator's hot loops.

``random.Random.randint`` and friends do exact rejection sampling and cost several
microseconds each; at ten million records that dominates. These use one
``random()`` call each; their bias (under 2**-50) is irrelevant for synthetic data.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def randint(rng: random.Random, low: int, high: int) -> int:
    """An integer in [low, high], both inclusive."""
    return low + int(rng.random() * (high - low + 1))


def randrange(rng: random.Random, start: int, stop: int | None = None) -> int:
    """An integer in [start, stop), or in [0, start) when stop is omitted."""
    if stop is None:
        start, stop = 0, start
    return start + int(rng.random() * (stop - start))


def choice(rng: random.Random, seq: Sequence[T]) -> T:
    return seq[int(rng.random() * len(seq))]
