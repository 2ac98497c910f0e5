"""Association networks: co-offending edges from event participations, Louvain
communities, the networks view and recovery of the planted networks."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from veracity.evaluate import adjusted_rand_index, evaluate
from veracity.networks import co_offending, network_members
from veracity.sql import query


def participations(rows: list[tuple[str, str, str, str | None]]) -> duckdb.DuckDBPyConnection:
    """A connection whose event_participant holds (event_ref, kind, person_id, role) rows."""
    con = duckdb.connect()
    con.register("event_participant", pa.table({
        "source_system": ["crime"] * len(rows), "event_ref": [r[0] for r in rows],
        "event_kind": [r[1] for r in rows], "person_id": [r[2] for r in rows],
        "participant_role": pa.array([r[3] for r in rows], pa.string()),
    }))
    return con


def test_offenders_of_one_crime_are_joined_victims_witnesses_and_incidents_are_not():
    con = participations([
        ("C1", "crime", "A", "SUSPECT"), ("C1", "crime", "B", "ASSOCIATE"), ("C1", "crime", "V", "VICTIM"),
        ("C2", "crime", "A", "SUSPECT"), ("C2", "crime", "B", None), ("C2", "crime", "W", "WITNESS"),
        ("I1", "incident", "A", "SUBJECT"), ("I1", "incident", "C", "SUBJECT"),
        ("C3", "crime", "D", "SUSPECT"), ("C3", "crime", "D", "SUSPECT"),  # one person twice: no edge
    ])
    assert co_offending(con).to_pylist() == [{"a": "A", "b": "B", "crimes": 2}]


def test_two_gangs_joined_by_one_crime_are_two_networks():
    gang = lambda p: [(f"{p}{i}", f"{p}{j}", 3) for i in range(5) for j in range(i + 1, 5)]  # noqa: E731
    edges = gang("A") + gang("B") + [("A0", "B0", 1)]
    members = network_members(pa.table({name: [e[k] for e in edges] for k, name in enumerate(("a", "b", "crimes"))}))
    networks: dict[str, set] = {}
    for r in members.to_pylist():
        networks.setdefault(r["network_id"], set()).add(r["person_id"])
    assert sorted(map(sorted, networks.values())) == [[f"A{i}" for i in range(5)], [f"B{i}" for i in range(5)]]
    assert set(networks) == {"NET-A0", "NET-B0"}  # named after the lowest member id
    a0 = next(r for r in members.to_pylist() if r["person_id"] == "A0")
    assert (a0["network_size"], a0["associates"], a0["crimes_together"]) == (5, 4, 12)  # the bridge is not inside
    no_edges = pa.table({"a": pa.array([], pa.string()), "b": pa.array([], pa.string()), "crimes": pa.array([], pa.int64())})
    assert network_members(no_edges).num_rows == 0


def _edges(edges: list[tuple[str, str, int]]) -> pa.Table:
    return pa.table({name: [e[k] for e in edges] for k, name in enumerate(("a", "b", "crimes"))})


def test_parts_are_found_however_their_edges_are_ordered_and_no_edges_make_no_networks():
    """A chain whose nodes are named against its order still forms one part (the
    labels need several passes to meet), beside a separate triangle."""
    chain = [(f"N{i:02d}", f"N{i + 1:02d}", 2) for i in range(20)][::-1]
    triangle = [("T1", "T2", 3), ("T2", "T3", 3), ("T1", "T3", 3)]
    edges = chain + triangle
    members = network_members(pa.table({name: [e[k] for e in edges] for k, name in enumerate(("a", "b", "crimes"))}))
    parts = {r["graph_part"] for r in members.to_pylist() if r["person_id"].startswith("N")}
    assert len(parts) == 1 and {r["person_id"] for r in members.to_pylist()} >= {"T1", "T2", "T3", "N00", "N20"}
    assert {r["graph_part"] for r in members.to_pylist() if r["person_id"].startswith("T")}.isdisjoint(parts)
    empty = pa.table({"a": pa.array([], pa.string()), "b": pa.array([], pa.string()), "crimes": pa.array([], pa.int64())})
    assert network_members(empty).num_rows == 0


def test_a_part_of_the_graph_no_run_has_changed_keeps_its_networks_and_a_changed_one_is_found_again():
    gang = lambda p, n: [(f"{p}{i}", f"{p}{j}", 3) for i in range(n) for j in range(i + 1, n)]  # noqa: E731
    before = network_members(_edges(gang("A", 4) + gang("B", 4)))
    # Marked rows show which are carried over rather than found again.
    known = before.set_column(4, "crimes_together", pa.array([99] * before.num_rows, pa.int64()))
    after = network_members(_edges(gang("A", 4) + gang("B", 5) + gang("C", 3)), known)
    carried = {r["person_id"] for r in after.to_pylist() if r["crimes_together"] == 99}
    assert carried == {"A0", "A1", "A2", "A3"}  # part A is unchanged; B gained a member; C is new
    fresh = network_members(_edges(gang("A", 4) + gang("B", 5) + gang("C", 3)))
    assert after.filter(pa.compute.not_equal(after.column("crimes_together"), 99)) == \
        fresh.filter(pa.compute.invert(pa.compute.is_in(fresh.column("person_id"), pa.array(sorted(carried)))))
    # Carried over from genuine rows, the result is what finding every part again gives.
    assert network_members(_edges(gang("A", 4) + gang("B", 5) + gang("C", 3)), before) == fresh
    # The same edges in any order give the same networks.
    shuffled = list(reversed(gang("A", 4) + gang("B", 5) + gang("C", 3)))
    assert network_members(_edges(shuffled)) == fresh


def test_rows_of_a_snapshot_written_before_fingerprints_are_found_again_not_carried_over():
    gang = [(f"A{i}", f"A{j}", 3) for i in range(4) for j in range(i + 1, 4)]
    fresh = network_members(_edges(gang))
    older = fresh.set_column(4, "crimes_together", pa.array([99] * fresh.num_rows, pa.int64())) \
                 .set_column(5, "graph_part", pa.array([None] * fresh.num_rows, pa.string()))
    assert network_members(_edges(gang), older) == fresh


@pytest.mark.parametrize(("truth", "predicted", "expected"), [
    ([0, 0, 1, 1], [0, 0, 1, 1], 1.0),
    ([0, 0, 1, 1], [1, 1, 0, 0], 1.0),
    ([0, 0, 1, 2], [0, 0, 1, 1], 0.5714),
    ([0, 0, 0, 0], [0, 1, 2, 3], 0.0),
    ([0, 0, 1, 1], [0, 1, 0, 1], -0.5),
])
def test_adjusted_rand_index_matches_known_values(truth, predicted, expected):
    assert adjusted_rand_index(truth, predicted) == pytest.approx(expected, abs=1e-4)


def test_the_run_publishes_networks_that_recover_the_planted_ones(resolved_lake):
    lake, _ = resolved_lake
    members = query(lake, "SELECT * FROM network_member").to_pylist()
    assert members and all(r["network_size"] >= 2 for r in members)
    networks = {r["network_id"]: r for r in query(lake, "SELECT * FROM networks").to_pylist()}
    for network_id, network in networks.items():
        inside = sorted(r["person_id"] for r in members if r["network_id"] == network_id)
        assert network["members"] == len(inside) and network["member_ids"] == "; ".join(inside)
        top = network["most_connected"].split("; ")
        assert len(top) == min(3, len(inside)) and set(top) <= set(inside)
        best = max(r["associates"] for r in members if r["network_id"] == network_id)
        assert next(r for r in members if r["person_id"] == top[0])["associates"] == best
    recovery = evaluate(lake).networks
    assert recovery["planted_networks"] >= 1 and recovery["adjusted_rand_index"] >= 0.9


def test_each_node_is_labelled_with_the_smallest_node_of_its_part():
    import numpy as np

    from veracity.graph import components

    # 0-3-5 and 1-4 joined through edges in any order, 2 and 6 alone; a long chain 7..99.
    a = np.array([5, 4, 3] + list(range(99, 7, -1)))
    b = np.array([3, 1, 0] + list(range(98, 6, -1)))
    assert components(100, a, b).tolist() == [0, 1, 2, 0, 1, 0, 6] + [7] * 93
    assert components(3, np.array([], dtype=int), np.array([], dtype=int)).tolist() == [0, 1, 2]
