"""Integer keys for the two records of each scored pair (``match_pairs.key_l`` and
``key_r``).

A refresh looks up the earlier pairs of the records it clusters again among every
pair of the population: tens of millions. Matching integers costs a fraction of
decoding and matching the ids themselves. A key is DuckDB's 64-bit hash of the id
(halved to fit a BIGINT); two ids may share one, so a reader checks the keys it uses
against the ids (``incremental._touching``) and reads the ids when they collide.

DuckDB may hash differently in another release: a pairs file records the hash of a
fixed word in its metadata, and its keys serve only a reader whose DuckDB hashes
that word the same.
"""

from __future__ import annotations

from functools import cache

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from veracity.schema import MATCH_PAIRS

KEY_COLUMNS = ("key_l", "key_r")
SCORED_SCHEMA = pa.schema([f for f in MATCH_PAIRS.arrow_schema if f.name not in KEY_COLUMNS])  # as an engine scores them
SCORED_COLUMNS = tuple(SCORED_SCHEMA.names)
METADATA_KEY = "veracity_pair_key"
_CANARY_WORD = "veracity"


def key_sql(column: str) -> str:
    """DuckDB SQL for the key of the record id in ``column``."""
    return f"(hash({column}) >> 1)::BIGINT"


def keyed_pairs_sql(pairs: str) -> str:
    """DuckDB SQL: the scored pairs in ``pairs`` (a relation with the scored columns)
    with their records' keys, in match_pairs' column order."""
    scored = ", ".join(f'"{c}"' for c in SCORED_COLUMNS)
    return f"SELECT {scored}, {key_sql('unique_id_l')} AS key_l, {key_sql('unique_id_r')} AS key_r FROM {pairs}"


@cache
def canary() -> str:
    """How this DuckDB hashes a fixed word: equal in a file's metadata, its keys are ours."""
    return str(duckdb.sql(f"SELECT hash('{_CANARY_WORD}')").fetchall()[0][0])


def copy_options() -> str:
    """The COPY option that records ``canary`` in a Parquet file's metadata."""
    return f"KV_METADATA {{{METADATA_KEY}: '{canary()}'}}"


def schema() -> pa.Schema:
    """match_pairs' Arrow schema, with the metadata marking its keys as this DuckDB's."""
    return MATCH_PAIRS.arrow_schema.with_metadata({METADATA_KEY: canary()})


def with_keys(pairs: pa.Table | pa.RecordBatch) -> pa.Table:
    """Scored pairs (at least the scored columns) as match_pairs rows, keys included."""
    con = duckdb.connect()
    con.register("veracity_scored_pairs", pa.Table.from_batches([pairs]) if isinstance(pairs, pa.RecordBatch) else pairs)
    return con.sql(keyed_pairs_sql("veracity_scored_pairs")).to_arrow_table().cast(schema())


def file_usable(handle) -> bool:
    """Whether the pairs file open in ``handle`` holds keys a reader may use: written
    by a DuckDB that hashes as this one does (its Parquet key-value metadata)."""
    return (pq.read_schema(handle).metadata or {}).get(METADATA_KEY.encode()) == canary().encode()
