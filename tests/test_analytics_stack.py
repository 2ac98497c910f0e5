"""The analytics stack: Athena workgroup, view named queries and QuickSight datasets,
synthesized in-process for every environment of cdk.json, no AWS access."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import pytest
import sqlglot
from aws_cdk import App, Environment, Stage, Validations
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
from sqlglot import exp

from stacks.analytics import (
    DATA_SOURCE_READ,
    DATASET_READ,
    VIEWS_DIR,
    AnalyticsStack,
    ViewError,
    load_views,
    read_view,
    require_rls_fields,
)
from stacks.config import ENVIRONMENTS, EnvironmentConfig
from stacks.storage import StorageStack
from tests.cdk_app import CONTEXT

ROOT = Path(__file__).resolve().parent.parent
# cdk.json shares QuickSight with no one yet; the test environment gets two principals.
PRINCIPALS = (
    "arn:aws:quicksight:eu-west-2:111111111111:group/default/veracity-analysts",
    "arn:aws:quicksight:eu-west-2:111111111111:user/default/jane.doe",
)

PERSON_360 = """\
-- One row per golden person: who they are and how much is known about them.
SELECT p.person_id,
       p.first_name,
       p.last_name,
       CAST(p.date_of_birth AS DATE) AS date_of_birth,
       CAST(p.record_count AS BIGINT) AS record_count,
       strpos(p.source_systems, ';') > 0 AS seen_in_several_systems,
       CAST(p.last_seen AS TIMESTAMP) AS last_seen,
       split_part(p.postcode, ' ', 1) AS area,
       'investigator' AS role
FROM person p;
"""
PERSON_360_COLUMNS = [
    {"Name": "person_id", "Type": "STRING"},  # a bare column: untyped at synth time
    {"Name": "first_name", "Type": "STRING"},
    {"Name": "last_name", "Type": "STRING"},
    {"Name": "date_of_birth", "Type": "DATETIME"},
    {"Name": "record_count", "Type": "INTEGER"},
    {"Name": "seen_in_several_systems", "Type": "BOOLEAN"},
    {"Name": "last_seen", "Type": "DATETIME"},
    {"Name": "area", "Type": "STRING"},
    {"Name": "role", "Type": "STRING"},
]

CRIME_TRENDS = """\
-- Persons by area and month last seen, with how many records each resolved.
WITH located AS (
    SELECT split_part(p.postcode, ' ', 1) AS area, p.last_seen, p.record_count
    FROM person p
    WHERE p.postcode IS NOT NULL
)
SELECT area,
       'analyst' AS role,
       CAST(date_trunc('month', last_seen) AS DATE) AS month,
       date_trunc('week', last_seen) AS week,
       count(*) AS persons,
       CAST(avg(record_count) AS DOUBLE) AS mean_records,
       CAST(sum(record_count) AS DECIMAL(18, 2)) AS records
FROM located
GROUP BY 1, 2, 3, 4
"""
CRIME_TRENDS_COLUMNS = [
    {"Name": "area", "Type": "STRING"},
    {"Name": "role", "Type": "STRING"},
    {"Name": "month", "Type": "DATETIME"},
    {"Name": "week", "Type": "STRING"},  # date_trunc of an untyped column: STRING
    {"Name": "persons", "Type": "INTEGER"},
    {"Name": "mean_records", "Type": "DECIMAL", "SubType": "FLOAT"},
    {"Name": "records", "Type": "DECIMAL", "SubType": "FIXED"},
]
VIEWS = {"crime_trends": CRIME_TRENDS_COLUMNS, "person_360": PERSON_360_COLUMNS}


def configs() -> dict[str, EnvironmentConfig]:
    loaded = {
        name: EnvironmentConfig.from_dict(name, CONTEXT["environments"][name])
        for name in ENVIRONMENTS
    }
    loaded["test"] = dataclasses.replace(loaded["test"], quicksight_principals=PRINCIPALS)
    return loaded


def database(env: str) -> str:
    return f"veracity_{env}_lake"


def write_views(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


def build(env: str, views_dir: Path, app: App | None = None) -> AnalyticsStack:
    app = app or App(context=CONTEXT)
    config = configs()[env]
    stage = Stage(app, f"Veracity-{env}", env=Environment(region=config.region))
    storage = StorageStack(stage, "Storage", config=config)
    return AnalyticsStack(
        stage,
        "Analytics",
        config=config,
        storage=storage,
        database_name=database(env),
        views_dir=views_dir,
    )


@pytest.fixture(scope="module")
def views_dir(tmp_path_factory) -> Path:
    return write_views(
        tmp_path_factory.mktemp("views"),
        {"person_360.sql": PERSON_360, "crime_trends.sql": CRIME_TRENDS, "README.md": "not a view"},
    )


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory, views_dir):
    """One app holding every environment, synthesized once with cdk-nag."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(context=CONTEXT, outdir=str(outdir))
    stacks = {env: build(env, views_dir, app) for env in ENVIRONMENTS}
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with contextlib.suppress(RuntimeError):  # the report says why; see the nag test
        app.synth()
    report = json.loads((outdir / "validation-report.json").read_text())
    return stacks, report


@pytest.fixture(scope="module")
def stacks(synthesized) -> dict[str, AnalyticsStack]:
    return synthesized[0]


@pytest.fixture(scope="module")
def templates(stacks) -> dict[str, dict]:
    return {env: Template.from_stack(stack).to_json() for env, stack in stacks.items()}


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def imported(stack: AnalyticsStack, value: str) -> dict:
    """How ``stack`` refers to a value of its storage stack."""
    return stack.resolve(stack.storage.export_value(value))


def datasets_by_id(template: dict) -> dict[str, dict]:
    return {
        r["Properties"]["DataSetId"]: r
        for r in resources(template, "AWS::QuickSight::DataSet").values()
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_workgroup_engine_v3_enforces_kms_results_and_the_cutoff(stacks, templates, env):
    stack = stacks[env]
    [workgroup] = resources(templates[env], "AWS::Athena::WorkGroup").values()
    props = workgroup["Properties"]
    assert props["Name"] == stack.workgroup_name == f"veracity-{env}-analytics"
    assert props["RecursiveDeleteOption"] is (env == "dev")
    config = props["WorkGroupConfiguration"]
    assert config["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["PublishCloudWatchMetricsEnabled"] is True
    assert config["BytesScannedCutoffPerQuery"] == stack.config.athena_bytes_scanned_cutoff
    results = config["ResultConfiguration"]
    assert results["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": imported(stack, stack.storage.key.key_arn),
    }
    bucket_name = imported(stack, stack.storage.buckets["AthenaResults"].bucket_name)
    assert results["OutputLocation"] == {"Fn::Join": ["", ["s3://", bucket_name, "/results/"]]}
    assert results["ExpectedBucketOwner"] == {"Ref": "AWS::AccountId"}


def test_cutoffs_follow_the_config(templates):
    cutoffs = {
        env: next(iter(resources(t, "AWS::Athena::WorkGroup").values()))["Properties"][
            "WorkGroupConfiguration"
        ]["BytesScannedCutoffPerQuery"]
        for env, t in templates.items()
    }
    assert cutoffs == {
        env: CONTEXT["environments"][env]["athena_bytes_scanned_cutoff"] for env in ENVIRONMENTS
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_named_query_creates_each_view(stacks, templates, env):
    stack = stacks[env]
    queries = {
        q["Properties"]["Name"]: q["Properties"]
        for q in resources(templates[env], "AWS::Athena::NamedQuery").values()
    }
    assert set(queries) == set(stack.views) == set(VIEWS)
    workgroup_id = next(iter(resources(templates[env], "AWS::Athena::WorkGroup")))
    for name, props in queries.items():
        assert props["Database"] == database(env)
        assert props["WorkGroup"] == {"Ref": workgroup_id}
        ddl = props["QueryString"]
        assert ddl == stack.views[name]
        assert ddl.startswith(f'CREATE OR REPLACE VIEW "{database(env)}"."{name}" AS\n')
        [statement] = sqlglot.parse(ddl, read="athena")
        assert isinstance(statement, exp.Create) and statement.kind == "VIEW"
        assert statement.this.sql("athena") == f'"{database(env)}"."{name}"'
    assert queries["person_360"]["QueryString"].endswith("FROM person p")  # no semicolon


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_quicksight_only_where_the_flag_is_on(stacks, templates, env):
    on = stacks[env].config.feature("quicksight")
    assert on is (env != "dev")
    counts = {
        kind: len(resources(templates[env], kind))
        for kind in (
            "AWS::QuickSight::DataSource",
            "AWS::QuickSight::DataSet",
            "AWS::QuickSight::RefreshSchedule",
            "AWS::IAM::Role",
        )
    }
    views = len(VIEWS)
    assert counts == {
        "AWS::QuickSight::DataSource": 1 if on else 0,
        "AWS::QuickSight::DataSet": views + 1 if on else 0,  # and the RLS rules
        "AWS::QuickSight::RefreshSchedule": views + 1 if on else 0,
        "AWS::IAM::Role": 1 if on else 0,
    }
    assert set(stacks[env].datasets) == (set(VIEWS) if on else set())
    assert (stacks[env].quicksight_role is not None) is on


@pytest.mark.parametrize("env", ["test", "prod"])
def test_data_source_is_athena_in_the_workgroup_with_its_own_role(stacks, templates, env):
    template = templates[env]
    [data_source] = resources(template, "AWS::QuickSight::DataSource").values()
    [role_id] = resources(template, "AWS::IAM::Role")
    [workgroup_id] = resources(template, "AWS::Athena::WorkGroup")
    props = data_source["Properties"]
    assert props["Type"] == "ATHENA"
    assert props["DataSourceParameters"] == {
        "AthenaParameters": {
            "WorkGroup": {"Ref": workgroup_id},
            "RoleArn": {"Fn::GetAtt": [role_id, "Arn"]},
        }
    }
    assert props["SslProperties"] == {"DisableSsl": False}
    [policy_id] = resources(template, "AWS::IAM::Policy")
    assert policy_id in data_source["DependsOn"]  # QuickSight tests the connection
    role = template["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "quicksight.amazonaws.com"},
        }
    ]


@pytest.mark.parametrize("env", ["test", "prod"])
def test_a_spice_dataset_per_view_typed_from_its_sql(templates, env):
    template = templates[env]
    [data_source_id] = resources(template, "AWS::QuickSight::DataSource")
    datasets = datasets_by_id(template)
    for view, columns in VIEWS.items():
        props = datasets[f"veracity-{env}-{view}"]["Properties"]
        assert props["ImportMode"] == "SPICE"
        assert props["IngestionWaitPolicy"] == {"WaitForSpiceIngestion": False}
        [table] = props["PhysicalTableMap"].values()
        assert table["CustomSql"]["SqlQuery"] == f'SELECT * FROM "{database(env)}"."{view}"'
        assert table["CustomSql"]["DataSourceArn"] == {"Fn::GetAtt": [data_source_id, "Arn"]}
        assert table["CustomSql"]["Columns"] == columns


@pytest.mark.parametrize("env", ["test", "prod"])
def test_every_view_dataset_is_row_level_secured_by_the_rules_dataset(templates, env):
    template = templates[env]
    datasets = datasets_by_id(template)
    rules_id = next(
        k
        for k, r in resources(template, "AWS::QuickSight::DataSet").items()
        if r["Properties"]["DataSetId"] == f"veracity-{env}-rls-rules"
    )
    rules = template["Resources"][rules_id]["Properties"]
    [table] = rules["PhysicalTableMap"].values()
    assert table["CustomSql"]["SqlQuery"] == (
        'SELECT username AS "UserName", groupname AS "GroupName", area, role '
        f'FROM "{database(env)}"."rls_rules"'
    )
    assert [c["Name"] for c in table["CustomSql"]["Columns"]] == [
        "UserName",
        "GroupName",
        "area",
        "role",
    ]
    assert "RowLevelPermissionDataSet" not in rules
    assert "Permissions" not in rules  # readers need no access to the rules
    for view in VIEWS:
        assert datasets[f"veracity-{env}-{view}"]["Properties"]["RowLevelPermissionDataSet"] == {
            "Arn": {"Fn::GetAtt": [rules_id, "Arn"]},
            "PermissionPolicy": "GRANT_ACCESS",
            "FormatVersion": "VERSION_1",
            "Status": "ENABLED",
        }


@pytest.mark.parametrize("env", ["test", "prod"])
def test_every_dataset_refreshes_daily(templates, env):
    template = templates[env]
    dataset_ids = {
        r["Properties"]["DataSetId"]: k
        for k, r in resources(template, "AWS::QuickSight::DataSet").items()
    }
    schedules = resources(template, "AWS::QuickSight::RefreshSchedule").values()
    assert sorted(s["Properties"]["DataSetId"] for s in schedules) == sorted(dataset_ids)
    for schedule in schedules:
        props = schedule["Properties"]
        assert schedule["DependsOn"] == [dataset_ids[props["DataSetId"]]]
        assert props["Schedule"] == {
            "ScheduleId": "daily",
            "RefreshType": "FULL_REFRESH",
            "ScheduleFrequency": {
                "Interval": "DAILY",
                "TimeOfTheDay": "06:00",
                "TimeZone": "Europe/London",
            },
        }


@pytest.mark.parametrize("env", ["test", "prod"])
def test_principals_get_read_only_access(stacks, templates, env):
    template = templates[env]
    principals = stacks[env].config.quicksight_principals
    assert bool(principals) is (env == "test")
    [data_source] = resources(template, "AWS::QuickSight::DataSource").values()
    datasets = datasets_by_id(template)

    def expected(actions):
        return [{"Principal": p, "Actions": actions} for p in principals] or None

    assert data_source["Properties"].get("Permissions") == expected(DATA_SOURCE_READ)
    for view in VIEWS:
        assert datasets[f"veracity-{env}-{view}"]["Properties"].get("Permissions") == expected(
            DATASET_READ
        )
    for action in DATA_SOURCE_READ + DATASET_READ:
        assert action.split(":")[1].startswith(("Describe", "List", "Pass")), action


@pytest.mark.parametrize("env", ["test", "prod"])
def test_quicksight_role_is_scoped_by_arn(stacks, templates, env):
    template = templates[env]
    [policy] = resources(template, "AWS::IAM::Policy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert not any("*" in a for a in actions), actions
        if statement["Resource"] == "*":  # only where the API has no resource type
            assert actions == ["lakeformation:GetDataAccess"]
    glue_tables = {
        part.rsplit(":table/", 1)[1]
        for statement in statements
        if "glue:GetTable" in statement["Action"]
        for resource in statement["Resource"]
        for part in resource["Fn::Join"][1]
        if isinstance(part, str) and ":table/" in part
    }
    db = database(env)
    assert glue_tables == {f"{db}/{t}" for t in ("person", "rls_rules", *VIEWS)}
    results = imported(stacks[env], stacks[env].storage.buckets["AthenaResults"].bucket_arn)
    assert {"Fn::Join": ["", [results, "/results/*"]]} in [s["Resource"] for s in statements]
    assert not any(
        "ExportsOutputFnGetAttCurated" in json.dumps(s) for s in statements
    )  # the lake's data comes through Lake Formation, not IAM


def test_cdk_nag_reports_nothing_unacknowledged(synthesized):
    _, report = synthesized
    findings = [
        f"{v['severity']} {v['ruleName']} at {c['constructPath']}"
        for plugin in report["pluginReports"]
        for v in plugin["violations"]
        for c in v["violatingConstructs"]
        if v["severity"] == "error" or "/Analytics/" in c["constructPath"]
    ]
    assert findings == []


def test_a_view_that_does_not_parse_fails_synthesis_naming_its_file(tmp_path):
    views = write_views(
        tmp_path / "views",
        {"person_360.sql": PERSON_360, "broken_view.sql": "SELECT area, FROM person WHERE"},
    )
    with pytest.raises(ViewError, match=r"broken_view\.sql: SQL syntax error at line 1"):
        build("dev", views)


def test_no_views_directory_means_no_named_queries(tmp_path):
    stack = build("test", tmp_path / "missing")
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Athena::NamedQuery", 0)
    template.resource_count_is("AWS::QuickSight::DataSet", 1)  # the RLS rules alone
    assert stack.views == {} and stack.datasets == {}
    assert VIEWS_DIR == ROOT / "sql" / "views"  # the default


def test_views_need_the_rls_columns_only_where_quicksight_is_on(tmp_path):
    views = write_views(
        tmp_path / "views", {"no_area.sql": "SELECT p.person_id, 'analyst' AS role FROM person p"}
    )
    assert set(build("dev", views).views) == {"no_area"}
    with pytest.raises(ViewError, match=r"no_area\.sql: row-level security needs .*'area'"):
        build("prod", views)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("CREATE OR REPLACE VIEW v AS SELECT 1 AS a", "expected a bare query .* got CREATE"),
        ("DROP TABLE person", "expected a bare query .* got DROP"),
        ("SELECT 1 AS a; SELECT 2 AS b", "expected one query, got 2 statements"),
        ("-- nothing yet", "expected one query, got 0 statements"),
        ("SELECT * FROM person", r"column 1 is '\*'"),
        ("SELECT p.* FROM person p", r"column 1 is '\*'"),
        (
            "SELECT area, count(*) FROM person GROUP BY 1",
            r"column 2 \(COUNT\(\*\)\) needs an alias",
        ),
        (
            "SELECT person_id AS PersonId FROM person",
            r"column 1 \('PersonId'\) must be named in lower case",
        ),
        ("SELECT a, b AS a FROM person", r"duplicate column names \['a'\]"),
    ],
)
def test_view_files_that_must_not_deploy(tmp_path, sql, message):
    path = tmp_path / "a_view.sql"
    path.write_text(sql)
    with pytest.raises(ViewError, match=rf"a_view\.sql: {message}"):
        read_view(path)


def test_view_names_must_suit_athena_and_quicksight(tmp_path):
    path = tmp_path / "Person-360.sql"
    path.write_text(PERSON_360)
    with pytest.raises(ViewError, match="lower case letters, digits and underscores"):
        read_view(path)


def test_a_trailing_comment_and_semicolons_are_left_out_of_the_view(tmp_path):
    path = tmp_path / "v.sql"
    path.write_text("SELECT 1 AS a  -- one\n;;\n-- the end\n")
    view = read_view(path)
    assert view.query == "SELECT 1 AS a  -- one"
    assert view.tables == ()


def test_tables_read_leave_out_with_names(tmp_path):
    path = write_views(tmp_path, {"crime_trends.sql": CRIME_TRENDS}) / "crime_trends.sql"
    assert read_view(path).tables == ((None, "person"),)


def test_the_repository_views_deploy():
    # sql/views is written separately; once it exists every file must pass here.
    for view in load_views(VIEWS_DIR):
        require_rls_fields(view)
