"""The audit log of person search: who consulted what, when, why, and what they got
(Data Protection Act 2018, Part 3, s.62).

One JSON object per request (``veracity.schema.SEARCH_AUDIT``), never rewritten:
``audit/dt=YYYY-MM-DD/<time>-<id>.json`` in the lake locally, in the audit bucket (S3
Object Lock, compliance mode) in AWS, where Athena reads the same files as the
``search_audit`` table. Refused requests are
logged as allowed ones are.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from veracity.lake import Lake
from veracity.schema import SEARCH_AUDIT

ZONE = "audit"
COLUMNS = tuple(SEARCH_AUDIT.column_names)


@dataclass
class AuditEntry:
    route: str
    query: dict
    status: int
    outcome: str  # answered, not_found, bad_request, unauthorised, error
    user: str | None = None
    groups: list[str] = field(default_factory=list)
    purpose: str | None = None
    person_ids: list[str] = field(default_factory=list)
    detail: str | None = None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="microseconds"))


class AuditLog:
    def __init__(self, lake: Lake):
        self.lake = lake

    def record(self, entry: AuditEntry) -> None:
        """Write the entry as a new object; an existing one is never overwritten."""
        day = entry.time[:10]
        name = f"{entry.time.replace(':', '').replace('-', '').replace('+0000', 'Z')}-{entry.request_id}.json"
        parts = (ZONE, f"dt={day}", name)
        if self.lake.exists(*parts):
            raise FileExistsError(f"audit entry {entry.request_id} already written")
        # The query as JSON text: the table's query column is a string in every engine.
        row = {**asdict(entry), "query": json.dumps(entry.query, sort_keys=True)}
        self.lake.write_bytes(json.dumps(row, sort_keys=True).encode(), *parts)

    def entries(self, *, user: str | None = None, person_id: str | None = None, purpose: str | None = None,
                since: str | None = None, outcome: str | None = None) -> pa.Table:
        """Every entry, oldest first, filtered as asked."""
        rows = [json.loads(self.lake.read_bytes(ZONE, day, name))
                for day in self.lake.list_dirs(ZONE) for name in self.lake.list_files(ZONE, day) if name.endswith(".json")]
        con = duckdb.connect()
        table = pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in rows],
                                     schema=SEARCH_AUDIT.arrow_schema)
        con.register("audit", table)
        where, params = [], []
        for column, value in (("user", user), ("purpose", purpose), ("outcome", outcome)):
            if value is not None:
                where.append(f'"{column}" = ?')
                params.append(value)
        if person_id is not None:
            where.append("list_contains(person_ids, ?)")
            params.append(person_id)
        if since is not None:
            where.append('"time" >= ?')
            params.append(since)
        sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "") + ' ORDER BY "time", request_id'
        return con.sql(sql, params=params).to_arrow_table()

