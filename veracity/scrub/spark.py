"""Scrub one batch with Spark (the Glue path), running the local path's own code.

The extract is parsed by the same readers as the local path, on the driver: native
formats (quoted CSV with embedded newlines, fixed width, JSON lines) are read as one
stream. The raw rows become a DataFrame; Spark finds missing and duplicated record
ids (groupBy, count, join), and ``mapInArrow`` hands each Arrow batch to the very
functions the local path calls: ``standardise`` for clean rows, ``event_records``
for their event participations and ``record_id_quarantine`` for rejected ones. Nothing here creates a SparkSession;
pyspark is imported lazily so the package imports without it.

Limits for now: the raw rows pass through driver memory (Spark's createDataFrame
from local data), and ``collect`` brings the output back to the driver.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from veracity.schema import CLEAN_PERSON, EVENT_RECORD, QUARANTINE
from veracity.scrub.events import event_records
from veracity.scrub.readers import ExtractError, RawExtract
from veracity.scrub.scrub import (
    RECORD_ID,
    ScrubResult,
    quarantine_rows,
    record_id_quarantine,
    record_ids,
    reject_batch,
    standardise,
)
from veracity.sources import SourceConfig

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

_DUPLICATED = "_record_id_duplicated"
BatchFn = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]


class SparkScrub(NamedTuple):
    """A scrubbed batch as (lazy) DataFrames; ``collect`` brings it to the driver."""

    clean: DataFrame  # CLEAN_PERSON columns
    quarantine: DataFrame  # QUARANTINE columns
    rows_in: int
    batch_error: str | None = None
    events: DataFrame | None = None  # EVENT_RECORD columns


def spark_type(arrow_type: pa.DataType) -> DataType:
    """The Spark type holding an Arrow type's values."""
    from pyspark.sql import types as T

    t = pa.types
    if t.is_timestamp(arrow_type):  # Spark keeps microseconds; a zone-aware instant is TimestampType
        return T.TimestampType() if arrow_type.tz else T.TimestampNTZType()
    for test, spark in (
        (t.is_string, T.StringType), (t.is_large_string, T.StringType), (t.is_boolean, T.BooleanType),
        (t.is_int8, T.ByteType), (t.is_int16, T.ShortType), (t.is_int32, T.IntegerType),
        (t.is_int64, T.LongType), (t.is_float32, T.FloatType), (t.is_float64, T.DoubleType),
        (t.is_date32, T.DateType), (t.is_binary, T.BinaryType), (t.is_large_binary, T.BinaryType),
    ):
        if test(arrow_type):
            return spark()
    raise TypeError(f"no Spark type for the Arrow type {arrow_type}")


def spark_schema(schema: pa.Schema) -> StructType:
    """The Spark schema of an Arrow schema, field by field."""
    from pyspark.sql import types as T

    return T.StructType([T.StructField(f.name, spark_type(f.type), f.nullable) for f in schema])


def to_frame(spark: SparkSession, table: pa.Table) -> DataFrame:
    """A DataFrame of a driver-side Arrow table (through pandas: Spark 3.5 has no
    createDataFrame(pa.Table); with spark.sql.execution.arrow.pyspark.enabled it is Arrow
    all the way). Integer columns stay objects so a null is not turned into NaN."""
    schema = spark_schema(table.schema)
    if not table.num_rows:
        return spark.createDataFrame([], schema)
    return spark.createDataFrame(table.to_pandas(integer_object_nulls=True), schema)


def to_arrow(df: DataFrame, schema: pa.Schema) -> pa.Table:
    """Collect a DataFrame to the driver as an Arrow table of ``schema``. Spark 4 has
    DataFrame.toArrow; Spark 3.5 (Glue 5.0) only the internal collector toPandas uses.
    Spark hands timestamps back in the session's time zone: the cast restores UTC."""
    if hasattr(df, "toArrow"):
        table = df.toArrow()
    else:
        batches = df._collect_as_arrow()
        table = pa.Table.from_batches(batches) if batches else schema.empty_table()
    return table.select(schema.names).cast(schema)


def _col(name: str) -> Column:
    """A column by its exact name (source columns may hold dots: 'name.first')."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def scrub_with_spark(
    spark: SparkSession, raw_chunks: Iterable[RawExtract], config: SourceConfig, batch_id: str, extracted_at: datetime,
) -> SparkScrub:
    """Scrub a batch's raw chunks (``readers.iter_extract``) with Spark: the same rows,
    reason codes and clean values as ``scrub.scrub_stream``."""
    from pyspark.sql import functions as F

    tables: list[pa.Table] = []
    rejects: list[tuple[str | None, int, str, str]] = []
    rows_in = 0
    try:
        for chunk in raw_chunks:
            rows_in += chunk.table.num_rows + len(chunk.rejects)
            rejects += [(None, line, reason, raw) for line, reason, raw in chunk.rejects]
            tables.append(chunk.table.append_column(RECORD_ID, record_ids(chunk.table, config)))
    except (ExtractError, UnicodeError, OSError) as exc:
        message, rejected = reject_batch(config, batch_id, exc)
        return SparkScrub(to_frame(spark, CLEAN_PERSON.empty()), to_frame(spark, rejected), 1, message)
    quarantine = to_frame(spark, quarantine_rows(config.name, batch_id, rejects))
    if not tables:
        return SparkScrub(to_frame(spark, CLEAN_PERSON.empty()), quarantine, rows_in)

    raw = to_frame(spark, pa.concat_tables(tables))
    columns = [_col(c) for c in raw.columns]
    duplicated = (
        raw.where(F.col(RECORD_ID).isNotNull()).groupBy(RECORD_ID).count()
        .where(F.col("count") > 1).select(RECORD_ID, F.lit(True).alias(_DUPLICATED))
    )
    flagged = raw.join(duplicated, on=RECORD_ID, how="left")
    bad = F.col(RECORD_ID).isNull() | F.col(_DUPLICATED).isNotNull()

    clean_batches = _on_accepted_rows(lambda raw, ids: standardise(raw, ids, config, batch_id, extracted_at))
    event_batches = _on_accepted_rows(lambda raw, ids: event_records(raw, ids, config, batch_id, extracted_at))

    def quarantine_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield from record_id_quarantine(pa.Table.from_batches([batch]), config, batch_id).to_batches()

    good, rejected = flagged.where(~bad).select(*columns), flagged.where(bad).select(*columns)
    clean = _map_in_arrow(good, clean_batches, CLEAN_PERSON.arrow_schema)
    by_id = _map_in_arrow(rejected, quarantine_batches, QUARANTINE.arrow_schema)
    events = _map_in_arrow(good, event_batches, EVENT_RECORD.arrow_schema) if config.events else None
    return SparkScrub(clean, quarantine.unionByName(by_id), rows_in, events=events)


def _on_accepted_rows(fn: Callable[[pa.Table, pa.Array], pa.Table]) -> BatchFn:
    """A mapInArrow function applying ``fn(source columns, record ids)`` to each batch."""
    def batches(arrow_batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in arrow_batches:
            if batch.num_rows:
                table = pa.Table.from_batches([batch])
                yield from fn(table.drop_columns([RECORD_ID]), table.column(RECORD_ID).combine_chunks()).to_batches()
    return batches


def _map_in_arrow(df: DataFrame, fn: BatchFn, schema: pa.Schema) -> DataFrame:
    """``df.mapInArrow(fn)``, ``fn`` seeing the columns under their own names. Spark 3.5's
    mapInArrow cannot take a column whose name holds a dot (it resolves 'name.given' as
    a struct field), so the columns travel as c0, c1, ... and are renamed back per batch."""
    names = df.columns

    def renamed(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return fn(pa.RecordBatch.from_arrays(b.columns, names=names) for b in batches)

    positional = df.select(*[_col(c).alias(f"c{i}") for i, c in enumerate(names)])
    return positional.mapInArrow(renamed, spark_schema(schema))


def collect(result: SparkScrub, source: str, batch_id: str) -> ScrubResult:
    """A Spark scrub brought to the driver, quarantine in line order as ``scrub_batch`` has it."""
    clean = to_arrow(result.clean, CLEAN_PERSON.arrow_schema)
    quarantine = to_arrow(result.quarantine, QUARANTINE.arrow_schema)
    quarantine = quarantine.take(pc.sort_indices(quarantine, [("line_number", "ascending")]))
    events = to_arrow(result.events, EVENT_RECORD.arrow_schema) if result.events is not None else EVENT_RECORD.empty()
    return ScrubResult(source, batch_id, result.rows_in, clean, quarantine, result.batch_error, events)
