"""Stable person ids across runs.

- The same data gives the same ids: a new person's id derives from its earliest
  record key.
- Records that were someone's keep that person's id wherever it ends up, so
  unrelated new records change no existing id.
- On a merge the oldest id survives; on a split the part holding most of the
  person's earlier records keeps the id and the rest get new ones.

Every change is an event in ``person_id_history``.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pyarrow as pa
import pyarrow.compute as pc

from veracity.matching.resolve import person_id_for
from veracity.schema import PERSON_ID_HISTORY


def assign(clusters: pa.Table, previous: pa.Table, history: pa.Table, run_id: str) -> tuple[pa.Table, pa.Table]:
    """``clusters`` (unique_id, cluster_id) of this run; ``previous`` (unique_id,
    person_id) of the last snapshot; ``history`` the person_id_history so far.
    Returns (cluster_id -> person_id, this run's history events)."""
    was = dict(zip(previous.column("unique_id").to_pylist(), previous.column("person_id").to_pylist(), strict=True))
    members: dict[str, list[str]] = defaultdict(list)
    for uid, cid in zip(clusters.column("unique_id").to_pylist(), clusters.column("cluster_id").to_pylist(), strict=True):
        members[cid].append(uid)
    shared: dict[str, Counter] = defaultdict(Counter)  # previous id -> cluster -> records carried over
    for cid, uids in members.items():
        for uid in uids:
            if uid in was:
                shared[was[uid]][cid] += 1
    cluster_key = {cid: min(uids) for cid, uids in members.items()}
    # When each id concerned was issued: the history is read for these ids only, as it
    # grows with every run. Ids issued before history was kept are older than any in it.
    created = history.filter(pc.and_(pc.equal(history.column("event"), "created"),
                                     pc.is_in(history.column("person_id"), pa.array(list(shared), pa.string()))))
    issued_order: dict[str, tuple[str, str]] = {}
    for rid, pid in zip(created.column("run_id").to_pylist(), created.column("person_id").to_pylist(), strict=True):
        issued_order[pid] = min(issued_order.get(pid, (rid, pid)), (rid, pid))
    before_history = ("", "")

    person_of: dict[str, str] = {}
    for pid in sorted(shared, key=lambda p: (issued_order.get(p, (before_history[0], p)), p)):
        options = [c for c in shared[pid] if c not in person_of]
        if options:
            person_of[min(options, key=lambda c: (-shared[pid][c], cluster_key[c]))] = pid

    unclaimed = sorted((c for c in members if c not in person_of), key=lambda c: cluster_key[c])
    issued = _Issued(history, set(was.values()), [person_id_for(cluster_key[c]) for c in unclaimed])
    events: list[dict] = []
    for cid in unclaimed:
        pid = person_id_for(cluster_key[cid])
        n = 0
        while issued(pid):  # never reissue an id that once meant someone else
            n += 1
            pid = person_id_for(f"{cluster_key[cid]}#{n}")
        issued.add(pid)
        person_of[cid] = pid
        events.append({"event": "created", "person_id": pid, "other_person_id": None, "records": len(members[cid])})

    cluster_of_person = {p: c for c, p in person_of.items()}
    for old, spread in sorted(shared.items()):
        kept_in = cluster_of_person.get(old)
        for cid, n in sorted(spread.items(), key=lambda kv: cluster_key[kv[0]]):
            if cid == kept_in:
                continue
            if kept_in is None:
                # The id did not survive: its records joined an older person.
                events.append({"event": "merged", "person_id": person_of[cid], "other_person_id": old, "records": n})
            else:
                events.append({"event": "split", "person_id": old, "other_person_id": person_of[cid], "records": n})
    for old in sorted(set(was.values()) - set(shared)):
        events.append({"event": "retired", "person_id": old, "other_person_id": None, "records": 0})

    ids = pa.table({"cluster_id": pa.array(list(person_of), pa.string()), "person_id": pa.array(list(person_of.values()), pa.string())})
    rows = [{"run_id": run_id, **e} for e in events]
    return ids, pa.Table.from_pylist(rows, schema=PERSON_ID_HISTORY.arrow_schema)


class _Issued:
    """Whether a person id was ever issued: in the history, held last snapshot, or
    issued in this run. The history is searched once for the ids a run means to
    issue, and again only for the rare one that was taken."""

    def __init__(self, history: pa.Table, held: set[str], wanted: list[str]):
        self._history = history.column("person_id")
        found = pc.is_in(self._history, pa.array(wanted, pa.string()))
        self._known = held | set(self._history.filter(found).to_pylist())
        self._checked = set(wanted)

    def __call__(self, pid: str) -> bool:
        if pid not in self._checked:
            self._checked.add(pid)
            if pc.any(pc.equal(self._history, pid)).as_py():
                self._known.add(pid)
        return pid in self._known

    def add(self, pid: str) -> None:
        self._known.add(pid)

