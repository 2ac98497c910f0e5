"""Person search and the person page, over a serving index, for one user.

A search turns the query into a clean record (and, to find candidates, into its
variants: forename and surname swapped, the full forms of a nickname), looks up the
records sharing a search key with any of them, scores the query against each with
the linkage model, and ranks persons by their best-scoring record. Records of a
restricted source are never candidates for a user not cleared for them, and fields
a user's groups may not see are withheld, as Lake Formation withholds the columns.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pyarrow as pa

from veracity.errors import VeracityError
from veracity.matching import model
from veracity.schema import CLEAN_PERSON, PERSON
from veracity.scrub import standardise as std
from veracity.search.auth import User
from veracity.search.index import SnapshotIndex, query_keys, restricted_sources
from veracity.search.query import SearchQuery
from veracity.search.scoring import Scorer

RESULTS = 10
MIN_PROBABILITY = 0.01  # below this a candidate is not shown at all
NICKNAME_VARIANTS = 4
SUMMARY_FIELDS = ("first_name", "last_name", "date_of_birth", "postcode")


class NotFound(Exception):
    pass


@dataclass
class Redirect:
    person_id: str  # the survivor a merged-away id now belongs to


class SearchService:
    """Search and person pages over a serving index: ``SnapshotIndex`` locally,
    ``dynamo.DynamoIndex`` in AWS (the same methods)."""

    def __init__(self, index: SnapshotIndex):
        if index.trained is None:
            raise VeracityError("the published snapshot was made without a trained model (too few records): "
                                "search scores with the model")
        self.index = index
        self.restricted = restricted_sources()
        sample = model.prepare(index.records.slice(0, 1).drop_columns(["person_id", "source_system"]))
        self.scorer = Scorer(index.trained, index.with_tf(sample))

    def hidden_sources(self, user: User) -> frozenset[str]:
        return frozenset() if user.may_see("restricted") else frozenset(self.restricted)

    # -- search -----------------------------------------------------------
    def _variants(self, records: pa.Table) -> pa.Table:
        """The query's records, and the first with each full form of its forename
        (BOB: ROBERT), whose keys reach records holding the full form."""
        record = records.slice(0, 1)
        canonical = record.column("forename_canonical")[0].as_py()
        first = record.column("first_name")[0].as_py()
        variants = [records] + [
            _replace(record, first_name=full, first_name_metaphone=std.metaphone(pa.array([full]))[0].as_py())
            for full in (canonical.split("|") if canonical else [])[:NICKNAME_VARIANTS] if full != first]
        return pa.concat_tables(variants)

    def search(self, query: SearchQuery, user: User) -> list[dict]:
        records = query.as_records()
        record = records.slice(0, 1)
        variants = self._variants(records)
        candidates = self.index.candidates(query_keys(variants.to_pylist()), self.hidden_sources(user))
        if candidates.num_rows == 0:
            return []
        scored = self.scorer.score(
            self.index.with_tf(model.prepare(record.select(list(CLEAN_PERSON.column_names)))),
            model.prepare(candidates.drop_columns(["person_id", "source_system"])),
        )
        person_of = dict(zip(candidates.column("unique_id").to_pylist(), candidates.column("person_id").to_pylist(), strict=True))
        best: dict[str, dict] = {}
        for row in scored.to_pylist():
            person = person_of[row["unique_id_r"]]
            if person not in best or row["match_weight"] > best[person]["match_weight"]:
                best[person] = row
        ranked = sorted(best.items(), key=lambda item: (-item[1]["match_weight"], item[0]))
        ranked = [(p, r) for p, r in ranked if r["match_probability"] >= MIN_PROBABILITY][:RESULTS]
        summaries = self.index.person_summaries([p for p, _ in ranked])
        return [self._result(person, row, summaries.get(person, {}), user) for person, row in ranked]

    def _result(self, person_id: str, row: dict, summary: dict, user: User) -> dict:
        hidden = self.hidden_sources(user)
        provenance = json.loads(summary.get("provenance") or "{}")
        shown = {f: (None if (provenance.get(f) or {}).get("source_system") in hidden else summary.get(f)) for f in SUMMARY_FIELDS}
        name = " ".join(v for v in (shown["first_name"], shown["last_name"]) if v)
        sources = [s for s in (summary.get("source_systems") or "").split(";") if s and s not in hidden]
        return {
            "person_id": person_id,
            "score": round(row["match_probability"], 4),
            "match_weight": round(row["match_weight"], 2),
            "name": name or None,
            "date_of_birth": shown["date_of_birth"].isoformat() if shown["date_of_birth"] else None,
            "postcode": shown["postcode"],
            "sources": sources,
            "why": self.why(row),
        }

    def why(self, row: dict) -> list[str]:
        """The evidence of a scored pair, strongest first: one line per comparison with a value on both sides."""
        lines = []
        for name in self.scorer.comparisons:
            gamma = row.get(f"gamma_{name}")
            if gamma is None or gamma == -1:
                continue
            weight = (row.get(f"mw_{name}") or 0.0) + (row.get(f"mw_tf_adj_{name}") or 0.0)
            level = self.scorer.levels.get((name, gamma))
            lines.append((weight, f"{name.replace('_', ' ')}: {level.label if level else gamma} ({weight:+.1f})"))
        return [text for _, text in sorted(lines, key=lambda x: -abs(x[0]) if math.isfinite(x[0]) else 0)]

    # -- person page ------------------------------------------------------
    def person(self, person_id: str, user: User) -> dict | Redirect:
        current = self.index.survivor(person_id)
        if current is None:
            raise NotFound(person_id)
        if current != person_id:
            return Redirect(current)
        tables = self.index.person_tables(person_id)
        hidden = self.hidden_sources(user)
        withheld: set[str] = set()
        golden = tables["person"]
        provenance = json.loads(golden.get("provenance") or "{}")
        for column in PERSON.columns:
            source = (provenance.get(column.name) or {}).get("source_system")
            if not user.may_see(column.sensitivity) or source in hidden:
                if golden.get(column.name) is not None:
                    withheld.add(f"person.{column.name}")
                golden[column.name] = None
        golden["provenance"] = json.dumps({f: p for f, p in provenance.items() if p.get("source_system") not in hidden and golden.get(f) is not None})
        golden["source_systems"] = ";".join(s for s in (golden.get("source_systems") or "").split(";") if s not in hidden)
        golden["records_by_system"] = json.dumps({s: n for s, n in json.loads(golden.get("records_by_system") or "{}").items() if s not in hidden})
        records = []
        for record in tables["records"]:
            if record["source_system"] in hidden:
                withheld.add("records of restricted sources")
                continue
            for column in CLEAN_PERSON.columns:
                if column.name in record and not user.may_see(column.sensitivity):
                    if record[column.name] is not None:
                        withheld.add(f"records.{column.name}")
                    record[column.name] = None
            records.append(record)
        golden["record_count"] = len(records)

        def visible(rows: list[dict]) -> list[dict]:
            out = []
            for r in rows:
                systems = [s for s in (r.get("source_systems") or "").split(";") if s not in hidden]
                if systems:
                    out.append({**r, "source_systems": ";".join(systems)})
                else:
                    withheld.add("aliases and addresses held only by restricted sources")
            return out

        return {
            "person": golden,
            "records": records,
            "aliases": visible(tables["aliases"]),
            "addresses": visible(tables["addresses"]),
            "associations": tables["associations"],
            "withheld": sorted(withheld),
            "snapshot": self.index.run_id,
        }


def _replace(record: pa.Table, **values) -> pa.Table:
    for name, value in values.items():
        i = record.schema.get_field_index(name)
        record = record.set_column(i, name, pa.array([value] * record.num_rows, record.schema.field(i).type))
    return record

