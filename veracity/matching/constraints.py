"""Cluster constraints: one person never holds two different valid PNC ids, and two
records a reviewer ruled apart are never one person.

Plain connected components can chain A (PNC 1) - B (no PNC) - C (PNC 2) into one
person. Clusters breaking a constraint are rebuilt by adding their links from
strongest to weakest and refusing any link that would break one (a constrained
single linkage), so the strongest evidence decides where B belongs.
"""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa
import pyarrow.compute as pc


def constrained_clusters(clusters: pa.Table, links: pa.Table, identifiers: pa.Table, cannot_link: pa.Table | None = None) -> pa.Table:
    """``clusters`` (unique_id, cluster_id), ``links`` (unique_id_l, unique_id_r,
    match_probability), ``identifiers`` (unique_id, pnc_id) and ``cannot_link``
    (unique_id_l, unique_id_r) -> clusters that break no constraint. Clusters that
    break none keep their cluster_id."""
    pnc = {u: p for u, p in zip(identifiers.column("unique_id").to_pylist(), identifiers.column("pnc_id").to_pylist(), strict=True) if p}
    apart: dict[str, set[str]] = defaultdict(set)
    if cannot_link is not None:
        for a, b in zip(cannot_link.column("unique_id_l").to_pylist(), cannot_link.column("unique_id_r").to_pylist(), strict=True):
            apart[a].add(b)
            apart[b].add(a)
    members: dict[str, list[str]] = defaultdict(list)
    for uid, cid in zip(clusters.column("unique_id").to_pylist(), clusters.column("cluster_id").to_pylist(), strict=True):
        members[cid].append(uid)

    def breaks(uids: list[str]) -> bool:
        if len({pnc[u] for u in uids if u in pnc}) > 1:
            return True
        inside = set(uids)
        return any(apart[u] & inside for u in uids if u in apart)

    conflicted = {cid for cid, uids in members.items() if len(uids) > 1 and breaks(uids)}
    if not conflicted:
        return clusters
    cluster_of = {u: cid for cid in conflicted for u in members[cid]}
    parent = {u: u for u in cluster_of}
    held = {u: ({pnc[u]} if u in pnc else set()) for u in cluster_of}
    group = {u: {u} for u in cluster_of}
    ruled = {u: ({u} if u in apart else set()) for u in cluster_of}  # a group's members a reviewer ruled apart from someone

    def root(u: str) -> str:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    in_conflict = pc.is_in(links.column("unique_id_l"), value_set=pa.array(list(cluster_of), pa.string()))
    candidate = links.filter(in_conflict).sort_by(
        [("match_probability", "descending"), ("unique_id_l", "ascending"), ("unique_id_r", "ascending")]
    )
    for left, right in zip(candidate.column("unique_id_l").to_pylist(), candidate.column("unique_id_r").to_pylist(), strict=True):
        a, b = root(left), root(right)
        if a == b or len(held[a] | held[b]) > 1:
            continue
        if any(apart[u] & group[b] for u in ruled[a]):
            continue
        if b < a:
            a, b = b, a
        parent[b] = a
        for sets in (held, group, ruled):
            sets[a] = _union(sets[a], sets.pop(b))
    new_ids = [
        f"{cid}/{root(uid)}" if cid in conflicted else cid
        for uid, cid in zip(clusters.column("unique_id").to_pylist(), clusters.column("cluster_id").to_pylist(), strict=True)
    ]
    return pa.table({"unique_id": clusters.column("unique_id"), "cluster_id": pa.array(new_ids, pa.string())})


def _union(one: set, other: set) -> set:
    """Both sets as one, the smaller added to the larger: merging groups costs what
    the smaller holds, however large a group grows."""
    if len(one) < len(other):
        one, other = other, one
    one |= other
    return one
