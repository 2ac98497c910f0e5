"""Analytics for one environment: an Athena workgroup, the reporting views and,
behind the ``quicksight`` feature flag, QuickSight datasets over them.

View files
    Each ``*.sql`` file in ``sql/views`` defines one view, named after the file's stem
    (lower case letters, digits and underscores). The file holds a bare query in
    Athena's (Trino) dialect: ``SELECT ...`` (or ``WITH ... SELECT``, or a UNION),
    never ``CREATE VIEW``, so the same file runs as is in the Athena console and in
    ``veracity sql``. A trailing semicolon is allowed. The stack wraps the query in
    ``CREATE OR REPLACE VIEW "<database>"."<stem>" AS ...`` and deploys that statement
    as an Athena named query in the workgroup (``AnalyticsStack.views`` holds them).
    The catalog stack creates the views themselves at deploy (Glue view tables, typed
    by ``stacks.catalog.reporting_view_columns``); the named query recreates one by hand.
    Every file is parsed at synth time: one that does not parse, holds more than one
    statement, or holds anything but a query fails synthesis naming the file, so a
    broken view never deploys.

    Every output column needs a lower-case name (Glue's case): alias expressions, and
    select no ``*`` (the datasets need the columns, and Athena freezes ``*`` when a
    view is created). QuickSight column types come from the query: a CAST, a literal,
    an aggregate such as ``count(*)``, or anything else sqlglot can type. A bare
    column of a table cannot be typed at synth time and becomes STRING, so CAST the
    columns whose type matters in a chart (dates, numbers).

Row-level security contract (QuickSight only)
    The table ``rls_rules`` in the same database holds one rule per row, with string
    columns ``username`` (a QuickSight user name), ``groupname`` (a QuickSight group
    name), ``area`` and ``role``. Set one of username and groupname; that user or
    group then sees the rows of every dataset whose ``area`` and ``role`` equal the
    rule's, a null area or role matching any value. A user or group with no rule sees
    nothing. Values are case sensitive. So every view must output the string columns
    ``area`` (the policing area a row belongs to) and ``role`` (the role that may see
    it); synthesis fails naming the file when one does not. The rules dataset is
    shared with no one: readers need no access to it for the rules to apply.

QuickSight reads through a role of its own (see ``_quicksight_role``), which gets the
lake's data from Lake Formation: it needs Lake Formation SELECT and DESCRIBE on the
views, the tables they read and ``rls_rules``, granted where the catalog is governed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import sqlglot
import sqlglot.errors
from aws_cdk import Acknowledgment, Aws, Stack, Validations
from aws_cdk import aws_athena as athena
from aws_cdk import aws_iam as iam
from aws_cdk import aws_quicksight as quicksight
from constructs import Construct
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.tokens import TokenType

from stacks.athena import (
    BUCKET_ACTIONS,
    GLUE_READ_ACTIONS,
    RESULT_OBJECT_ACTIONS,
    enforced_workgroup,
)
from stacks.config import EnvironmentConfig
from stacks.nag import acknowledge
from stacks.storage import StorageStack
from veracity.sql import VIEWS_DIR

RESULTS_PREFIX = "results/"


def rls_dataset_id(config: EnvironmentConfig) -> str:
    return f"{config.name_prefix}-rls-rules"


def view_dataset_id(config: EnvironmentConfig, view: str) -> str:
    return f"{config.name_prefix}-{view}"


def spice_dataset_ids(config: EnvironmentConfig, views_dir: Path = VIEWS_DIR) -> list[str]:
    """The SPICE datasets the stack makes (none without the quicksight feature): the
    pipeline refreshes them after each run it publishes."""
    if not config.feature("quicksight"):
        return []
    return [rls_dataset_id(config)] + [view_dataset_id(config, v.name) for v in load_views(views_dir)]
RLS_TABLE = "rls_rules"
RLS_FIELDS = ("area", "role")
# QuickSight can only refresh MINUTE15/MINUTE30 (incremental only), HOURLY, DAILY,
# WEEKLY or MONTHLY, at most 5 schedules a dataset: "every schedule_hours hours"
# cannot be expressed. The pipeline refreshes SPICE after each run it publishes
# (stacks/processing.py); the daily schedule, before the working day, is the backstop.
REFRESH_TIME, REFRESH_TIME_ZONE = "06:00", "Europe/London"

# IAM actions for the QuickSight role, listed one by one and scoped by ARN.
ATHENA_QUERY_ACTIONS = [
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:GetQueryResultsStream",
    "athena:GetWorkGroup",
    "athena:StartQueryExecution",
    "athena:StopQueryExecution",
]

# Read-only QuickSight actions for the configured principals.
DATASET_READ = [
    "quicksight:DescribeDataSet",
    "quicksight:DescribeDataSetPermissions",
    "quicksight:PassDataSet",
    "quicksight:DescribeIngestion",
    "quicksight:ListIngestions",
]
DATA_SOURCE_READ = [
    "quicksight:DescribeDataSource",
    "quicksight:DescribeDataSourcePermissions",
    "quicksight:PassDataSource",
]

_VIEW_NAME = re.compile(r"[a-z][a-z0-9_]*")
_COLUMN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_DIALECT = "athena"
_FLOATS = (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT, exp.DataType.Type.UDOUBLE)
_DATETIMES = exp.DataType.TEMPORAL_TYPES - {exp.DataType.Type.TIME, exp.DataType.Type.TIMETZ}


class ViewError(ValueError):
    """A view file that must not deploy."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a QuickSight input column type
    sub_type: str | None = None  # FIXED or FLOAT, for DECIMAL only


@dataclass(frozen=True)
class View:
    path: Path
    name: str
    query: str  # the file's query as written, without a trailing semicolon
    columns: tuple[Column, ...]
    tables: tuple[tuple[str | None, str], ...]  # (database or None, table) the query reads

    def ddl(self, database: str) -> str:
        return f'CREATE OR REPLACE VIEW "{database}"."{self.name}" AS\n{self.query}'


def load_views(views_dir: Path) -> list[View]:
    """One view per ``*.sql`` file, sorted by name; none when the directory is missing."""
    if not views_dir.is_dir():
        return []
    return [read_view(path) for path in sorted(views_dir.glob("*.sql"))]


def read_view(path: Path) -> View:
    if not _VIEW_NAME.fullmatch(path.stem):
        raise ViewError(
            f"{path}: a view file's name must be lower case letters, digits and underscores"
        )
    text = path.read_text()
    try:
        statements = [
            s
            for s in sqlglot.parse(text, read=_DIALECT)
            if s is not None and not isinstance(s, exp.Semicolon)  # a comment after the last ';'
        ]
    except sqlglot.errors.ParseError as error:
        first = error.errors[0] if error.errors else {}
        where = f" at line {first['line']}, column {first['col']}" if first else ""
        raise ViewError(
            f"{path}: SQL syntax error{where}: {first.get('description', error)}"
        ) from None
    if len(statements) != 1:
        raise ViewError(f"{path}: expected one query, got {len(statements)} statements")
    [query] = statements
    if not isinstance(query, exp.Query):
        raise ViewError(
            f"{path}: expected a bare query (SELECT ...), got {query.key.upper()}; "
            "the stack writes the CREATE OR REPLACE VIEW itself"
        )
    return View(
        path,
        path.stem,
        _without_trailing_semicolons(text),
        output_columns(query, path),
        tables_read(query),
    )


def _without_trailing_semicolons(text: str) -> str:
    tokens = Dialect.get_or_raise(_DIALECT).tokenize(text)
    end = len(text)
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        end = tokens.pop().start
    return text[:end].strip()


def output_columns(query: exp.Query, path: Path) -> tuple[Column, ...]:
    """The view's columns, typed where sqlglot can."""
    columns = []
    for position, projection in enumerate(annotate_types(query, dialect=_DIALECT).selects, 1):
        if projection.is_star:
            raise ViewError(f"{path}: column {position} is '*'; list the view's columns")
        if not isinstance(projection, exp.Alias | exp.Column):
            raise ViewError(
                f"{path}: column {position} ({projection.sql(_DIALECT)}) needs an alias"
            )
        name = projection.alias_or_name
        if not _COLUMN_NAME.fullmatch(name):
            # Glue keeps column names in lower case: the datasets name them the same way.
            raise ViewError(f"{path}: column {position} ({name!r}) must be named in lower case")
        columns.append(Column(name, *quicksight_type(projection.type)))
    names = [c.name for c in columns]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise ViewError(f"{path}: duplicate column names {duplicates}")
    return tuple(columns)


def tables_read(query: exp.Query) -> tuple[tuple[str | None, str], ...]:
    """The (database or None, table) pairs a query reads, its own WITH names left out."""
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    return tuple(
        sorted(
            {
                (table.db or None, table.name)
                for table in query.find_all(exp.Table)
                if table.db or table.name not in ctes
            },
            key=str,
        )
    )


def require_rls_fields(view: View) -> None:
    """Row-level security filters every dataset on its string columns area and role."""
    types = {c.name: c.type for c in view.columns}
    for field in RLS_FIELDS:
        if types.get(field) != "STRING":
            raise ViewError(
                f"{view.path}: row-level security needs a string column {field!r} in every "
                "view (see the contract in stacks/analytics.py)"
            )


def quicksight_type(dtype: exp.DataType | None) -> tuple[str, str | None]:
    """QuickSight's type for a sqlglot type; STRING when sqlglot could not type the column."""
    if dtype is None:
        return "STRING", None
    if dtype.is_type(*exp.DataType.INTEGER_TYPES):
        return "INTEGER", None
    if dtype.is_type(*_FLOATS):
        return "DECIMAL", "FLOAT"
    if dtype.is_type(*exp.DataType.REAL_TYPES):
        return "DECIMAL", "FIXED"
    if dtype.is_type(*_DATETIMES):
        return "DATETIME", None
    if dtype.is_type(exp.DataType.Type.BOOLEAN):
        return "BOOLEAN", None
    return "STRING", None  # text, and UNKNOWN: untyped columns, arrays, maps, rows, JSON


class AnalyticsStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        storage: StorageStack,
        database_name: str,
        views_dir: Path = VIEWS_DIR,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.config = config
        self.storage = storage
        self.database_name = database_name
        self.workgroup_name = f"{config.name_prefix}-analytics"
        self.workgroup = enforced_workgroup(
            self, "WorkGroup", name=self.workgroup_name,
            description=f"{config.name_prefix}: Veracity reporting queries and views",
            config=config, storage=storage, results_prefix=RESULTS_PREFIX,
        )

        views = load_views(views_dir)
        self.views: dict[str, str] = {v.name: v.ddl(database_name) for v in views}
        for view in views:
            athena.CfnNamedQuery(
                self,
                f"View-{view.name}",
                name=view.name,
                description=f"Creates or replaces the view {database_name}.{view.name}",
                database=database_name,
                work_group=self.workgroup.ref,
                query_string=self.views[view.name],
            )

        self.datasets: dict[str, quicksight.CfnDataSet] = {}  # view name -> its dataset
        self.quicksight_role: iam.Role | None = None
        if config.feature("quicksight"):
            self._quicksight(views)

    def _quicksight(self, views: list[View]) -> None:
        for view in views:
            require_rls_fields(view)
        role, policy = self._quicksight_role(views)
        self.quicksight_role = role
        data_source = quicksight.CfnDataSource(
            self,
            "AthenaDataSource",
            aws_account_id=Aws.ACCOUNT_ID,
            data_source_id=f"{self.config.name_prefix}-athena",
            name=f"{self.config.name_prefix} Athena",
            type="ATHENA",
            data_source_parameters=quicksight.CfnDataSource.DataSourceParametersProperty(
                athena_parameters=quicksight.CfnDataSource.AthenaParametersProperty(
                    work_group=self.workgroup.ref, role_arn=role.role_arn
                )
            ),
            ssl_properties=quicksight.CfnDataSource.SslPropertiesProperty(disable_ssl=False),
            permissions=self._permissions(
                quicksight.CfnDataSource.ResourcePermissionProperty, DATA_SOURCE_READ
            ),
        )
        # QuickSight tests the connection on creation: the role needs its policy by then.
        data_source.node.add_dependency(policy)

        rules = self._dataset(
            "RlsRules",
            data_source,
            data_set_id=rls_dataset_id(self.config),
            # QuickSight finds the rule columns by these exact names; Glue's are lower
            # case, and Athena keeps a quoted alias's case.
            sql=(
                'SELECT username AS "UserName", groupname AS "GroupName", area, role '
                f'FROM "{self.database_name}"."{RLS_TABLE}"'
            ),
            columns=[Column(c, "STRING") for c in ("UserName", "GroupName", *RLS_FIELDS)],
            shared=False,
        )
        for view in views:
            self.datasets[view.name] = self._dataset(
                f"DataSet-{view.name}",
                data_source,
                data_set_id=view_dataset_id(self.config, view.name),
                sql=f'SELECT * FROM "{self.database_name}"."{view.name}"',
                columns=list(view.columns),
                row_level_permission_data_set=quicksight.CfnDataSet.RowLevelPermissionDataSetProperty(
                    arn=rules.attr_arn,
                    permission_policy="GRANT_ACCESS",
                    format_version="VERSION_1",  # rules name users and groups, not ARNs
                    status="ENABLED",
                ),
            )
            Validations.of(self.datasets[view.name]).acknowledge(
                Acknowledgment(
                    id="CloudFormation-Validate::W9009",
                    reason="RowLevelPermissionDataSet is deprecated for SemanticModelConfiguration, "
                    "which needs the dataset rewritten as a DataPrepConfiguration; the API still "
                    "applies it to datasets defined with a PhysicalTableMap, as these are",
                )
            )

    def _dataset(
        self,
        id: str,
        data_source: quicksight.CfnDataSource,
        *,
        data_set_id: str,
        sql: str,
        columns: list[Column],
        shared: bool = True,
        row_level_permission_data_set=None,
    ) -> quicksight.CfnDataSet:
        table = "query"
        dataset = quicksight.CfnDataSet(
            self,
            id,
            aws_account_id=Aws.ACCOUNT_ID,
            data_set_id=data_set_id,
            name=data_set_id,
            import_mode="SPICE",
            physical_table_map={
                table: quicksight.CfnDataSet.PhysicalTableProperty(
                    custom_sql=quicksight.CfnDataSet.CustomSqlProperty(
                        data_source_arn=data_source.attr_arn,
                        name=data_set_id,
                        sql_query=sql,
                        columns=[
                            quicksight.CfnDataSet.InputColumnProperty(
                                name=c.name, type=c.type, sub_type=c.sub_type
                            )
                            for c in columns
                        ],
                    )
                )
            },
            row_level_permission_data_set=row_level_permission_data_set,
            # Don't hold the deployment on the first load: the views and rls_rules
            # may only exist once the pipeline has run; the schedule loads them.
            ingestion_wait_policy=quicksight.CfnDataSet.IngestionWaitPolicyProperty(
                wait_for_spice_ingestion=False
            ),
            permissions=(
                self._permissions(quicksight.CfnDataSet.ResourcePermissionProperty, DATASET_READ)
                if shared
                else None
            ),
        )
        schedule = quicksight.CfnRefreshSchedule(
            self,
            f"{id}-Refresh",
            aws_account_id=Aws.ACCOUNT_ID,
            data_set_id=data_set_id,
            schedule=quicksight.CfnRefreshSchedule.RefreshScheduleMapProperty(
                schedule_id="daily",
                refresh_type="FULL_REFRESH",
                schedule_frequency=quicksight.CfnRefreshSchedule.ScheduleFrequencyProperty(
                    interval="DAILY", time_of_the_day=REFRESH_TIME, time_zone=REFRESH_TIME_ZONE
                ),
            ),
        )
        schedule.node.add_dependency(dataset)  # data_set_id is a plain string, not a reference
        return dataset

    def _permissions(self, permission_type, actions: list[str]) -> list | None:
        # CloudFormation rejects an empty list: no principals means no Permissions.
        principals = self.config.quicksight_principals
        return [permission_type(principal=p, actions=actions) for p in principals] or None

    def _quicksight_role(self, views: list[View]) -> tuple[iam.Role, iam.Policy]:
        """The role QuickSight assumes for this data source only, and its policy.

        The account-wide aws-quicksight-service-role-v0 serves every Athena data
        source in the account: granting it the person data would let any QuickSight
        author reach it. AthenaParameters.RoleArn overrides it for this source alone.
        The lake's data is read through Lake Formation, which vends credentials for
        the tables this role is granted there; it gets no S3 access to the lake.
        """
        role = iam.Role(
            self,
            "QuickSightAthenaRole",
            assumed_by=iam.ServicePrincipal("quicksight.amazonaws.com"),
            description=f"{self.config.name_prefix}: QuickSight reads the Veracity views in Athena",
        )
        database = self.database_name
        # Athena reads the view, the tables the view reads, and the default database.
        tables = sorted(
            {(database, RLS_TABLE)}
            | {(database, view.name) for view in views}
            | {(db or database, table) for view in views for db, table in view.tables}
        )
        results_arn, results_export = self._import(self.storage.buckets["AthenaResults"].bucket_arn)
        policy = iam.Policy(
            self,
            "QuickSightAthenaAccess",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=ATHENA_QUERY_ACTIONS,
                    resources=[
                        self.format_arn(
                            service="athena",
                            resource="workgroup",
                            resource_name=self.workgroup_name,
                        )
                    ],
                ),
                iam.PolicyStatement(
                    actions=GLUE_READ_ACTIONS,
                    resources=[
                        self.format_arn(service="glue", resource="catalog"),
                        *(
                            self.format_arn(service="glue", resource="database", resource_name=db)
                            for db in sorted({database, "default", *(db for db, _ in tables)})
                        ),
                        *(
                            self.format_arn(
                                service="glue", resource="table", resource_name=f"{db}/{t}"
                            )
                            for db, t in tables
                        ),
                    ],
                ),
                # GetDataAccess has no resource-level permissions; what Lake Formation
                # vends is bounded by its grants to this role.
                iam.PolicyStatement(actions=["lakeformation:GetDataAccess"], resources=["*"]),
                iam.PolicyStatement(actions=BUCKET_ACTIONS, resources=[results_arn]),
                iam.PolicyStatement(  # Athena writes the results as the caller
                    actions=RESULT_OBJECT_ACTIONS,
                    resources=[f"{results_arn}/{RESULTS_PREFIX}*"],
                ),
                iam.PolicyStatement(  # the results are SSE-KMS with the storage key
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[self.storage.key.key_arn],
                ),
            ],
        )
        for finding, reason in {
            "Resource::*": "lakeformation:GetDataAccess has no resource-level permissions and "
            "requires Resource '*'; the Lake Formation grants to this role bound what it vends",
            f"Resource::{results_export}/{RESULTS_PREFIX}*": "The query results of this "
            f"workgroup, under {RESULTS_PREFIX} in the Athena results bucket only",
        }.items():
            acknowledge(policy, f"AwsSolutions-IAM5[{finding}]", reason)
        return role, policy

    def _import(self, value: str) -> tuple[str, str]:
        """A storage stack value as imported here, and the export name cdk-nag reports it by.

        export_value makes the same export an ordinary cross-stack reference would,
        but tells us its name now, so a finding on it can be acknowledged exactly.
        """
        imported = self.storage.export_value(value)
        return imported, self.resolve(imported)["Fn::ImportValue"]
