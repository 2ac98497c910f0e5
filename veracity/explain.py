"""Why two records are, or are not, one person: the model's evidence for the pair.

Scores the pair with the model the published snapshot used (so the figures match
``match_pairs``), adds what the snapshot did with it (linked, refused by a rule,
a reviewer's decision) and can save Splink's waterfall chart as one HTML file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from veracity.errors import VeracityError
from veracity.lake import Lake
from veracity.matching import model, model_store
from veracity.matching.resolve import linker_for
from veracity.review import current_decisions
from veracity.snapshots import read_snapshot
from veracity.sql import connect

SHOWN_FIELDS = ("first_name", "middle_names", "last_name", "aliases", "date_of_birth", "birth_year", "sex",
                "address", "postcode", "pnc_id", "cro_number", "ni_number", "driving_licence", "phone", "email", "other_id")


@dataclass
class Evidence:
    comparison: str
    level: str
    match_weight: float


@dataclass
class Explanation:
    left: dict
    right: dict
    prior_weight: float
    evidence: list[Evidence]
    match_weight: float
    match_probability: float
    found_by_blocking: bool
    refused_by_rule: bool
    person_left: str | None
    person_right: str | None
    decision: str | None
    model_version: str
    run_id: str

    @property
    def linked(self) -> bool:
        return self.person_left is not None and self.person_left == self.person_right

    def as_text(self) -> str:
        width = max(len(f) for f in SHOWN_FIELDS)
        lines = [f"{'':{width}}  {self.left['unique_id']:<32} {self.right['unique_id']}"]
        for f in SHOWN_FIELDS:
            a, b = self.left.get(f), self.right.get(f)
            if a is None and b is None:
                continue
            lines.append(f"{f:<{width}}  {'-' if a is None else str(a):<32} {'-' if b is None else str(b)}")
        lines += ["", f"{'evidence':<{width}}  {'level':<40} match weight",
                  f"{'prior (λ)':<{width}}  {'':<40} {self.prior_weight:+.2f}"]
        lines += [f"{e.comparison:<{width}}  {e.level:<40} {e.match_weight:+.2f}" for e in self.evidence]
        lines += [f"{'total':<{width}}  {'':<40} {self.match_weight:+.2f}  (probability {self.match_probability:.4f})", ""]
        status = (f"one person ({self.person_left})" if self.linked
                  else f"different persons ({self.person_left or '-'} and {self.person_right or '-'})")
        lines.append(f"snapshot {self.run_id} (model {self.model_version}): {status}")
        lines.append(f"link threshold {model.LINK_THRESHOLD}; "
                     + ("found by the blocking rules" if self.found_by_blocking else "not found by any blocking rule, so never scored in a run"))
        if self.refused_by_rule:
            lines.append("a cannot-link rule refuses this pair (see CANNOT_LINK_SQL in veracity/matching/model.py)")
        if self.decision:
            lines.append(f"a reviewer decided: {self.decision}")
        return "\n".join(lines)


def _record(records: pa.Table, unique_id: str) -> pa.Table:
    if ":" not in unique_id:
        raise VeracityError(f"{unique_id!r}: give records as SOURCE:ID, e.g. custody:C000123")
    found = records.filter(pc.equal(records.column("unique_id"), unique_id))
    if found.num_rows == 0:
        raise VeracityError(f"{unique_id}: no such record in the published snapshot")
    return found


def explain(lake: Lake, left_id: str, right_id: str, chart_path: str | None = None) -> Explanation:
    snapshot = read_snapshot(lake)
    version = snapshot.get("model_version")
    if not version:
        raise VeracityError("the published snapshot was made without a trained model (too few records to match)")
    trained = model_store.load(lake, version)
    con = connect(lake)
    records = con.sql("SELECT * FROM clean_person").to_arrow_table()
    left, right = _record(records, left_id), _record(records, right_id)
    linker = linker_for(duckdb.connect(), records, trained.model_json, keep_values=chart_path is not None)
    api = linker._db_api
    scored = linker.inference.score_pair(
        api.register(model.prepare(left), table_name="explain_left"),
        api.register(model.prepare(right), table_name="explain_right"),
        include_found_by_blocking_rules=True,
    ).as_record_list()[0]
    evidence = []
    for comparison in linker._settings_obj.comparisons:
        name = comparison.output_column_name
        gamma = scored.get(f"gamma_{name}")
        label = next((lv.label_for_charts for lv in comparison.comparison_levels if lv.comparison_vector_value == gamma), "?")
        weight = (scored.get(f"mw_{name}") or 0.0) + (scored.get(f"mw_tf_adj_{name}") or 0.0)
        evidence.append(Evidence(name, label, weight))
    if chart_path:
        linker.visualisations.waterfall_chart([scored], filter_nulls=False).save(chart_path, inline=True)

    pair = pa.concat_tables([left, right])
    con.register("pair", model.prepare(pair))
    refused = con.execute(
        f"SELECT {model.CANNOT_LINK_SQL} FROM pair l, pair r WHERE l.unique_id = ? AND r.unique_id = ?", [left_id, right_id]
    ).fetchone()[0]
    xref = con.execute(
        "SELECT source_system || ':' || source_record_id, person_id FROM person_xref "
        "WHERE source_system || ':' || source_record_id IN (?, ?)", [left_id, right_id]
    ).fetchall()
    persons = dict(xref)
    decisions = current_decisions(lake)
    low, high = min(left_id, right_id), max(left_id, right_id)
    decided = decisions.filter(pc.and_(pc.equal(decisions.column("unique_id_l"), low), pc.equal(decisions.column("unique_id_r"), high)))
    prior = trained.model_json["probability_two_random_records_match"]
    return Explanation(
        left=left.to_pylist()[0], right=right.to_pylist()[0], prior_weight=math.log2(prior / (1 - prior)),
        evidence=evidence, match_weight=scored["match_weight"], match_probability=scored["match_probability"],
        found_by_blocking=bool(scored.get("found_by_blocking_rules")), refused_by_rule=bool(refused),
        person_left=persons.get(left_id), person_right=persons.get(right_id),
        decision=decided.column("decision")[0].as_py() if decided.num_rows else None,
        model_version=version, run_id=snapshot["run_id"],
    )
