"""Stable person ids: unchanged by unrelated records, the older id survives a merge,
the larger part keeps the id on a split, and every change is in the history."""

import pyarrow as pa

from veracity.matching.identity import assign
from veracity.matching.resolve import person_id_for
from veracity.schema import PERSON_ID_HISTORY


def _clusters(groups: list[list[str]]) -> pa.Table:
    rows = [(u, f"c{i}") for i, g in enumerate(groups) for u in g]
    return pa.table({"unique_id": [u for u, _ in rows], "cluster_id": [c for _, c in rows]})


def _run(groups, previous: dict[str, str], history: pa.Table, run_id: str):
    prev = pa.table({"unique_id": list(previous), "person_id": list(previous.values())}, schema=pa.schema(
        [("unique_id", pa.string()), ("person_id", pa.string())]))
    ids, events = assign(_clusters(groups), prev, history, run_id)
    by_cluster = dict(zip(ids.column("cluster_id").to_pylist(), ids.column("person_id").to_pylist(), strict=True))
    mapping = {u: by_cluster[c] for u, c in zip(*_clusters(groups).to_pydict().values(), strict=True)}
    return mapping, pa.concat_tables([history, events]), events.to_pylist()


def _first_run(groups):
    return _run(groups, {}, PERSON_ID_HISTORY.empty(), "r1")


def test_the_same_data_gives_the_same_ids():
    groups = [["a:1", "b:1"], ["a:2"], ["c:9", "a:3"]]
    first, _, events = _first_run(groups)
    assert first == _first_run(groups)[0]
    assert first["a:1"] == person_id_for("a:1") and first["a:3"] == person_id_for("a:3")
    assert [e["event"] for e in events] == ["created"] * 3
    again, _, events = _run(groups, first, _first_run(groups)[1], "r2")
    assert again == first and events == []


def test_unrelated_new_records_change_no_id_even_when_they_sort_first():
    first, history, _ = _first_run([["b:1", "c:1"], ["d:1"]])
    # a:0 joins b:1's person and sorts before it; a:9 is someone new
    second, _, events = _run([["a:0", "b:1", "c:1"], ["d:1"], ["a:9"]], first, history, "r2")
    assert second["b:1"] == second["a:0"] == first["b:1"] and second["d:1"] == first["d:1"]
    assert [(e["event"], e["person_id"]) for e in events] == [("created", second["a:9"])]


def test_on_a_merge_the_older_id_survives():
    first, history, _ = _first_run([["x:5", "x:6"]])
    second, history, _ = _run([["x:5", "x:6"], ["a:1"]], first, history, "r2")  # a:1's id is newer
    third, _, events = _run([["x:5", "x:6", "a:1"]], second, history, "r3")
    assert third["a:1"] == first["x:5"]  # the older id, though a:1 sorts first
    assert events == [{"run_id": "r3", "event": "merged", "person_id": first["x:5"], "other_person_id": second["a:1"], "records": 1}]


def test_on_a_split_the_larger_part_keeps_the_id_and_the_rest_is_new():
    first, history, _ = _first_run([["a:1", "b:1", "b:2"]])
    second, _, events = _run([["a:1"], ["b:1", "b:2"]], first, history, "r2")
    assert second["b:1"] == first["a:1"] and second["a:1"] != first["a:1"]
    kinds = sorted((e["event"], e["person_id"], e["other_person_id"], e["records"]) for e in events)
    assert kinds == [("created", second["a:1"], None, 1), ("split", first["a:1"], second["a:1"], 1)]


def test_a_retired_id_is_never_reissued():
    first, history, _ = _first_run([["a:1", "b:1"]])
    second, history, events = _run([["b:1"]], {"b:1": first["b:1"]}, history, "r2")  # a:1 deleted: id kept by b:1
    assert second["b:1"] == first["a:1"]
    third, _, events = _run([["a:1"]], {}, history, "r3")  # b:1 gone too; a:1 comes back alone
    assert third["a:1"] != first["a:1"]


def test_an_id_whose_records_are_all_gone_is_retired():
    first, history, _ = _first_run([["a:1"], ["b:1"]])
    _, _, events = _run([["b:1"]], first, history, "r2")
    assert events == [{"run_id": "r2", "event": "retired", "person_id": first["a:1"], "other_person_id": None, "records": 0}]
