"""Association networks: communities of persons who offend together.

The graph's nodes are persons; an edge joins two persons who took part in the same
crime, both in an offending role (or with no role recorded), weighted by the crimes
they share. Communities are found with Louvain modularity (networkx), seeded so the
same graph gives the same networks. A network is named after its lowest person id,
so it keeps its name while that member stays in it. Victims and witnesses are left
out: they would tie unrelated offenders together.

Each connected part of the graph is split into communities on its own, at a
resolution below modularity's usual 1: a dense group stays whole, while groups that
only one or two crimes join fall apart (on the whole graph at once, modularity's
resolution limit would merge small groups however weakly they are joined).

The edges come from the ``event_participant`` view (sql/views), so the rule for
which records are current lives in one place. A part of the graph that a run leaves
as it was keeps the networks found in it before (``graph_part``), so a run that
touches a few persons splits only their parts into communities again.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import duckdb
import networkx as nx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from veracity.graph import components
from veracity.schema import NETWORK_MEMBER

# Roles, as scrubbed (upper case), that make a participant one of a crime's offenders.
OFFENDING_ROLES = ("SUSPECT", "ASSOCIATE", "OFFENDER", "ACCUSED", "CHARGED", "ARRESTED", "PERPETRATOR")
SEED = 42
RESOLUTION = 0.5

CO_OFFENDING = f"""
    WITH offenders AS (
        SELECT DISTINCT source_system, event_ref, person_id
        FROM event_participant
        WHERE event_kind = 'crime'
          AND (participant_role IS NULL OR participant_role IN ({", ".join(f"'{r}'" for r in OFFENDING_ROLES)}))
    )
    SELECT a.person_id AS a, b.person_id AS b, count(*) AS crimes
    FROM offenders a JOIN offenders b
      ON a.source_system = b.source_system AND a.event_ref = b.event_ref AND a.person_id < b.person_id
    GROUP BY 1, 2
"""


def co_offending(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """(a, b, crimes): pairs of persons who offended together, from ``event_participant``."""
    return con.sql(CO_OFFENDING).to_arrow_table()


def network_members(edges: pa.Table, known: pa.Table | None = None) -> pa.Table:
    """One row per person in a network of two or more, from co-offending edges.

    Each connected part of the graph is fingerprinted by its edges and their weights;
    a part whose fingerprint is among ``known`` (an earlier snapshot's rows) keeps its
    rows, as Louvain would find them again: it is seeded and reads each part in a
    fixed order. Only the parts a run has changed are split into communities again."""
    edges = edges.take(pc.sort_indices(edges, [("a", "ascending"), ("b", "ascending")]))
    part_edges: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    triples = zip(*(edges.column(c).to_pylist() for c in ("a", "b", "crimes")), strict=True)
    for part, edge in zip(_parts(edges).tolist(), triples, strict=True):
        part_edges[part].append(edge)
    reusable: dict[str, list[dict]] = defaultdict(list)
    for row in (known.to_pylist() if known is not None else []):  # rows written before fingerprints match none
        reusable[row["graph_part"]].append(row)
    rows: list[dict] = []
    for part in part_edges.values():
        fingerprint = hashlib.sha256("\n".join(f"{a}\t{b}\t{w}" for a, b, w in part).encode()).hexdigest()[:16]
        rows += reusable.get(fingerprint) or _communities(part, fingerprint)
    rows.sort(key=lambda r: (r["network_id"], r["person_id"]))
    return pa.Table.from_pylist(rows, schema=NETWORK_MEMBER.arrow_schema)


def _parts(edges: pa.Table) -> np.ndarray:
    """For each edge, the connected part of the graph it lies in (a node's index)."""
    nodes = pc.unique(pa.chunked_array(edges.column("a").chunks + edges.column("b").chunks, type=edges.schema.field("a").type))
    a = pc.index_in(edges.column("a"), nodes).to_numpy()
    b = pc.index_in(edges.column("b"), nodes).to_numpy()
    return components(len(nodes), a, b)[a]


def _communities(part: list[tuple[str, str, int]], fingerprint: str) -> list[dict]:
    """The member rows of one connected part's communities of two or more."""
    graph = nx.Graph()
    graph.add_nodes_from(sorted({p for a, b, _w in part for p in (a, b)}))
    graph.add_weighted_edges_from(part)
    rows = []
    for community in nx.community.louvain_communities(graph, weight="weight", resolution=RESOLUTION, seed=SEED):
        if len(community) < 2:
            continue
        inner = graph.subgraph(community)
        network_id = f"NET-{min(community)}"
        for person_id in sorted(community):
            rows.append({
                "network_id": network_id, "person_id": person_id, "network_size": len(community),
                "associates": inner.degree(person_id),
                "crimes_together": int(inner.degree(person_id, weight="weight")),
                "graph_part": fingerprint,
            })
    return rows


def derive(lake, snapshot: dict) -> dict[str, pa.Table]:
    """``network_member`` for a snapshot about to be published (``snapshots.Derive``)."""
    from veracity import snapshots
    from veracity.sql import create_views, view_queries

    con = duckdb.connect()
    snapshots.register(con, lake, snapshot)
    unavailable = create_views(con, view_queries())
    if "event_participant" in unavailable:  # a snapshot without person_xref or events
        return {"network_member": NETWORK_MEMBER.empty()}
    serving = snapshots.current_run_id(lake)  # the snapshot this one is about to replace
    earlier = snapshots.read_snapshot(lake, serving) if serving else {"tables": {}}
    known = snapshots.read_table(lake, earlier, "network_member") if earlier["tables"].get("network_member") else None
    return {"network_member": network_members(co_offending(con), known)}
