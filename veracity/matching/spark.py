"""Resolve records with Splink on Spark (the Glue path): the local path's model, link
rules and cluster constraints, run by Spark.

- The settings come from the one declaration (``model.settings_dict("spark", trained)``)
  with the m, u and λ of a model trained (and saved) on DuckDB.
- Derived columns come from ``model.prepare``, run on each Arrow batch (``mapInArrow``).
- The link filter (``resolve.links_sql``) and the pairs' evidence (``resolve.evidence_sql``)
  are the local path's DuckDB SQL, transpiled to Spark SQL by sqlglot (``spark_sql``):
  the rules are written once.
- Clusters are Splink's connected components on Spark. Only the clusters that may break
  a constraint (two PNC ids, or two records a reviewer ruled apart) are brought to the
  driver, with their links and identifiers, and rebuilt by ``constrained_clusters``.

The Spark session must have Splink's similarity jar (``spark.jars`` set to
``splink.backends.spark.similarity_jar_location()``): the model's Jaro-Winkler and
Damerau-Levenshtein levels call its functions. Its Jaro-Winkler counts transpositions
as the textbook does (half of them, possibly a half-integer) where DuckDB's rounds the
half down, so a few name pairs score slightly differently on the two engines.
Splink's intermediate tables are written, by default, as Parquet under the SparkContext's
checkpoint directory, which must be set. Nothing here creates a SparkSession; pyspark
and Splink's Spark backend are imported lazily so the package imports without them.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from veracity.lake import Lake
from veracity.matching import model, pair_keys
from veracity.matching.constraints import constrained_clusters
from veracity.matching.golden import REPRESENTATION
from veracity.matching.resolve import (
    GROUP_COLUMN,
    PAIRS_ROW_GROUP_ROWS,
    RECORDS_TABLE,
    REPRESENTATIVES_TABLE,
    Resolution,
    collapsed_pairs_sql,
    collapsed_sql,
    group_pairs_sql,
    identical_groups_sql,
    links_sql,
    pairs_sql,
    representatives_sql,
    review_candidates_sql,
    strongest_link_sql,
)
from veracity.schema import CLEAN_PERSON
from veracity.scrub.spark import spark_type, to_arrow, to_frame

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

DECISIONS_VIEW = "veracity_decisions"
DECISION_COLUMNS = ("unique_id_l", "unique_id_r", "decision")

LINKS_SCHEMA = pa.schema([("unique_id_l", pa.string()), ("unique_id_r", pa.string()), ("match_probability", pa.float64())])
CLUSTERS_SCHEMA = pa.schema([("unique_id", pa.string()), ("cluster_id", pa.string())])
STRONGEST_SCHEMA = pa.schema([("unique_id", pa.string()), ("match_probability", pa.float64())])
LINK_GROUPS_SCHEMA = pa.schema([("unique_id", pa.string()), ("link_group", pa.string())])


@dataclass
class SparkResolution:
    """A resolution as (lazy) DataFrames with the columns of ``Resolution``'s tables;
    ``collect`` brings it to the driver as a ``Resolution``."""

    pairs: DataFrame  # every scored pair above the review floor, with evidence
    links: DataFrame
    clusters: DataFrame
    strongest_link: DataFrame
    review_candidates: DataFrame
    comparisons: int
    representation: DataFrame  # unique_id, represented_by
    link_groups: DataFrame  # unique_id, link_group: the clusters before the constraints

    def collect(self, out_dir: str) -> Resolution:
        """A ``Resolution`` on the driver, the pairs written to ``out_dir``/match_pairs.parquet."""
        # Spark hashes otherwise than DuckDB: the records' keys are added here.
        pairs = pair_keys.with_keys(to_arrow(self.pairs, pair_keys.SCORED_SCHEMA)).sort_by([("unique_id_l", "ascending"), ("unique_id_r", "ascending")])
        pairs_file = os.path.join(out_dir, "match_pairs.parquet")
        pq.write_table(pairs, pairs_file, compression="zstd", row_group_size=PAIRS_ROW_GROUP_ROWS)
        return Resolution(
            pairs_file=pairs_file,
            pairs=pairs.num_rows,
            comparisons=self.comparisons,
            links=self.links.count(),
            clusters=to_arrow(self.clusters, CLUSTERS_SCHEMA),
            strongest_link=to_arrow(self.strongest_link, STRONGEST_SCHEMA),
            review_candidates=pair_keys.with_keys(to_arrow(self.review_candidates, pair_keys.SCORED_SCHEMA)),
            representation=to_arrow(self.representation, REPRESENTATION),
            link_groups=to_arrow(self.link_groups, LINK_GROUPS_SCHEMA),
        )


# -- SQL -------------------------------------------------------------------
def _to_spark(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.JarowinklerSimilarity):  # registered by Splink's similarity jar
        return exp.Anonymous(this="jaro_winkler", expressions=[node.this, node.expression])
    if isinstance(node, exp.ArrayOverlaps):  # sqlglot writes DuckDB's list_has_any as '&&'
        return exp.Anonymous(this="arrays_overlap", expressions=[node.this, node.expression])
    return node


def spark_sql(duckdb_sql: str) -> str:
    """The model's DuckDB SQL as Spark SQL: sqlglot's transpilation, plus the functions
    it has no Spark spelling for."""
    return sqlglot.parse_one(duckdb_sql, read="duckdb").transform(_to_spark).sql("spark")


# -- frames ----------------------------------------------------------------
def _spark_type(arrow_type: pa.DataType) -> DataType:
    from pyspark.sql import types as T

    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return T.ArrayType(_spark_type(arrow_type.value_type))
    return spark_type(arrow_type)


def _spark_schema(schema: pa.Schema) -> StructType:
    from pyspark.sql import types as T

    return T.StructType([T.StructField(f.name, _spark_type(f.type), f.nullable) for f in schema])


def records_frame(spark: SparkSession, records: pa.Table) -> DataFrame:
    """A DataFrame of driver-side clean records (clean_person columns)."""
    return to_frame(spark, records.select(CLEAN_PERSON.column_names).cast(CLEAN_PERSON.arrow_schema))


def current_records_frame(spark: SparkSession, lake: Lake) -> DataFrame:
    """The lake's current clean records (``pipeline.current_records``) as a DataFrame.

    For now they are read by the local path's own query (DuckDB, on the driver) and
    handed to Spark.
    """
    import duckdb

    from veracity.pipeline import current_records

    return records_frame(spark, current_records(duckdb.connect(), lake))


def prepared_frame(records: DataFrame) -> DataFrame:
    """Clean records with the model's derived columns: ``model.prepare`` on each Arrow batch."""
    schema = model.prepare(CLEAN_PERSON.empty()).schema

    def batches(stream: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in stream:
            if batch.num_rows:
                table = pa.Table.from_batches([batch]).cast(CLEAN_PERSON.arrow_schema)
                yield from model.prepare(table).cast(schema).to_batches()

    return records.select(*CLEAN_PERSON.column_names).mapInArrow(batches, _spark_schema(schema))


def _decisions_frame(spark: SparkSession, decisions: pa.Table) -> DataFrame:
    table = decisions.select(list(DECISION_COLUMNS)).cast(pa.schema([(c, pa.string()) for c in DECISION_COLUMNS]))
    return to_frame(spark, table)


# -- resolution ------------------------------------------------------------
def _constrained(spark: SparkSession, clusters: DataFrame, links: DataFrame, records: DataFrame, decisions: pa.Table) -> DataFrame:
    """``constrained_clusters`` applied on the driver to the clusters that may break a
    constraint; the others keep their cluster_id without leaving Spark."""
    from pyspark.sql import functions as F

    members = clusters.join(records.select("unique_id", "pnc_id"), "unique_id")
    suspects = (
        members.where(F.col("pnc_id").isNotNull())
        .groupBy("cluster_id").agg(F.countDistinct("pnc_id").alias("pnc_ids"))
        .where(F.col("pnc_ids") > 1).select("cluster_id")
    )
    cannot = decisions.filter(pc.equal(decisions.column("decision"), "cannot_link"))
    if cannot.num_rows:
        left = clusters.select(F.col("unique_id").alias("unique_id_l"), "cluster_id")
        right = clusters.select(F.col("unique_id").alias("unique_id_r"), F.col("cluster_id").alias("cluster_id_r"))
        apart = (
            _decisions_frame(spark, cannot).join(left, "unique_id_l").join(right, "unique_id_r")
            .where(F.col("cluster_id") == F.col("cluster_id_r")).select("cluster_id")
        )
        suspects = suspects.unionByName(apart)
    suspect_members = members.join(suspects.distinct(), "cluster_id", "left_semi")
    held = to_arrow(suspect_members.select("unique_id", "cluster_id", "pnc_id"),
                    pa.schema([("unique_id", pa.string()), ("cluster_id", pa.string()), ("pnc_id", pa.string())]))
    if not held.num_rows:
        return clusters
    their_links = to_arrow(
        links.join(suspect_members.select(F.col("unique_id").alias("unique_id_l")), "unique_id_l", "left_semi"), LINKS_SCHEMA
    )
    rebuilt = constrained_clusters(held.select(["unique_id", "cluster_id"]), their_links, held.select(["unique_id", "pnc_id"]), cannot)
    untouched = clusters.join(suspect_members.select("unique_id"), "unique_id", "left_anti")
    return untouched.unionByName(to_frame(spark, rebuilt.cast(CLUSTERS_SCHEMA)))


def _link_identical_records(spark: SparkSession, linker, records_view: str, decisions_view: str,
                            suffix: str) -> tuple[DataFrame, DataFrame, int]:
    """``resolve._link_identical_records`` on Spark, by the same SQL: (the pairs linking
    each represented record to its representative, the records that are scored, the
    groups whose pair was scored)."""
    from splink import block_on

    groups = spark.sql(spark_sql(identical_groups_sql(records_view, decisions_view))).persist()
    groups_view, scores_view, collapsed_view = (f"veracity_{name}_{suffix}" for name in ("groups", "group_scores", "collapsed"))
    groups.createOrReplaceTempView(groups_view)
    group_pairs = spark.sql(spark_sql(group_pairs_sql(records_view, groups_view))).persist()
    for column in linker._settings_obj._term_frequency_columns:
        linker.table_management.compute_tf_table(column.name.strip('"').strip("`"))
    scored = linker.inference.predict_within(
        linker._db_api.register(group_pairs, table_name=f"veracity_group_pairs_{suffix}"),
        blocking_rules_to_generate_predictions=[block_on(GROUP_COLUMN)], warning_mode="never",
    ).physical_name
    spark.sql(spark_sql(pairs_sql(scored, set(spark.table(scored).columns), records_view))).createOrReplaceTempView(scores_view)
    group_links = links_sql(scores_view, records_view, decisions_view, must_links=False)
    spark.sql(spark_sql(collapsed_sql(groups_view, f"({group_links})"))).persist().createOrReplaceTempView(collapsed_view)
    identical_pairs = spark.sql(spark_sql(collapsed_pairs_sql(collapsed_view, scores_view))).persist()
    representatives = spark.sql(spark_sql(representatives_sql(records_view, collapsed_view))).persist()
    return identical_pairs, representatives, group_pairs.count() // 2


def _representatives_linker(spark: SparkSession, linker, representatives: DataFrame, trained: dict, view: str,
                            break_lineage_method: str | None):
    """A linker over the representatives that scores with ``linker``'s term frequencies."""
    from splink import Linker, SparkAPI

    db_api = SparkAPI(spark_session=spark, break_lineage_method=break_lineage_method)  # its own cache
    scoring = Linker(db_api.register(representatives, table_name=view), model.settings_dict("spark", trained),
                     log_level=logging.ERROR)
    for column in linker._settings_obj._term_frequency_columns:
        name = column.name.strip('"').strip("`")
        tf_table = linker.table_management.compute_tf_table(name).physical_name
        scoring.table_management.register_term_frequency_lookup(
            db_api.register(spark.table(tf_table), table_name=f"{tf_table}_{view}"), name)
    return scoring


def resolve_frames(
    spark: SparkSession, records: DataFrame, trained: dict, decisions: pa.Table,
    progress: Callable[[str], None] = lambda _m: None, *, break_lineage_method: str | None = None,
) -> SparkResolution:
    """``resolve.resolve`` on Spark, its output left as DataFrames: score ``records``
    (a DataFrame of clean_person columns) with a trained model, honour the reviewers'
    ``decisions`` (unique_id_l, unique_id_r, decision), cluster and apply the constraints.

    ``break_lineage_method`` is how Splink materialises its intermediate tables (see
    ``splink.SparkAPI``); by default Parquet under the SparkContext's checkpoint directory.
    """
    from pyspark.sql import functions as F
    from splink import Linker, SparkAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    logging.getLogger("splink").setLevel(logging.ERROR)
    db_api = SparkAPI(spark_session=spark, break_lineage_method=break_lineage_method)
    if not spark.catalog.functionExists("jaro_winkler"):
        raise RuntimeError("Splink's similarity jar is not on the Spark classpath: set spark.jars (Glue: --extra-jars) "
                           "to splink.backends.spark.similarity_jar_location()")
    # Views named afresh for each call: a session may resolve more than once.
    suffix = uuid.uuid4().hex[:8]
    records_view, decisions_view = f"{RECORDS_TABLE}_{suffix}", f"{DECISIONS_VIEW}_{suffix}"
    prepared = prepared_frame(records).persist()
    linker = Linker(db_api.register(prepared, table_name=records_view), model.settings_dict("spark", trained),
                    log_level=logging.ERROR)
    decided = _decisions_frame(spark, decisions)
    decided.createOrReplaceTempView(decisions_view)
    identical_pairs, representatives, groups = _link_identical_records(spark, linker, records_view, decisions_view, suffix)
    scoring = _representatives_linker(spark, linker, representatives, trained, f"{REPRESENTATIVES_TABLE}_{suffix}",
                                      break_lineage_method)
    # The blocked pairs, computed once: their count is the comparisons, predict scores them.
    comparisons = groups + scoring.inference.compute_blocked_pairs_for_predict().as_spark_dataframe().count()
    predictions = scoring.inference.predict(threshold_match_probability=model.REVIEW_FLOOR).physical_name
    progress(f"scored {comparisons:,} comparisons")

    scored_pairs = spark.sql(spark_sql(pairs_sql(predictions, set(spark.table(predictions).columns), records_view)))
    pairs = identical_pairs.unionByName(scored_pairs).persist()
    views = {name: f"veracity_{name}_{suffix}" for name in ("pairs", "links", "clusters")}
    pairs.createOrReplaceTempView(views["pairs"])
    # Every scored pair, those linking identical records included, with the reviewers' must-links.
    links = (
        spark.sql(spark_sql(links_sql(views["pairs"], records_view, decisions_view)))
        .select("unique_id_l", "unique_id_r", F.col("match_probability").cast("double"))
        .persist()
    )
    clustered = cluster_pairwise_predictions_at_threshold(
        prepared.select("unique_id"), links, db_api, "unique_id", threshold_match_probability=model.LINK_THRESHOLD
    )
    clusters = clustered.as_spark_dataframe().select("unique_id", F.col("cluster_id").cast("string")).persist()
    progress("clustered")
    link_groups = clusters.select("unique_id", F.col("cluster_id").alias("link_group"))
    clusters = _constrained(spark, clusters, links, prepared, decisions).persist()
    progress("applied the cluster constraints")
    for name, frame in (("links", links), ("clusters", clusters)):
        frame.createOrReplaceTempView(views[name])
    return SparkResolution(
        pairs=pairs, links=links, clusters=clusters,
        strongest_link=spark.sql(spark_sql(strongest_link_sql(views["links"]))),
        review_candidates=spark.sql(spark_sql(review_candidates_sql(views["pairs"], views["clusters"], decisions_view))),
        comparisons=comparisons,
        representation=identical_pairs.select(F.col("unique_id_r").alias("unique_id"), F.col("unique_id_l").alias("represented_by")),
        link_groups=link_groups,
    )


def resolve_with_spark(
    spark: SparkSession, records: DataFrame, trained: dict, decisions: pa.Table, out_dir: str,
    progress: Callable[[str], None] = lambda _m: None, **options,
) -> Resolution:
    """``resolve.resolve`` on Spark: the same ``Resolution``, brought to the driver, the
    scored pairs written to ``out_dir``/match_pairs.parquet. ``options`` go to ``resolve_frames``."""
    return resolve_frames(spark, records, trained, decisions, progress, **options).collect(out_dir)
