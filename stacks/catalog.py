"""The lake's Glue catalog, governed by Lake Formation.

Every table's columns come from ``veracity.schema`` (one source of truth), and so
does each column's sensitivity, which becomes a Lake Formation tag: analysts see
"general" columns only, investigators every column. The catalog no longer defers to
IAM (the IAMAllowedPrincipals defaults are off), so a query reaches a table or column
only through a Lake Formation grant; reading the objects directly in S3 stays with IAM,
for the roles whose policies allow it.

Where the tables live (each zone has its own bucket, under a folder named after it):

    clean bucket       clean/clean_person/<source>/<batch_id>.parquet   clean_person_versions
                       clean/deletions/<source>/<batch_id>.parquet      deletions
                       clean/data_quality/<source>/<batch_id>.parquet   data_quality_checks
                       clean/event_record/<source>/<batch_id>.parquet   event_record
    quarantine bucket  quarantine/<source>/<batch_id>.parquet           quarantine
    search audit       audit/dt=<day>/<time>-<request>.json             search_audit (JSON, Object Lock)
    curated bucket     curated/snapshots/<run_id>/<table>.parquet       the snapshot tables
                       curated/athena/<table>/manifest                  what Athena reads of them

Zone tables are plain Parquet tables at the zone's folder. The per-source subfolders
are not partitions: every zone row already carries a ``source_system`` column, and a
Hive partition may not share a data column's name; Athena reads a table's nested
prefixes, so no partition is needed to find the files (nor any projection to keep up
to date as source systems are added). Filter on ``source_system`` as on any column:
it prunes no files.

clean_person exists twice: the clean zone holds every version of every accepted
record (one row per record per batch that carried it), served as
``clean_person_versions``; the snapshot's ``clean_person`` holds the current version
of each record, minus deletions, as the pipeline resolved them.

Contract with the publish step (``veracity.snapshots.write_athena_manifests``, run on
every publish and rollback of an S3 lake): a snapshot table may span several run
folders, so snapshot tables are SymlinkTextInputFormat tables over
``curated/athena/<table>/manifest``, a text file listing one ``s3://`` URI per line of
the table's files. A layered table (one whose rows a later layer may replace) is not
the plain union of its files: its symlink table is ``<table>_layers``, the keys each
file no longer serves are ``<table>_removed`` (Parquet at
``curated/athena/<table>_removed/``), and ``<table>`` is an Athena view
(``veracity.snapshots.athena_table_sql``) serving the rows that stand, as the lake
reads them.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import sqlglot
from aws_cdk import Aws, DefaultStackSynthesizer, Fn, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lakeformation as lakeformation
from aws_cdk import aws_s3 as s3
from constructs import Construct
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from stacks.analytics import View, ViewError, load_views
from stacks.athena import (
    BUCKET_ACTIONS,
    GLUE_READ_ACTIONS,
    RESULT_OBJECT_ACTIONS,
    enforced_workgroup,
)
from stacks.config import EnvironmentConfig
from stacks.nag import acknowledge
from stacks.storage import StorageStack
from veracity.schema import (
    ATHENA_REMOVED,
    CLEAN_PERSON,
    CURATED_TABLES,
    DATA_QUALITY,
    DELETIONS,
    EVENT_RECORD,
    QUARANTINE,
    SEARCH_AUDIT,
    SENSITIVITY_LEVELS,
    Table,
)
from veracity.snapshots import REMOVED_BY, athena_table_sql
from veracity.sql import VIEWS_DIR

SENSITIVITY_TAG = "sensitivity"
GLUE_COMMENT_LIMIT = 255

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
SYMLINK_INPUT = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"
SYMLINK_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"

# The buckets Lake Formation governs. Athena's results bucket stays out: Athena cannot
# write query results to a location registered with Lake Formation.
GOVERNED_BUCKETS = ("Clean", "Curated", "Quarantine", "SearchAudit")

# IAM actions, listed one by one (no wildcards) and each scoped by ARN below.
# Objects of a governed bucket, for Lake Formation's data-access role: no *Version*
# actions, so no query can rewrite the history the versioned buckets keep.
LAKE_OBJECT_ACTIONS = [
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:GetObject",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
]
LAKE_KEY_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
RESULT_KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]  # SSE-KMS query results
ATHENA_QUERY_ACTIONS = [
    "athena:BatchGetQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:GetWorkGroup",
    "athena:ListQueryExecutions",
    "athena:StartQueryExecution",
    "athena:StopQueryExecution",
]


@dataclass(frozen=True)
class CatalogTable:
    """A Glue table: the schema table it serves, and where its files (or manifest) live."""

    name: str
    schema: Table
    bucket: str  # a key of StorageStack.buckets
    folder: str  # the table's folder in that bucket ("" for a view)
    symlink: bool  # located at a manifest of the files (snapshot tables), not at the files
    view_of: str | None = None  # a view serving this layered snapshot table (no files of its own)
    json: bool = False  # JSON objects, one per file or line (the search audit log), not Parquet


# Tables read straight from a zone's folder; every other curated table is served
# from the current snapshot, through its manifest.
ZONE_TABLES = (
    CatalogTable("clean_person_versions", CLEAN_PERSON, "Clean", "clean/clean_person/", False),
    CatalogTable("deletions", DELETIONS, "Clean", "clean/deletions/", False),
    CatalogTable("event_record", EVENT_RECORD, "Clean", "clean/event_record/", False),
    CatalogTable("data_quality_checks", DATA_QUALITY, "Clean", "clean/data_quality/", False),
    CatalogTable("quarantine", QUARANTINE, "Quarantine", "quarantine/", False),
    CatalogTable("search_audit", SEARCH_AUDIT, "SearchAudit", "audit/", False, json=True),
)


def _snapshot_tables(name: str, table: Table) -> tuple[CatalogTable, ...]:
    """The Glue tables serving snapshot table ``name``: its symlink table, or for a layered
    table its layers, their removed keys and the view over both."""
    if name not in REMOVED_BY:
        return (CatalogTable(name, table, "Curated", f"curated/athena/{name}/", True),)
    return (
        CatalogTable(f"{name}_layers", table, "Curated", f"curated/athena/{name}/", True),
        CatalogTable(f"{name}_removed", ATHENA_REMOVED, "Curated", f"curated/athena/{name}_removed/", False),
        CatalogTable(name, table, "Curated", "", False, view_of=name),
    )


CATALOG_TABLES = ZONE_TABLES + tuple(
    catalog_table
    for name, table in CURATED_TABLES.items()
    if name not in {t.name for t in ZONE_TABLES}
    for catalog_table in _snapshot_tables(name, table)
)
# Hive types as Athena's views (Presto) declare their columns.
PRESTO_TYPES = {"string": "varchar", "int": "integer", "float": "real"}


# Arrow type test -> the Hive/Glue type Athena reads that Parquet column as.
_GLUE_TYPES = (
    (pa.types.is_string, "string"), (pa.types.is_large_string, "string"), (pa.types.is_boolean, "boolean"),
    (pa.types.is_int8, "tinyint"), (pa.types.is_int16, "smallint"), (pa.types.is_int32, "int"),
    (pa.types.is_int64, "bigint"), (pa.types.is_float32, "float"), (pa.types.is_float64, "double"),
    (pa.types.is_date32, "date"), (pa.types.is_timestamp, "timestamp"),
)


def glue_type(arrow_type: pa.DataType) -> str:
    """The Hive/Glue type Athena reads a Parquet column of ``arrow_type`` as."""
    if pa.types.is_list(arrow_type):
        return f"array<{glue_type(arrow_type.value_type)}>"
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    for is_type, glue_name in _GLUE_TYPES:
        if is_type(arrow_type):
            return glue_name
    raise TypeError(f"no Glue type for Arrow type {arrow_type}: map it in stacks.catalog.glue_type")


# sqlglot's type of a view's column -> the Glue type the view declares for it.
_GLUE_OF_SQL = {
    exp.DataType.Type.VARCHAR: "string", exp.DataType.Type.TEXT: "string", exp.DataType.Type.CHAR: "string",
    exp.DataType.Type.BIGINT: "bigint", exp.DataType.Type.INT: "int", exp.DataType.Type.DOUBLE: "double",
    exp.DataType.Type.DATE: "date", exp.DataType.Type.TIMESTAMP: "timestamp", exp.DataType.Type.BOOLEAN: "boolean",
}


def reporting_view_columns(views: list[View]) -> dict[str, list[tuple[str, str]]]:
    """Each reporting view's columns with their Glue types, typed by sqlglot over the
    snapshot tables (``veracity.schema``) and the views typed before it, in the order
    the views read each other. A column sqlglot cannot type is an error: CAST it."""
    schema = {name: {f.name: glue_type(f.type) for f in table.arrow_schema} for name, table in CURATED_TABLES.items()}
    if clash := sorted({v.name for v in views} & set(schema)):
        raise ViewError(f"reporting views named like snapshot tables: {clash}")
    typed: dict[str, list[tuple[str, str]]] = {}
    pending = {v.name: v for v in views}
    while pending:
        ready = [v for v in pending.values() if {table for _, table in v.tables} <= set(schema)]
        if not ready:
            raise ViewError(f"views reading tables that are neither snapshot tables nor views: {sorted(pending)}")
        for view in ready:
            query = qualify(sqlglot.parse_one(view.query, read="athena"), schema=schema, dialect="athena")
            columns = []
            for column in annotate_types(query, schema=schema, dialect="athena").selects:
                glue = _GLUE_OF_SQL.get(column.type.this) if column.type else None
                if glue is None:
                    raise ViewError(f"{view.path}: column {column.alias_or_name!r} has no type Athena can be told "
                                    f"({column.type.sql('athena') if column.type else 'unknown'}); CAST it")
                columns.append((column.alias_or_name, glue))
            typed[view.name] = columns
            schema[view.name] = dict(columns)
            del pending[view.name]
    return typed


def sensitive_columns(table: Table) -> dict[str, list[str]]:
    """Sensitivity level -> the table's columns above "general" at that level."""
    levels: dict[str, list[str]] = defaultdict(list)
    for column in table.columns:
        if column.sensitivity != "general":
            levels[column.sensitivity].append(column.name)
    return dict(levels)


class CatalogStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        storage: StorageStack,
        pipeline_role: iam.IRole,
        views_dir: Path = VIEWS_DIR,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.database_name = config.name_prefix.replace("-", "_") + "_lake"
        governed = {name: storage.buckets[name] for name in GOVERNED_BUCKETS}

        # Lake Formation, not IAM, decides who reads the catalog: no IAMAllowedPrincipals
        # grant on new databases and tables. The CDK deploy role administers it, so this
        # stack can tag and grant. The settings are one per account and region.
        cfn_exec_role_arn = Fn.sub(
            "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/cdk-"
            f"{DefaultStackSynthesizer.DEFAULT_QUALIFIER}"
            "-cfn-exec-role-${AWS::AccountId}-${AWS::Region}"
        )
        self.data_lake_settings = lakeformation.CfnDataLakeSettings(
            self,
            "DataLakeSettings",
            admins=[
                lakeformation.CfnDataLakeSettings.DataLakePrincipalProperty(
                    data_lake_principal_identifier=cfn_exec_role_arn
                )
            ],
            create_database_default_permissions=[],
            create_table_default_permissions=[],
        )

        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description=f"{config.name_prefix}: the Veracity lake, from veracity.schema",
                create_table_default_permissions=[],
            ),
        )
        self.database.add_resource_dependency(self.data_lake_settings)

        self.tables: dict[str, glue.CfnTable] = {}
        for table in CATALOG_TABLES:
            cfn_table = self._table(table, storage.buckets[table.bucket].bucket_name)
            cfn_table.add_resource_dependency(self.database)
            if table.view_of is not None:  # after the tables it reads
                for part in (f"{table.view_of}_layers", f"{table.view_of}_removed"):
                    cfn_table.add_resource_dependency(self.tables[part])
            self.tables[table.name] = cfn_table

        # The reporting views (sql/views), as Athena views in the catalog, after what they read.
        views = load_views(views_dir)
        self.reporting_views: dict[str, glue.CfnTable] = {}
        for name, columns in reporting_view_columns(views).items():
            view = next(v for v in views if v.name == name)
            cfn_view = self._presto_view(
                f"{_pascal(name)}ReportingView", name, f"Reporting view: sql/views/{name}.sql", view.query,
                [glue.CfnTable.ColumnProperty(name=c, type=t) for c, t in columns],
            )
            cfn_view.add_resource_dependency(self.database)
            for _, read in view.tables:
                cfn_view.add_resource_dependency(self.tables.get(read) or self.reporting_views[read])
            self.reporting_views[name] = cfn_view

        # Lake Formation reaches the governed buckets through its own role, which
        # holds the only S3 and KMS access to them that queries use.
        self.data_access_role = iam.Role(
            self,
            "DataAccessRole",
            assumed_by=iam.ServicePrincipal("lakeformation.amazonaws.com"),
            description=f"{config.name_prefix}: Lake Formation's access to the governed buckets",
        )
        self._allow_key(self.data_access_role, storage, LAKE_KEY_ACTIONS)
        self.locations: dict[str, lakeformation.CfnResource] = {}
        for name, bucket in governed.items():
            self._allow_objects(
                self.data_access_role,
                bucket,
                "*",
                LAKE_OBJECT_ACTIONS,
                "Lake Formation's data-access role reads and writes the objects of the bucket it "
                "is registered for, for the queries it serves; each bucket holds one lake zone.",
            )
            location = lakeformation.CfnResource(
                self,
                f"{name}Location",
                resource_arn=bucket.bucket_arn,
                role_arn=self.data_access_role.role_arn,
                use_service_linked_role=False,
            )
            # The role's policy must be in place before Lake Formation vends its credentials
            # (the role itself the location reaches by reference already).
            location.node.add_dependency(self.data_access_role.node.find_child("DefaultPolicy"))
            self.locations[name] = location

        # One tag, its values from the schema; the database carries "general", which its
        # tables and columns inherit, and each sensitive column overrides it.
        self.sensitivity_tag = lakeformation.CfnTag(
            self,
            "SensitivityTag",
            catalog_id=Aws.ACCOUNT_ID,
            tag_key=SENSITIVITY_TAG,
            tag_values=list(SENSITIVITY_LEVELS),
        )
        self.sensitivity_tag.add_resource_dependency(self.data_lake_settings)
        governance = [
            self.sensitivity_tag,
            self.data_lake_settings,
            self.database,
            *self.tables.values(),
        ]
        self.tag_associations = [
            self._tag(
                "DatabaseSensitivity",
                lakeformation.CfnTagAssociation.ResourceProperty(
                    database=lakeformation.CfnTagAssociation.DatabaseResourceProperty(
                        catalog_id=Aws.ACCOUNT_ID, name=self.database_name
                    )
                ),
                "general",
                governance,
            )
        ]
        # A view's columns carry no tags of their own: Athena runs a view with the querying
        # principal's grants on the tables it reads, whose columns carry them.
        for table in (t for t in CATALOG_TABLES if t.view_of is None):
            for level, columns in sensitive_columns(table.schema).items():
                columns_resource = lakeformation.CfnTagAssociation.TableWithColumnsResourceProperty(
                    catalog_id=Aws.ACCOUNT_ID,
                    database_name=self.database_name,
                    name=table.name,
                    column_names=columns,
                )
                self.tag_associations.append(
                    self._tag(
                        f"{_pascal(table.name)}{level.capitalize()}Columns",
                        lakeformation.CfnTagAssociation.ResourceProperty(
                            table_with_columns=columns_resource
                        ),
                        level,
                        governance,
                    )
                )

        # Grants, by tag expression: a table or column is reachable only through the
        # sensitivity values a principal is granted.
        self.permissions: list[lakeformation.CfnPrincipalPermissions] = []
        grant_after = governance + self.tag_associations
        self._grant_by_tag(
            "Pipeline",
            pipeline_role,
            SENSITIVITY_LEVELS,
            ["SELECT", "INSERT", "DELETE", "DESCRIBE", "ALTER"],
            grant_after,
        )
        for name, location in self.locations.items():
            data_location = lakeformation.CfnPrincipalPermissions.DataLocationResourceProperty(
                catalog_id=Aws.ACCOUNT_ID, resource_arn=governed[name].bucket_arn
            )
            permission = self._grant(
                f"PipelineLocation{name}",
                pipeline_role,
                lakeformation.CfnPrincipalPermissions.ResourceProperty(data_location=data_location),
                ["DATA_LOCATION_ACCESS"],
            )
            for dependency in [location, self.data_lake_settings]:
                permission.add_resource_dependency(dependency)

        self.workgroups: dict[str, athena.CfnWorkGroup] = {}
        self.analyst_role = self._consumer(
            "Analyst", ("general",), config, storage, grant_after, "reads general columns only"
        )
        self.investigator_role = self._consumer(
            "Investigator",
            SENSITIVITY_LEVELS,
            config,
            storage,
            grant_after,
            "reads every column, identifiers and restricted fields included",
        )

    def _table(self, table: CatalogTable, bucket_name: str) -> glue.CfnTable:
        columns = [
            glue.CfnTable.ColumnProperty(
                name=column.name,
                type=glue_type(column.type),
                comment=column.doc[:GLUE_COMMENT_LIMIT],
            )
            for column in table.schema.columns
        ]
        parquet = glue.CfnTable.SerdeInfoProperty(
            serialization_library=PARQUET_SERDE, parameters={"serialization.format": "1"}
        )
        if table.view_of is not None:
            return self._view(table, columns)
        if table.json:
            serde, input_format, output_format, classification = (
                glue.CfnTable.SerdeInfoProperty(serialization_library=JSON_SERDE,
                                                parameters={"ignore.malformed.json": "FALSE"}),
                TEXT_INPUT, SYMLINK_OUTPUT, "json")
        else:
            serde, input_format, output_format, classification = (
                parquet, SYMLINK_INPUT if table.symlink else PARQUET_INPUT,
                SYMLINK_OUTPUT if table.symlink else PARQUET_OUTPUT, "parquet")
        return glue.CfnTable(
            self,
            f"{_pascal(table.name)}Table",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=table.name,
                description=table.schema.doc[:GLUE_COMMENT_LIMIT],
                table_type="EXTERNAL_TABLE",
                parameters={"classification": classification, "EXTERNAL": "TRUE"},
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=columns,
                    location=f"s3://{bucket_name}/{table.folder}",
                    input_format=input_format,
                    output_format=output_format,
                    serde_info=serde,
                ),
            ),
        )

    def _view(self, table: CatalogTable, columns: list[glue.CfnTable.ColumnProperty]) -> glue.CfnTable:
        """The Athena view serving a layered snapshot table."""
        name, database = table.view_of, self.database_name
        sql = athena_table_sql(name, f'"{database}"."{name}_layers"', f'"{database}"."{name}_removed"')
        return self._presto_view(f"{_pascal(table.name)}View", name, table.schema.doc, sql, columns)

    def _presto_view(self, id: str, name: str, description: str, sql: str,
                     columns: list[glue.CfnTable.ColumnProperty]) -> glue.CfnTable:
        """An Athena view in the Glue catalog: the Trino SQL, encoded as Athena stores it."""
        database = self.database_name
        presto = {
            "originalSql": sql, "catalog": "awsdatacatalog", "schema": database,
            "columns": [{"name": c.name, "type": PRESTO_TYPES.get(c.type, c.type)} for c in columns],
        }
        encoded = base64.b64encode(json.dumps(presto).encode()).decode()
        return glue.CfnTable(
            self,
            id,
            catalog_id=Aws.ACCOUNT_ID,
            database_name=database,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=description[:GLUE_COMMENT_LIMIT],
                table_type="VIRTUAL_VIEW",
                parameters={"presto_view": "true", "comment": "Presto View"},
                view_original_text=f"/* Presto View: {encoded} */",
                view_expanded_text="/* Presto View */",
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=columns, serde_info=glue.CfnTable.SerdeInfoProperty()
                ),
            ),
        )

    def _tag(
        self,
        id: str,
        resource: lakeformation.CfnTagAssociation.ResourceProperty,
        level: str,
        after: list,
    ) -> lakeformation.CfnTagAssociation:
        association = lakeformation.CfnTagAssociation(
            self,
            id,
            resource=resource,
            lf_tags=[
                lakeformation.CfnTagAssociation.LFTagPairProperty(
                    catalog_id=Aws.ACCOUNT_ID, tag_key=SENSITIVITY_TAG, tag_values=[level]
                )
            ],
        )
        for dependency in after:
            association.add_resource_dependency(dependency)
        return association

    def _grant(
        self,
        id: str,
        principal: iam.IRole,
        resource: lakeformation.CfnPrincipalPermissions.ResourceProperty,
        permissions: list[str],
    ) -> lakeformation.CfnPrincipalPermissions:
        permission = lakeformation.CfnPrincipalPermissions(
            self,
            id,
            catalog=Aws.ACCOUNT_ID,
            principal=lakeformation.CfnPrincipalPermissions.DataLakePrincipalProperty(
                data_lake_principal_identifier=principal.role_arn
            ),
            resource=resource,
            permissions=permissions,
            permissions_with_grant_option=[],
        )
        self.permissions.append(permission)
        return permission

    def _grant_by_tag(
        self,
        id: str,
        principal: iam.IRole,
        levels: tuple[str, ...],
        table_permissions: list[str],
        after: list,
    ) -> None:
        """``table_permissions`` on the tables and columns tagged with ``levels``, and
        DESCRIBE on the database (tag grants give no implicit database access)."""
        expression = [
            lakeformation.CfnPrincipalPermissions.LFTagProperty(
                tag_key=SENSITIVITY_TAG, tag_values=list(levels)
            )
        ]
        for resource_type, permissions in (
            ("DATABASE", ["DESCRIBE"]),
            ("TABLE", table_permissions),
        ):
            tag_policy = lakeformation.CfnPrincipalPermissions.LFTagPolicyResourceProperty(
                catalog_id=Aws.ACCOUNT_ID, resource_type=resource_type, expression=expression
            )
            permission = self._grant(
                f"{id}{resource_type.capitalize()}Grant",
                principal,
                lakeformation.CfnPrincipalPermissions.ResourceProperty(lf_tag_policy=tag_policy),
                permissions,
            )
            for dependency in after:
                permission.add_resource_dependency(dependency)

    def _consumer(
        self,
        id: str,
        levels: tuple[str, ...],
        config: EnvironmentConfig,
        storage: StorageStack,
        after: list,
        reads: str,
    ) -> iam.Role:
        """A role people in the account assume to query the lake in Athena, through
        its own workgroup: query history and results are not shared between roles."""
        role = iam.Role(
            self,
            f"{id}Role",
            assumed_by=iam.AccountRootPrincipal(),
            description=f"{config.name_prefix}: Athena over the lake; {reads}",
        )
        results = storage.buckets["AthenaResults"]
        results_prefix = f"{id.lower()}/"
        workgroup = enforced_workgroup(
            self, f"{id}WorkGroup", name=f"{config.name_prefix}-{id.lower()}",
            description=f"Athena for the {id.lower()} role: {reads}",
            config=config, storage=storage, results_prefix=results_prefix,
        )
        self.workgroups[id.lower()] = workgroup

        # Athena writes and reads the role's results with the role's own credentials,
        # under the role's prefix only: one role never reads another's results.
        self._allow_key(role, storage, RESULT_KEY_ACTIONS)
        self._allow_objects(
            role,
            results,
            f"{results_prefix}*",
            RESULT_OBJECT_ACTIONS,
            f"Athena writes and reads this role's query results as objects under its own "
            f"prefix ({results_prefix}) of the Athena results bucket, and nowhere else.",
        )
        workgroup_arn = self.format_arn(
            service="athena", resource="workgroup", resource_name=workgroup.name
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=ATHENA_QUERY_ACTIONS, resources=[workgroup_arn])
        )
        glue_arn = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        role.add_to_policy(
            iam.PolicyStatement(
                actions=GLUE_READ_ACTIONS,
                resources=[
                    f"{glue_arn}:catalog",
                    f"{glue_arn}:database/{self.database_name}",
                    # Athena over Lake Formation also describes the default database.
                    f"{glue_arn}:database/default",
                    *(f"{glue_arn}:table/{self.database_name}/{name}" for name in self.tables),
                ],
            )
        )
        # lakeformation:GetDataAccess supports no resource-level permissions: the API
        # requires "*". What it vends is bounded by the Lake Formation grants below.
        role.add_to_policy(
            iam.PolicyStatement(actions=["lakeformation:GetDataAccess"], resources=["*"])
        )
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]", "lakeformation:GetDataAccess has no resource-level permissions and requires "
                    "Resource '*'; the Lake Formation grants to this role bound what it vends.")
        self._grant_by_tag(id, role, levels, ["SELECT", "DESCRIBE"], after)
        return role

    def _allow_key(self, role: iam.Role, storage: StorageStack, actions: list[str]) -> None:
        role.add_to_policy(iam.PolicyStatement(actions=actions, resources=[storage.key.key_arn]))

    def _allow_objects(
        self, role: iam.Role, bucket: s3.IBucket, key_pattern: str, actions: list[str], reason: str
    ) -> None:
        """``actions`` on the objects of ``bucket`` matching ``key_pattern``, and listing
        the bucket; the object wildcard is acknowledged to cdk-nag with ``reason``."""
        role.add_to_policy(
            iam.PolicyStatement(actions=BUCKET_ACTIONS, resources=[bucket.bucket_arn])
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=actions, resources=[bucket.arn_for_objects(key_pattern)])
        )
        # cdk-nag names the finding after the resource as this stack sees it: the
        # storage stack's export of the bucket ARN (the one CDK creates for the reference).
        export = self.resolve(Stack.of(bucket).export_value(bucket.bucket_arn))["Fn::ImportValue"]
        acknowledge(role, f"AwsSolutions-IAM5[Resource::{export}/{key_pattern}]", reason)


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
