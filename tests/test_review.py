"""Trained models are saved and reused; reviewers' decisions are honoured by every
later run; explain shows the evidence for a pair."""

from __future__ import annotations

import csv
import shutil

import duckdb
import pyarrow.parquet as pq
import pytest

from veracity.cli import main
from veracity.errors import VeracityError
from veracity.lake import Lake
from veracity.matching.incremental import PairLayer
from veracity.matching.model import LINK_THRESHOLD
from veracity.pipeline import PreviousState, run
from veracity.review import import_decisions
from veracity.schema import REVIEW_QUEUE
from veracity.snapshots import read_snapshot
from veracity.sql import query
from veracity.synthetic import generate


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    lake = Lake.open(str(tmp_path_factory.mktemp("review-lake")), create=True)
    generate(lake, 200, seed=11)
    run(lake)
    return lake


def _write_csv(path, rows: list[dict]) -> str:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["unique_id_l", "unique_id_r", "decision", "reviewer", "note"])
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def _person(lake: Lake, unique_id: str) -> str:
    return query(lake, f"SELECT person_id FROM person_xref WHERE source_system || ':' || source_record_id = '{unique_id}'").column(0)[0].as_py()


def test_the_review_queue_is_published_most_uncertain_first(lake):
    [name] = read_snapshot(lake)["tables"]["review_queue"]
    queue = pq.read_table(lake.path(name))
    assert queue.schema == REVIEW_QUEUE.arrow_schema and queue.num_rows > 0
    distances = [abs(p - 0.5) for p in queue.column("match_probability").to_pylist()]
    assert distances == sorted(distances)
    con = duckdb.connect()
    con.register("queue", queue)
    con.register("pairs", query(lake, "SELECT * FROM match_pairs"))
    reasons = con.execute(f"""
        SELECT q.reason, CASE WHEN p.match_probability < {LINK_THRESHOLD} THEN 'uncertain'
                              WHEN p.refused_by_rule THEN 'refused by rule' ELSE 'split by a constraint' END AS expected
        FROM queue q JOIN pairs p USING (unique_id_l, unique_id_r)""").fetchall()
    assert len(reasons) == queue.num_rows and all(got == expected for got, expected in reasons)
    assert {"uncertain", "refused by rule"} <= {got for got, _ in reasons}
    stats = query(lake, "SELECT review_queue FROM run_stats WHERE source_system = '*'").column(0).to_pylist()
    assert stats == [queue.num_rows]


# Queued pairs whose evidence is not their scored pair's (or that have no scored pair).
QUEUE_EVIDENCE_MISMATCHES = """
    SELECT q.unique_id_l, q.unique_id_r, q.evidence FROM review_queue q
    LEFT JOIN match_pairs p USING (unique_id_l, unique_id_r)
    WHERE q.evidence IS DISTINCT FROM p.evidence OR p.evidence IS NULL"""


@pytest.mark.parametrize("layers_read_by_row", [True, False], ids=["local files", "remote layers"])
def test_pairs_a_split_parts_are_queued_with_their_evidence(lake, tmp_path, monkeypatch, layers_read_by_row):
    """A reviewer's cannot-link splits a person: the scored pairs across the split,
    inside one person until now, go to the queue with the evidence they were scored with
    (fetched by row number from a local lake's files, or searched for in a remote lake's)."""
    lake = Lake.open(str(shutil.copytree(lake.root, tmp_path / "lake")))
    if not layers_read_by_row:
        layers = PreviousState.pair_layers
        monkeypatch.setattr(PreviousState, "pair_layers",
                            lambda self: [PairLayer(layer.relation, layer.removed_by) for layer in layers(self)])
    trio = query(lake, """
        WITH members AS (SELECT person_id, source_system || ':' || source_record_id AS unique_id FROM person_xref),
        sizes AS (SELECT person_id, count(*) AS n FROM members GROUP BY 1 HAVING n >= 3),
        paired AS (SELECT l.person_id, count(*) AS pairs FROM match_pairs p
                   JOIN members l ON l.unique_id = p.unique_id_l JOIN members r ON r.unique_id = p.unique_id_r
                   WHERE l.person_id = r.person_id GROUP BY 1)
        SELECT m.person_id, list(m.unique_id ORDER BY m.unique_id) AS records
        FROM members m JOIN sizes s USING (person_id) JOIN paired p USING (person_id)
        WHERE p.pairs = s.n * (s.n - 1) / 2  -- every two of its records scored
        GROUP BY 1 ORDER BY 1 LIMIT 1""").to_pylist()[0]
    records = trio["records"]
    path = _write_csv(tmp_path / "decisions.csv", [
        {"unique_id_l": records[0], "unique_id_r": records[1], "decision": "cannot_link"}])
    assert main(["review", "import", "--lake", lake.root, path]) == 0
    assert run(lake).mode == "incremental"
    assert _person(lake, records[0]) != _person(lake, records[1])
    ids = ", ".join(f"'{r}'" for r in records)
    parted = query(lake, f"""
        SELECT reason FROM review_queue WHERE unique_id_l IN ({ids}) AND unique_id_r IN ({ids})""").column(0).to_pylist()
    assert parted and set(parted) <= {"uncertain", "split by a constraint"}
    assert "split by a constraint" in parted  # strong pairs the reviewer's ruling cut, not refused by a rule
    assert query(lake, QUEUE_EVIDENCE_MISMATCHES).to_pylist() == []


def test_the_trained_model_is_saved_with_its_summary_and_reused(lake):
    pointer = lake.read_json("models", "CURRENT.json")
    summary = lake.read_json("models", pointer["version"], "training_summary.json")
    assert summary["records"] > 1000 and 0 < summary["probability_two_random_records_match"] < 1
    assert [s["outcome"] for s in summary["em_sessions"]].count("trained") >= 2
    assert summary["fingerprint"] == pointer["fingerprint"]
    assert "comparisons" in lake.read_json("models", pointer["version"], "model.json")
    stats = query(lake, "SELECT model_version, comparisons, links FROM run_stats WHERE source_system = '*'").to_pylist()
    assert stats[0]["model_version"] == pointer["version"] and stats[0]["comparisons"] >= stats[0]["links"] > 0


def test_review_decisions_are_honoured_by_the_next_run(lake, tmp_path):
    first_run = lake.read_json("curated", "CURRENT.json")["run_id"]
    model_version = lake.read_json("models", "CURRENT.json")["version"]
    together = query(lake, """
        SELECT min(source_system || ':' || source_record_id) AS a, max(source_system || ':' || source_record_id) AS b
        FROM person_xref GROUP BY person_id HAVING count(*) = 2 ORDER BY person_id LIMIT 1""").to_pylist()[0]
    apart = query(lake, """
        SELECT q.unique_id_l AS a, q.unique_id_r AS b FROM review_queue q
        JOIN clean_person l ON l.unique_id = q.unique_id_l JOIN clean_person r ON r.unique_id = q.unique_id_r
        WHERE l.pnc_id IS NULL OR r.pnc_id IS NULL  -- no decision may give a person two PNC ids
        ORDER BY q.unique_id_l, q.unique_id_r LIMIT 1""").to_pylist()[0]
    assert _person(lake, together["a"]) == _person(lake, together["b"])
    before = {_person(lake, apart["a"]), _person(lake, apart["b"])}
    assert len(before) == 2
    path = _write_csv(tmp_path / "decisions.csv", [
        {"unique_id_l": together["b"], "unique_id_r": together["a"], "decision": "cannot_link", "reviewer": "PC 123", "note": "different tattoos"},
        {"unique_id_l": apart["a"], "unique_id_r": apart["b"], "decision": "must_link", "reviewer": "PC 123"},
        {"unique_id_l": "crime:1", "unique_id_r": "crime:2", "decision": ""},  # not reviewed yet: skipped
    ])
    assert main(["review", "import", "--lake", lake.root, path]) == 0

    summary = run(lake)  # no new batches, but new decisions: a new snapshot
    assert summary is not None and summary.run_id != first_run and summary.totals.batches == 0
    assert _person(lake, together["a"]) != _person(lake, together["b"])
    assert _person(lake, apart["a"]) == _person(lake, apart["b"])
    assert summary.model_version == model_version  # the saved model, not retrained
    decided = query(lake, "SELECT unique_id_l, decision, reviewer, note FROM clerical_decisions ORDER BY decision").to_pylist()
    assert decided == [
        {"unique_id_l": together["a"], "decision": "cannot_link", "reviewer": "PC 123", "note": "different tattoos"},
        {"unique_id_l": min(apart["a"], apart["b"]), "decision": "must_link", "reviewer": "PC 123", "note": None},
    ]
    queued = query(lake, f"SELECT count(*) FROM review_queue WHERE unique_id_l = '{apart['a']}' AND unique_id_r = '{apart['b']}'")
    assert queued.column(0)[0].as_py() == 0
    events = query(lake, f"SELECT event, person_id, other_person_id FROM person_id_history WHERE run_id = '{summary.run_id}'").to_pylist()
    # the must-link moved records between the two persons' ids; the cannot-link split one off
    assert any({e["person_id"], e["other_person_id"]} == before and e["event"] in ("merged", "split") for e in events), events
    parts = {_person(lake, together["a"]), _person(lake, together["b"])}
    assert any(e["event"] == "split" and {e["person_id"], e["other_person_id"]} == parts for e in events), events
    assert run(lake) is None  # nothing new since


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"unique_id_l": "crime:1", "unique_id_r": "crime:2", "decision": "maybe"}], "not one of must_link, cannot_link"),
        ([{"unique_id_l": "crime1", "unique_id_r": "crime:2", "decision": "must_link"}], "SOURCE:ID"),
        ([{"unique_id_l": "crime:1", "unique_id_r": "crime:1", "decision": "must_link"}], "with itself"),
        ([{"unique_id_l": "crime:1", "unique_id_r": "crime:2", "decision": "must_link"},
          {"unique_id_l": "crime:2", "unique_id_r": "crime:1", "decision": "cannot_link"}], "both decisions"),
    ],
)
def test_a_bad_decision_file_imports_nothing(lake, tmp_path, rows, message):
    before = lake.list_files("review", "decisions") if lake.exists("review", "decisions") else []
    with pytest.raises(VeracityError, match=message):
        import_decisions(lake, _write_csv(tmp_path / "bad.csv", [{"unique_id_l": "crime:7", "unique_id_r": "crime:8", "decision": "must_link"}, *rows]))
    after = lake.list_files("review", "decisions") if lake.exists("review", "decisions") else []
    assert after == before


def test_a_decision_file_without_the_columns_is_refused(lake, tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("left,right\na:1,b:2\n")
    with pytest.raises(VeracityError, match="no 'unique_id_l' column"):
        import_decisions(lake, str(path))
    with pytest.raises(VeracityError, match="no such file"):
        import_decisions(lake, str(tmp_path / "missing.csv"))


def test_explain_prints_the_evidence_and_saves_the_waterfall(lake, tmp_path, capsys):
    pair = query(lake, "SELECT unique_id_l, unique_id_r, match_weight FROM match_pairs ORDER BY match_weight DESC LIMIT 1").to_pylist()[0]
    html = tmp_path / "pair.html"
    assert main(["explain", "--lake", lake.root, "--html", str(html), pair["unique_id_l"], pair["unique_id_r"]]) == 0
    text = capsys.readouterr().out
    assert "first_name" in text and "date_of_birth" in text and "prior" in text
    assert f"{pair['match_weight']:+.2f}" in text  # the same score the run gave the pair
    page = html.read_text()
    assert "<html" in page and "vega" in page and "<script src=" not in page  # self-contained
    assert main(["explain", "--lake", lake.root, pair["unique_id_l"], "crime:NOPE"]) == 1


def test_train_saves_a_new_model_that_the_next_run_uses(lake, capsys):
    before = lake.read_json("models", "CURRENT.json")["version"]
    assert main(["train", "--lake", lake.root]) == 0
    after = lake.read_json("models", "CURRENT.json")["version"]
    assert after != before and "trained on" in capsys.readouterr().out
    summary = run(lake)
    assert summary is not None and summary.model_version == after
