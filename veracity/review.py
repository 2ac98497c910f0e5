"""Clerical review: the queue of uncertain pairs, and reviewers' decisions.

A reviewer works through ``review_queue`` (e.g. ``veracity sql --out queue.csv
"SELECT * FROM review_queue"``), fills in ``decision`` (must_link or cannot_link)
and optionally ``reviewer`` and ``note``, and imports the file with ``veracity
review import FILE``. Decisions are kept in the lake (``review/decisions/``); every
later run honours the latest decision per pair, and published snapshots carry them
as ``clerical_decisions``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from veracity.errors import VeracityError
from veracity.lake import Lake
from veracity.schema import CLERICAL_DECISIONS, REVIEW_QUEUE

DECISIONS = ("must_link", "cannot_link")
ZONE = ("review", "decisions")


def all_decisions(lake: Lake) -> pa.Table:
    """Every decision ever imported, oldest first."""
    if not lake.exists(*ZONE):
        return CLERICAL_DECISIONS.empty()
    table = lake.dataset(*ZONE, schema=CLERICAL_DECISIONS.arrow_schema).to_table()
    return table.sort_by([("decided_at", "ascending"), ("unique_id_l", "ascending"), ("unique_id_r", "ascending")])


def current_decisions(lake: Lake) -> pa.Table:
    """The latest decision per pair: the ones runs honour."""
    con = duckdb.connect()
    con.register("decisions", all_decisions(lake))
    # decided_at ties (one file) cannot happen per pair: parse_decisions keeps one row per pair.
    return con.sql(
        """
        SELECT * FROM decisions
        QUALIFY row_number() OVER (PARTITION BY unique_id_l, unique_id_r ORDER BY decided_at DESC) = 1
        ORDER BY unique_id_l, unique_id_r
        """
    ).to_arrow_table().cast(CLERICAL_DECISIONS.arrow_schema)


def _read(path: str) -> pa.Table:
    if not os.path.isfile(path):
        raise VeracityError(f"{path}: no such file")
    try:
        if path.endswith(".parquet"):
            return pq.read_table(path)
        if path.endswith(".csv"):
            strings = {c: pa.string() for c in ("unique_id_l", "unique_id_r", "decision", "reviewer", "note")}
            return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=strings, strings_can_be_null=True))
    except (pa.ArrowInvalid, OSError) as exc:
        raise VeracityError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    raise VeracityError(f"{path}: use a .csv or .parquet file (e.g. the exported review_queue)")


def parse_decisions(table: pa.Table, source: str, now: datetime | None = None) -> pa.Table:
    """Validate reviewers' rows; rows with no decision are skipped (not yet reviewed).
    Any invalid row rejects the whole file, naming the rows, so nothing is half imported."""
    for column in ("unique_id_l", "unique_id_r", "decision"):
        if column not in table.column_names:
            raise VeracityError(f"{source}: no '{column}' column; import the exported review_queue with 'decision' filled in")
    now = now or datetime.now(UTC)
    rows, problems, seen = [], [], {}
    for number, row in enumerate(table.to_pylist(), start=2 if source.endswith(".csv") else 1):
        decision = (row.get("decision") or "").strip().lower()
        if not decision:
            continue
        left, right = (row.get("unique_id_l") or "").strip(), (row.get("unique_id_r") or "").strip()
        if decision not in DECISIONS:
            problems.append(f"row {number}: decision {decision!r} is not one of {', '.join(DECISIONS)}")
        elif ":" not in left or ":" not in right:
            problems.append(f"row {number}: record ids must be SOURCE:ID, got {left!r} and {right!r}")
        elif left == right:
            problems.append(f"row {number}: a record cannot be paired with itself ({left})")
        elif seen.get((min(left, right), max(left, right)), decision) != decision:
            problems.append(f"row {number}: {left} and {right} are given both decisions in this file")
        elif (min(left, right), max(left, right)) not in seen:
            seen[(min(left, right), max(left, right))] = decision
            rows.append({
                "unique_id_l": min(left, right), "unique_id_r": max(left, right), "decision": decision,
                "reviewer": (row.get("reviewer") or "").strip() or None, "note": (row.get("note") or "").strip() or None,
                "decided_at": now, "import_file": os.path.basename(source),
            })
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise VeracityError(f"{source}: nothing imported: {shown}")
    return pa.Table.from_pylist(rows, schema=CLERICAL_DECISIONS.arrow_schema)


def import_decisions(lake: Lake, path: str) -> pa.Table:
    """Record the decisions in ``path``; returns what was recorded."""
    decisions = parse_decisions(_read(path), path)
    if decisions.num_rows:
        stamp = decisions.column("decided_at")[0].as_py().strftime("%Y%m%dT%H%M%S%fZ")
        lake.write_table(decisions, *ZONE, f"decisions-{stamp}.parquet")
    return decisions


def review_queue(con: duckdb.DuckDBPyConnection, candidates: pa.Table, xref_ids: pa.Table, link_threshold: float,
                 out_dir: str) -> tuple[str, int]:
    """Write to ``out_dir``/review_queue.parquet the pairs a reviewer should look at:
    scored between the review floor and the link threshold, or above the threshold
    but refused by a cannot-link rule or split apart by a constraint; returns (the
    file, how many pairs). ``candidates`` are the scored pairs that ended in different
    persons and no reviewer has decided; ``xref_ids`` maps unique_id -> person_id.
    Most uncertain first. Streamed to the file: at ten million records the queue holds
    millions of pairs, with their evidence."""
    con.register("queue_pairs", candidates)
    con.register("queue_ids", xref_ids)
    queue = con.sql(
        f"""
        SELECT p.unique_id_l, p.unique_id_r, p.match_probability, p.match_weight,
               CASE WHEN p.match_probability < {link_threshold} THEN 'uncertain'
                    WHEN p.refused_by_rule THEN 'refused by rule' ELSE 'split by a constraint' END AS reason,
               il.person_id AS person_id_l, ir.person_id AS person_id_r,
               p.evidence, NULL AS decision, NULL AS reviewer, NULL AS note
        FROM queue_pairs p
        JOIN queue_ids il ON il.unique_id = p.unique_id_l
        JOIN queue_ids ir ON ir.unique_id = p.unique_id_r
        ORDER BY abs(p.match_probability - 0.5), p.unique_id_l, p.unique_id_r
        """
    )
    path, pairs = os.path.join(out_dir, "review_queue.parquet"), 0
    with pq.ParquetWriter(path, REVIEW_QUEUE.arrow_schema, compression="zstd") as writer:
        for batch in queue.to_arrow_reader():
            writer.write_batch(batch.cast(REVIEW_QUEUE.arrow_schema))
            pairs += batch.num_rows
    return path, pairs
