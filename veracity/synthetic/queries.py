"""Person searches as officers type them, with the person each one is looking for.

Each query starts from a source record of a known (synthetic) person, as that system
holds it, and gets one or two slips an officer makes on a phone: a typo in a name, a
nickname for the forename, forename and surname exchanged, only the year of birth,
or the postcode left out (a query keeps a whole date of birth, or its year and the
postcode, as an officer asks for them). The expected answer is the resolved person holding most of
that true person's records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pyarrow as pa

from veracity.lake import Lake
from veracity.search.index import restricted_sources
from veracity.sql import connect
from veracity.synthetic.errors import nicknames_of, typo

SLIPS = ("typo_first", "typo_last", "nickname", "swap", "year_only", "no_postcode")


@dataclass(frozen=True)
class KnownSearch:
    params: dict[str, str]
    expected_person_id: str
    slips: tuple[str, ...]


def _slip(rng: random.Random, params: dict[str, str], slip: str) -> bool:
    first, last = params.get("first_name"), params.get("last_name")
    if slip == "typo_first" and first and len(first) >= 4:
        params["first_name"] = typo(rng, first)
    elif slip == "typo_last" and last and len(last) >= 4:
        params["last_name"] = typo(rng, last)
    elif slip == "nickname" and first and nicknames_of(first.title()):
        params["first_name"] = rng.choice(nicknames_of(first.title())).upper()
    elif slip == "swap" and first and last:
        params["first_name"], params["last_name"] = last, first
    # An officer asks for a date of birth: a query keeps it whole, or keeps its
    # year and the postcode.
    elif slip == "year_only" and len(params.get("date_of_birth") or "") == 10 and params.get("postcode"):
        params["date_of_birth"] = params["date_of_birth"][:4]
    elif slip == "no_postcode" and params.get("postcode") and len(params.get("date_of_birth") or "") == 10:
        del params["postcode"]
    else:
        return False
    return True


def known_searches(lake: Lake, count: int, seed: int = 0, purpose: str = "BENCH/0001") -> list[KnownSearch]:
    """``count`` searches for distinct true persons of a synthetic lake's published snapshot."""
    if not lake.exists("truth", "records"):
        raise ValueError(f"no ground truth under {lake.display('truth')}: known searches need a synthetic lake")
    con = connect(lake)
    con.register("truth_records", lake.read_table("truth", "records"))
    # Officers see no restricted source: a search starts from what they may see.
    con.register("restricted", pa.table({"source_system": sorted(restricted_sources())}, schema=pa.schema([("source_system", pa.string())])))
    # The person the search should find: the resolved person holding most of the true person's records.
    rows = con.execute(f"""
        WITH truth AS (SELECT DISTINCT source_system, source_record_id, person_id AS true_id FROM truth_records),
        held AS (
            SELECT t.true_id, x.person_id, count(*) AS records FROM truth t
            JOIN person_xref x USING (source_system, source_record_id) GROUP BY ALL),
        expected AS (SELECT true_id, arg_max(person_id, records) AS person_id FROM held GROUP BY true_id),
        picked AS (
            SELECT t.true_id, c.first_name, c.last_name, c.date_of_birth, c.postcode
            FROM truth t JOIN clean_person c USING (source_system, source_record_id)
            WHERE c.first_name IS NOT NULL AND c.last_name IS NOT NULL AND c.date_of_birth IS NOT NULL
              AND c.source_system NOT IN (SELECT * FROM restricted)
            QUALIFY row_number() OVER (PARTITION BY t.true_id ORDER BY hash(c.unique_id, {int(seed)})) = 1)
        SELECT p.*, e.person_id FROM picked p JOIN expected e USING (true_id)
        ORDER BY hash(p.true_id, {int(seed)}) LIMIT {int(count)}
    """).fetchall()
    rng = random.Random(seed)
    out = []
    for _true_id, first, last, dob, postcode, person_id in rows:
        params = {"first_name": first, "last_name": last, "purpose": purpose}
        if dob is not None:
            params["date_of_birth"] = dob.isoformat()
        if postcode is not None:
            params["postcode"] = postcode
        slips: list[str] = []
        wanted = 1 if rng.random() < 0.6 else 2
        for slip in rng.sample(SLIPS, len(SLIPS)):
            if len(slips) == wanted:
                break
            if _slip(rng, params, slip):
                slips.append(slip)
        out.append(KnownSearch(params, person_id, tuple(slips)))
    return out
