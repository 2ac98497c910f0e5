"""Crimes and incidents: dates with seasonality, areas with trends, and planted networks.

Everything here is a known answer for later analysis: each neighbourhood's trend
and each offence group's seasonality are declared below, and the members of each
planted offending network are written to the ground truth.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from veracity.synthetic.draws import choice, randint, randrange
from veracity.synthetic.population import HISTORY_START, REFERENCE_DATE, Person

# Home Office recorded-crime offence groups, with their share of offences and a
# seasonal amplitude (peaks in summer when positive, in winter when negative).
OFFENCE_GROUPS: tuple[tuple[str, float, float], ...] = (
    ("Violence against the person", 0.36, 0.25),
    ("Sexual offences", 0.04, 0.15),
    ("Robbery", 0.03, -0.2),
    ("Theft offences", 0.25, -0.1),
    ("Criminal damage and arson", 0.10, 0.1),
    ("Drug offences", 0.06, 0.0),
    ("Possession of weapons offences", 0.03, 0.1),
    ("Public order offences", 0.10, 0.3),
    ("Miscellaneous crimes against society", 0.03, 0.0),
)
INCIDENT_TYPES = ("Concern for safety", "Domestic incident", "Suspicious circumstances", "Anti-social behaviour", "Disturbance", "Road related")
ROLES = ("suspect", "victim", "witness", "associate")

# West Midlands neighbourhoods: (name, postcode district, yearly trend). A trend of
# +0.25 means about 25% more offences each year; negative trends fall.
NEIGHBOURHOODS: tuple[tuple[str, str, float], ...] = (
    ("Aston", "B6", 0.2), ("Handsworth", "B21", 0.1), ("Sparkbrook", "B11", 0.0), ("Erdington", "B23", -0.15),
    ("Small Heath", "B10", 0.05), ("Ladywood", "B16", 0.25), ("Digbeth", "B5", 0.3), ("Selly Oak", "B29", -0.2),
    ("Kings Heath", "B14", -0.1), ("Northfield", "B31", 0.0), ("Sutton Coldfield", "B73", -0.25), ("Yardley", "B26", 0.05),
    ("Coventry City Centre", "CV1", 0.2), ("Foleshill", "CV6", 0.1), ("Hillfields", "CV2", 0.0), ("Tile Hill", "CV4", -0.15),
    ("Wolverhampton City Centre", "WV1", 0.15), ("Whitmore Reans", "WV6", 0.0), ("Bilston", "WV14", -0.1),
    ("Walsall Town Centre", "WS1", 0.1), ("Bloxwich", "WS3", -0.05), ("Dudley Town", "DY1", 0.0), ("Brierley Hill", "DY5", -0.2),
    ("Stourbridge", "DY8", -0.1),
)
MONTHS = tuple(itertools.takewhile(lambda d: d < REFERENCE_DATE, (date(HISTORY_START.year + m // 12, m % 12 + 1, 1) for m in itertools.count())))

NETWORK_SHARE = 0.03  # of people who belong to a planted offending network
NETWORK_SIZES = (5, 40)


@dataclass(frozen=True)
class Event:
    ref: str
    kind: str  # crime | incident
    day: date
    group: str  # offence group or incident type
    neighbourhood: str


@dataclass(frozen=True)
class Network:
    network_id: str
    members: tuple[int, ...]  # indexes within the block


def event_ref(prefix: str, *key: object) -> str:
    digest = hashlib.blake2b(":".join(map(str, key)).encode(), digest_size=6).hexdigest().upper()
    return f"{prefix}{digest}"


@cache
def _month_cumulative(group_index: int, neighbourhood_index: int) -> tuple[float, ...]:
    _, _, amplitude = OFFENCE_GROUPS[group_index]
    trend = NEIGHBOURHOODS[neighbourhood_index][2]
    weights = []
    for i, month in enumerate(MONTHS):
        season = 1 + amplitude * math.cos(2 * math.pi * (month.month - 7) / 12)
        weights.append(season * (1 + trend) ** (i / 12))
    return tuple(itertools.accumulate(weights))


_GROUP_CUMULATIVE = tuple(itertools.accumulate(g[1] for g in OFFENCE_GROUPS))


@cache
def _near(district: str) -> tuple[int, ...]:
    return tuple(i for i, n in enumerate(NEIGHBOURHOODS) if n[1] == district or n[1][:2] == district[:2])


def neighbourhood_near(rng: random.Random, postcode: str | None) -> int:
    """Most offending happens near home: a neighbourhood in the home area if there is one."""
    if postcode and rng.random() < 0.6:
        near = _near(postcode.split(" ")[0])
        if near:
            return choice(rng, near)
    return randrange(rng, len(NEIGHBOURHOODS))


def crime(rng: random.Random, ref: str, neighbourhood: int, not_before: date, group: int | None = None) -> Event:
    if group is None:
        group = bisect.bisect(_GROUP_CUMULATIVE, rng.random() * _GROUP_CUMULATIVE[-1])
    cumulative = _month_cumulative(group, neighbourhood)
    month = MONTHS[bisect.bisect(cumulative, rng.random() * cumulative[-1])]
    day = max(not_before, month + timedelta(days=randrange(rng, 28)))
    day = min(day, REFERENCE_DATE - timedelta(days=1))
    return Event(ref, "crime", day, OFFENCE_GROUPS[group][0], NEIGHBOURHOODS[neighbourhood][0])


def incident(rng: random.Random, ref: str, neighbourhood: int, day: date) -> Event:
    return Event(ref, "incident", day, choice(rng, INCIDENT_TYPES), NEIGHBOURHOODS[neighbourhood][0])


def plan_networks(rng: random.Random, seed: int, block: int, people: list[Person]) -> list[Network]:
    """Offending networks among a block's people (members drawn from those aged 14-45)."""
    candidates = [i for i, p in enumerate(people) if 14 <= (REFERENCE_DATE - p.date_of_birth).days / 365.25 <= 45]
    mean_size = sum(NETWORK_SIZES) / 2
    expected = len(people) * NETWORK_SHARE / mean_size
    count = int(expected) + (rng.random() < expected - int(expected))
    networks: list[Network] = []
    for k in range(count):
        size = min(randint(rng, *NETWORK_SIZES), len(candidates))
        if size < NETWORK_SIZES[0]:
            break
        members = sorted(rng.sample(candidates, size))
        candidates = [c for c in candidates if c not in set(members)]
        networks.append(Network(f"N{seed}-{block:06d}-{k}", tuple(members)))
    return networks


def network_events(rng: random.Random, network: Network, people: list[Person]) -> list[tuple[Event, list[tuple[int, str]]]]:
    """The crimes a network commits together: 2-5 members each, around a home turf."""
    home = neighbourhood_near(rng, people[network.members[0]].residences[-1].address.postcode)
    not_before = max(people[m].active_from for m in network.members)
    events = []
    for e in range(len(network.members) * 2):
        area = home if rng.random() < 0.8 else randrange(rng, len(NEIGHBOURHOODS))
        event = crime(rng, event_ref("CR", network.network_id, e), area, not_before)
        cast = rng.sample(network.members, min(len(network.members), randint(rng, 2, 5)))
        events.append((event, [(m, "suspect" if i < 2 or rng.random() < 0.6 else "associate") for i, m in enumerate(cast)]))
    return events
