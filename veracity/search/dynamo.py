"""The serving index in DynamoDB, for the search Lambda: written at publish from the
published snapshot, read a few keys at a time per search.

One table, one string partition key ``pk``:

- ``K#<key>``: a search key (``index.keys_sql``): ``n``, how many records hold it, and
  ``ids``, their unique ids (the first ``MAX_POSTINGS`` when more hold it);
- ``R#<unique_id>``: a record's compared fields, person and term frequencies (``r``, JSON);
- ``P#<person_id>``: the result summary (``s``) and the person page (``d``, JSON);
- ``M#<person_id>``: a merged-away id and the survivor it went into (``to``);
- ``T#<column>#<value>``: a term frequency (``tf``);
- ``META``: the snapshot (``run_id``) and model version it was written from.

A publish writes only the items that changed since the last write (their digests are
kept in the lake, ``state/search/<table>.parquet``), so a delta's publish writes about
what the delta touched; items the new snapshot no longer holds are deleted after the
new ones are in, so a search meanwhile finds either version of a person, never none.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal

import boto3
import pyarrow as pa

from veracity import snapshots
from veracity.lake import Lake
from veracity.matching import model_store
from veracity.schema import CLEAN_PERSON
from veracity.search.index import (
    MAX_CANDIDATES,
    MAX_POSTINGS,
    PERSON_SUMMARY,
    RECORD_COLUMNS,
    choose_postings,
    keys_sql,
    person_pages_sql,
    records_sql,
    term_frequency_sql,
    visible,
)
from veracity.search.scoring import tf_columns
from veracity.sql import connect

BATCH_GET = 100  # DynamoDB's limit per BatchGetItem
MANIFEST = ("state", "search")  # <table>.parquet: each item's key and digest, as last written


def index_items(lake: Lake, run_id: str | None = None) -> Iterator[dict]:
    """Every item of the serving index of a snapshot (current by default)."""
    snapshot = snapshots.read_snapshot(lake, run_id)
    version = snapshot.get("model_version")
    trained = model_store.load(lake, version).model_json if version else None
    con = connect(lake, snapshot["run_id"])
    con.execute(f"CREATE TEMP TABLE search_records AS {records_sql()}")
    sample = con.execute("SELECT unique_id FROM search_records WHERE row = 0").fetchall()
    yield {"pk": "META", "run_id": snapshot["run_id"], "model_version": version or "",
           "sample_record": sample[0][0] if sample else ""}
    columns = tf_columns(trained) if trained else []
    for column in columns:
        for value, tf in con.execute(term_frequency_sql(column, "search_records")).fetchall():
            yield {"pk": f"T#{column}#{value}", "tf": Decimal(repr(tf))}
    tf_joins = "".join(f" LEFT JOIN ({term_frequency_sql(c, 'search_records')}) USING ({c})" for c in columns)
    for unique_id, record in con.execute(f"SELECT unique_id, to_json(r) FROM (SELECT * EXCLUDE (row) FROM search_records{tf_joins}) r").fetchall():
        yield {"pk": f"R#{unique_id}", "r": record}
    for key, count, ids in con.execute(f"""
            SELECT key, count(*), list(unique_id ORDER BY unique_id)[1:{MAX_POSTINGS}]
            FROM ({keys_sql('search_records')}) JOIN search_records USING (row) GROUP BY key""").fetchall():
        yield {"pk": f"K#{key}", "n": count, "ids": ids}
    summaries = con.execute(f"SELECT person_id, to_json(struct_pack({', '.join(PERSON_SUMMARY)})) FROM person").fetchall()
    pages = dict(con.execute(person_pages_sql()).fetchall())
    for person_id, summary in summaries:
        yield {"pk": f"P#{person_id}", "s": summary, "d": pages[person_id]}
    for old, survivor in con.execute("SELECT other_person_id, person_id FROM person_id_history WHERE event = 'merged'").fetchall():
        yield {"pk": f"M#{old}", "to": survivor}
    con.close()


def write_index(lake: Lake, table_name: str, run_id: str | None = None, resource=None) -> dict[str, int]:
    """Write the snapshot's serving index to ``table_name``: only the items that differ
    from what the table holds, by the digests the last write kept in the lake
    (``MANIFEST``), then delete the items this snapshot no longer holds. Without a
    manifest for the table's current contents every item is written and the table
    scanned for stale ones. Returns items written, unchanged and deleted."""
    table = (resource or boto3.resource("dynamodb")).Table(table_name)
    meta = table.get_item(Key={"pk": "META"}).get("Item") or {}
    previous = _manifest(lake, table_name, meta.get("run_id"))
    digests: dict[str, str] = {}
    written = 0
    with table.batch_writer(overwrite_by_pkeys=["pk"]) as batch:
        for item in index_items(lake, run_id):
            digest = hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()[:32]
            digests[item["pk"]] = digest
            if previous is None or previous.get(item["pk"]) != digest:
                batch.put_item(Item=item)
                written += 1
    held = previous.keys() if previous is not None else all_keys(table)
    stale = [pk for pk in held if pk not in digests]
    with table.batch_writer() as batch:
        for pk in stale:
            batch.delete_item(Key={"pk": pk})
    manifest = pa.table({"pk": list(digests), "digest": list(digests.values())})
    _save_manifest(lake, table_name, manifest, snapshots.read_snapshot(lake, run_id)["run_id"])
    return {"written": written, "unchanged": len(digests) - written, "deleted": len(stale)}


def _manifest(lake: Lake, table_name: str, table_run_id: str | None) -> dict[str, str] | None:
    """The digests of the items the table holds, when the lake's manifest is of the
    snapshot the table says it holds; else None."""
    if not table_run_id or not lake.exists(*MANIFEST, f"{table_name}.parquet"):
        return None
    manifest = lake.read_table(*MANIFEST, f"{table_name}.parquet")
    if (manifest.schema.metadata or {}).get(b"run_id", b"").decode() != table_run_id:
        return None
    return dict(zip(manifest.column("pk").to_pylist(), manifest.column("digest").to_pylist(), strict=True))


def _save_manifest(lake: Lake, table_name: str, manifest: pa.Table, run_id: str) -> None:
    lake.write_table(manifest.replace_schema_metadata({"run_id": run_id}), *MANIFEST, f"{table_name}.parquet")


def all_keys(table) -> Iterator[str]:
    kwargs = {"ProjectionExpression": "pk"}
    while True:
        page = table.scan(**kwargs)
        yield from (item["pk"] for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoIndex:
    """The serving index in DynamoDB, read as ``SnapshotIndex`` is (see ``service``)."""

    def __init__(self, table_name: str, lake: Lake, resource=None):
        self._resource = resource or boto3.resource("dynamodb")
        self._table_name = table_name
        self._table = self._resource.Table(table_name)
        meta = self._table.get_item(Key={"pk": "META"}).get("Item")
        if meta is None:
            raise LookupError(f"the search index {table_name} is empty: publish a snapshot first")
        self.run_id = meta["run_id"]
        self.trained = model_store.load(lake, meta["model_version"]).model_json if meta["model_version"] else None
        self.tf_columns = tf_columns(self.trained) if self.trained else []
        self._tf_cache: dict[tuple[str, str], float | None] = {}
        self.records = self._records([meta["sample_record"]])  # a sample row: the columns a search reads

    def published_run_id(self) -> str | None:
        """The snapshot the table holds now (a publish rewrites it in place)."""
        meta = self._table.get_item(Key={"pk": "META"}).get("Item")
        return meta["run_id"] if meta else None

    def _get(self, keys: Iterable[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        keys = list(dict.fromkeys(keys))
        for start in range(0, len(keys), BATCH_GET):
            request = {self._table_name: {"Keys": [{"pk": k} for k in keys[start:start + BATCH_GET]]}}
            while request:
                response = self._resource.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._table_name, []):
                    found[item["pk"]] = item
                request = response.get("UnprocessedKeys") or None
        return found

    def _records(self, unique_ids: list[str]) -> pa.Table:
        items = self._get(f"R#{u}" for u in unique_ids)
        rows = [json.loads(items[f"R#{u}"]["r"]) for u in unique_ids if f"R#{u}" in items]
        return _records_table(rows, self.tf_columns)

    def candidates(self, query_keys: list[int], hidden_sources: frozenset[str]) -> pa.Table:
        items = self._get(f"K#{k}" for k in query_keys)
        postings = [(int(item["n"]), item["ids"]) for item in items.values()]
        ids = sorted({i for ids in choose_postings(postings) for i in ids})
        return visible(self._records(ids[:MAX_CANDIDATES]), hidden_sources)

    def with_tf(self, records: pa.Table) -> pa.Table:
        for column in self.tf_columns:
            values = records.column(column).to_pylist()
            wanted = [v for v in set(values) if v is not None and (column, v) not in self._tf_cache]
            found = self._get(f"T#{column}#{v}" for v in wanted)
            for v in wanted:
                item = found.get(f"T#{column}#{v}")
                self._tf_cache[(column, v)] = float(item["tf"]) if item else None
            tf = pa.array([self._tf_cache.get((column, v)) for v in values], pa.float64())
            name = f"tf_{column}"
            records = (records.set_column(records.schema.get_field_index(name), name, tf) if name in records.column_names
                       else records.append_column(name, tf))
        return records

    def person_summaries(self, person_ids: list[str]) -> dict[str, dict]:
        items = self._get(f"P#{p}" for p in person_ids)
        return {p: _summary(json.loads(items[f"P#{p}"]["s"])) for p in person_ids if f"P#{p}" in items}

    def survivor(self, person_id: str) -> str | None:
        seen = set()
        while True:
            items = self._get([f"P#{person_id}", f"M#{person_id}"])
            if f"P#{person_id}" in items:
                return person_id
            if f"M#{person_id}" not in items or person_id in seen:
                return None
            seen.add(person_id)
            person_id = items[f"M#{person_id}"]["to"]

    def person_tables(self, person_id: str) -> dict:
        return json.loads(self._table.get_item(Key={"pk": f"P#{person_id}"})["Item"]["d"])


def _summary(summary: dict) -> dict:
    if summary.get("date_of_birth"):
        summary["date_of_birth"] = date.fromisoformat(summary["date_of_birth"])
    return summary


def _records_table(rows: list[dict], columns: list[str]) -> pa.Table:
    for row in rows:
        if row.get("date_of_birth"):
            row["date_of_birth"] = date.fromisoformat(row["date_of_birth"])
    clean = CLEAN_PERSON.arrow_schema
    schema = pa.schema([clean.field(c) if c in clean.names else pa.field(c, pa.string()) for c in RECORD_COLUMNS]
                       + [pa.field(f"tf_{c}", pa.float64()) for c in columns])
    return pa.Table.from_pylist(rows, schema=schema)

