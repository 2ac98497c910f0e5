"""The processing and ingest stacks in every environment, from the app as deployed."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from app import build_app
from stacks.analytics import spice_dataset_ids
from stacks.config import ENVIRONMENTS
from stacks.ingest import LAMBDA_UNZIPPED_LIMIT, _CopyHandlerAndPackage, unpacked_size
from stacks.processing import ArtifactError, GlueArtifacts, pins
from stacks.search import BUNDLE_EXCLUDES, SEARCH_REQUIREMENTS
from tests.cdk_app import ROOT, app_context, placeholder_wheelhouse
from veracity.ingest.events import landing_event_pattern

# Actions AWS defines without resource types (and CloudFront's invalidations, which CDK's
# BucketDeployment provider is granted on every distribution): a statement of only these may name "*".
NO_RESOURCE_TYPE = {
    "cloudfront:CreateInvalidation", "cloudfront:GetInvalidation",
    "cloudwatch:PutMetricData", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
    "xray:GetSamplingRules", "xray:GetSamplingTargets", "logs:CreateLogDelivery", "logs:GetLogDelivery",
    "logs:UpdateLogDelivery", "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies", "logs:DescribeLogGroups", "lakeformation:GetDataAccess",
}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cdk")
    app = build_app(context=app_context(tmp), outdir=str(tmp / "out"))
    stages = {name: app.node.find_child(f"Veracity-{name}") for name in ENVIRONMENTS}
    templates = {name: {stack: Template.from_stack(getattr(stage, stack)).to_json()
                        for stack in ("storage", "processing", "ingest", "catalog", "search", "analytics", "monitoring")}
                 for name, stage in stages.items()}
    with contextlib.suppress(RuntimeError):  # cdk-nag's verdict is test_stacks.py's
        app.synth()
    return stages, templates, tmp / "out"


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r["Properties"] | {"_deletion": r.get("DeletionPolicy")} for k, r in template["Resources"].items()
            if r["Type"] == kind}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_glue_jobs_run_glue_5_with_the_shipped_wheels_jar_and_encryption(synthesized, env):
    stages, templates, _ = synthesized
    config, processing = stages[env].config, templates[env]["processing"]
    jobs = {j["Name"]: j for j in resources(processing, "AWS::Glue::Job").values()}
    expected = {"scrub", "match", "publish"} | ({"generate"} if env == "dev" else set())
    assert set(jobs) == {f"{config.name_prefix}-{n}" for n in expected}  # no synthetic generator outside dev
    [security] = resources(processing, "AWS::Glue::SecurityConfiguration").values()
    encryption = security["EncryptionConfiguration"]
    assert encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    for job in jobs.values():
        assert job["GlueVersion"] == "5.0" and job["Command"]["Name"] == "glueetl"
        assert (job["WorkerType"], job["NumberOfWorkers"]) == (config.glue_worker_type, config.glue_workers)
        assert job["SecurityConfiguration"] == {"Ref": next(iter(resources(processing, "AWS::Glue::SecurityConfiguration")))}
        args = job["DefaultArguments"]
        assert args["--python-modules-installer-option"] == "--no-index"  # no internet from the job
        assert json.dumps(args["--additional-python-modules"]).count(".zip") == 1  # the wheelhouse, zipped
        assert ".jar" in json.dumps(args["--extra-jars"])
        assert args["--enable-metrics"] == args["--enable-continuous-cloudwatch-log"] == "true"
        lake = json.dumps(args["--lake"])
        assert all(f"{zone}=s3://{config.name_prefix}-{zone}-" in lake for zone in ("landing", "clean", "quarantine"))
        assert job["MaxRetries"] == 0  # the state machine retries


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_state_machine_runs_scrub_match_publish_with_retries_and_a_failure_path(synthesized, env):
    stages, templates, _ = synthesized
    [machine] = resources(templates[env]["processing"], "AWS::StepFunctions::StateMachine").values()
    body = machine["DefinitionString"]
    text = "".join(p if isinstance(p, str) else "" for p in body["Fn::Join"][1])
    states = json.loads(text)["States"]
    prefix = stages[env].config.name_prefix
    glue = {name: s for name, s in states.items() if s.get("Resource", "").endswith("glue:startJobRun.sync")}
    assert {s["Parameters"]["JobName"] for s in glue.values()} == {f"{prefix}-{n}" for n in ("scrub", "match", "publish")}
    assert states["Scrub"]["Next"] == "Match" and states["Match"]["Next"] == "Publish"
    for state in glue.values():
        assert state["Retry"][0]["MaxAttempts"] == 3
        assert state["Catch"][0]["Next"] == "FailedForABatch"
    assert states["RunFailed"]["Type"] == "Fail"
    assert states["DeliveredBatch"]["Default"] == "Match"  # a scheduled run has no batch to scrub
    # A delivered batch's run records how it ended in the ingest ledger; a scheduled run has no batch.
    if stages[env].config.feature("quicksight"):  # SPICE refreshed after every published run
        assert states["Publish"]["Next"] == "DatasetsToRefresh"
        assert states["DatasetsToRefresh"]["Result"] == spice_dataset_ids(stages[env].config)
        assert f"{prefix}-person_360" in states["DatasetsToRefresh"]["Result"]
        refresh = states["RefreshSpice"]
        assert refresh["Next"] == refresh["Catch"][0]["Next"] == "PublishedForABatch"  # a failed refresh fails no run
        task = refresh["ItemProcessor"]["States"]["RefreshDataset"]
        assert task["Resource"].endswith(":aws-sdk:quicksight:createIngestion")
        assert task["Parameters"]["IngestionType"] == "FULL_REFRESH" and task["Parameters"]["DataSetId.$"] == "$"
    else:
        assert states["Publish"]["Next"] == "PublishedForABatch" and "RefreshSpice" not in states
    for choice, record, then, outcome in (("PublishedForABatch", "RecordPublished", "Published", "published"),
                                          ("FailedForABatch", "RecordFailed", "RunFailed", "run_failed")):
        assert states[choice]["Choices"][0]["Next"] == record and states[choice]["Default"] == then
        assert states[record]["Resource"].endswith(":dynamodb:updateItem") and states[record]["Next"] == then
        parameters = states[record]["Parameters"]
        assert parameters["Key"] == {"batch": {"S.$": "States.Format('{}/{}', $.source, $.batch_id)"}}
        assert parameters["ExpressionAttributeValues"][":state"] == {"S": outcome}
    assert "last_error = :error" in states["RecordFailed"]["Parameters"]["UpdateExpression"]
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_ingest_ledger_recovers_and_is_protected_where_it_must_be(synthesized, env):
    stages, templates, _ = synthesized
    tables = resources(templates[env]["processing"], "AWS::DynamoDB::GlobalTable").values()
    assert len(tables) == 2  # the ledger and the search index
    for ledger in tables:
        assert ledger["Replicas"][0]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert ledger["SSESpecification"]["SSEType"] == "KMS"
        assert ledger["Replicas"][0]["DeletionProtectionEnabled"] is (env == "prod")
        assert ledger["_deletion"] == ("Delete" if env == "dev" else "Retain")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_landing_events_reach_the_handler_through_an_encrypted_queue_with_a_dead_letter_queue(synthesized, env):
    stages, templates, _ = synthesized
    config, ingest = stages[env].config, templates[env]["ingest"]
    queues = {q["QueueName"]: q for q in resources(ingest, "AWS::SQS::Queue").values()}
    main, dlq = queues[f"{config.name_prefix}-ingest"], queues[f"{config.name_prefix}-ingest-dlq"]
    assert "KmsMasterKeyId" in main and "KmsMasterKeyId" in dlq
    assert main["RedrivePolicy"]["maxReceiveCount"] == 3
    rules = {r["Name"]: r for r in resources(ingest, "AWS::Events::Rule").values()}
    uploads = rules[f"{config.name_prefix}-landing-uploads"]
    assert uploads["EventPattern"]["detail-type"] == ["Object Created"]
    assert uploads["EventPattern"]["detail"]["object"] == {"key": [{"prefix": "landing/"}]}
    assert rules[f"{config.name_prefix}-schedule"]["ScheduleExpression"] == f"rate({config.schedule_hours} hours)"
    [function] = resources(ingest, "AWS::Lambda::Function").values()
    assert function["ReservedConcurrentExecutions"] == config.ingest_concurrency
    assert function["TracingConfig"] == {"Mode": "Active"} and len(function["Layers"]) == 2
    assert set(function["Environment"]["Variables"]) >= {"VERACITY_LAKE", "LEDGER_TABLE", "IDEMPOTENCY_TABLE",
                                                         "STATE_MACHINE_ARN"}
    assert function["Timeout"] == 900 and main["VisibilityTimeout"] == 6 * 900
    [mapping] = resources(ingest, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    policies = [p for p in resources(ingest, "AWS::SQS::QueuePolicy").values()]
    assert any("events.amazonaws.com" in json.dumps(p) for p in policies)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_landing_rule_is_the_one_pattern_the_local_flow_uses(synthesized, env):
    stages, templates, _ = synthesized
    config = stages[env].config
    [uploads] = [r for r in resources(templates[env]["ingest"], "AWS::Events::Rule").values()
                 if r["Name"] == f"{config.name_prefix}-landing-uploads"]
    landing = uploads["EventPattern"]["detail"]["bucket"]["name"][0]
    assert uploads["EventPattern"] == landing_event_pattern(landing)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_idempotency_records_expire_and_are_encrypted(synthesized, env):
    stages, templates, _ = synthesized
    tables = {t["TableName"]: t for t in resources(templates[env]["ingest"], "AWS::DynamoDB::GlobalTable").values()}
    table = tables[f"{stages[env].config.name_prefix}-ingest-idempotency"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["SSESpecification"]["SSEType"] == "KMS"
    assert table["Replicas"][0]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_lambda_bundle_holds_the_handler_and_the_core_package(synthesized):
    _, _, out = synthesized
    bundles = [d for d in out.rglob("asset.*") if (d / "handler.py").is_file()]
    assert bundles, "no Lambda bundle in the cloud assembly"
    for bundle in bundles:
        assert (bundle / "veracity" / "lake.py").is_file() and (bundle / "sources" / "crime.yaml").is_file()
        assert (bundle / "veracity" / "ingest" / "delivery.py").is_file()
        assert (bundle / "yaml" / "__init__.py").is_file() and not list(bundle.rglob("*.so"))
        assert not list(bundle.rglob("__pycache__"))


LAYERS_LACK = ("duckdb", "splink", "sqlglot", "anyascii", "doublemetaphone", "nicknames", "faker", "rich", "moto")
IMPORT_FROM_BUNDLE = f"""
import importlib.abc, os, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {LAYERS_LACK!r}:
            raise ImportError(f"{{name}} is in neither Lambda layer")
sys.meta_path.insert(0, Absent())
sys.path.insert(0, os.getcwd())
os.environ.update(IDEMPOTENCY_TABLE="t", AWS_DEFAULT_REGION="eu-west-2", POWERTOOLS_TRACE_DISABLED="true")
import handler, yaml
from veracity.sources import load_sources
assert yaml.__file__.startswith(os.getcwd()), yaml.__file__
print(len(load_sources()))
"""


def test_the_lambda_bundle_imports_with_only_what_the_layers_provide(synthesized):
    """The handler, the core modules it uses and the bundled PyYAML import without the
    libraries the Lambda does not have (Powertools, pyarrow and boto3 come from its layers)."""
    _, _, out = synthesized
    bundle = next(d for d in out.rglob("asset.*") if (d / "handler.py").is_file()
                  and "Ingest Lambda" in (d / "handler.py").read_text())
    result = subprocess.run([sys.executable, "-c", IMPORT_FROM_BUNDLE], cwd=bundle, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(list((ROOT / "sources").glob("*.yaml"))))


def test_a_lambda_bundle_leaves_out_what_it_excludes_and_stops_over_lambdas_size_limit(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "big-1.0-py3-none-any.whl", "w") as archive:
        archive.writestr("big/__init__.py", "")
        archive.writestr("big/libbig.so.1", b"\0" * 300_000)
        archive.writestr("big/libbig.so.1.0", b"\0" * 300_000)  # a wheel's copy of the same library
        archive.writestr("big/include/big.h", "")
    trimmed = tmp_path / "trimmed"
    trimmed.mkdir()
    assert _CopyHandlerAndPackage("search", wheels, ("big/include", "big/libbig.so.*.*")).try_bundle(str(trimmed), image=None)
    assert {p.name for p in (trimmed / "big").iterdir()} == {"__init__.py", "libbig.so.1"}
    assert (trimmed / "handler.py").is_file() and (trimmed / "veracity" / "search" / "service.py").is_file()
    size = unpacked_size(trimmed)
    (tmp_path / "whole").mkdir()
    with pytest.raises(ArtifactError, match=r"search Lambda's bundle unpacks to [\d,]+ bytes, over Lambda's limit"):
        _CopyHandlerAndPackage("search", wheels, ("big/include",), size + 100_000).try_bundle(str(tmp_path / "whole"), image=None)


SEARCH_WHEELHOUSE = ROOT / "build" / "search-wheels"


@pytest.mark.skipif(not (ROOT / "build" / ".search-wheels-built").exists(),
                    reason="the search wheelhouse is not built (`make test` builds it: `make search-wheels`)")
def test_the_search_lambda_bundle_fits_lambda_and_keeps_every_library_pyarrow_links(tmp_path):
    """The real wheelhouse, trimmed by ``BUNDLE_EXCLUDES``: under Lambda's 250 MB, and each
    Arrow library an extension module of pyarrow names is still in the bundle."""
    assert _CopyHandlerAndPackage("search", SEARCH_WHEELHOUSE, BUNDLE_EXCLUDES, LAMBDA_UNZIPPED_LIMIT).try_bundle(
        str(tmp_path), image=None)
    assert unpacked_size(tmp_path) <= LAMBDA_UNZIPPED_LIMIT
    pyarrow = tmp_path / "pyarrow"
    present = {p.name for p in pyarrow.iterdir()}
    assert not [n for n in present if "flight" in n and ".so" in n] and "include" not in present
    for module in ("duckdb", "splink", "jwt", "cryptography", "aws_lambda_powertools", "aws_xray_sdk", "wrapt"):
        assert (tmp_path / module).is_dir() or list(tmp_path.glob(f"_{module}*.so")), module
    assert not (tmp_path / "numpy").exists() and not (tmp_path / "pandas").exists()
    for library in pyarrow.glob("*.so*"):
        linked = {m.decode() for m in re.findall(rb"lib(?:arrow|parquet)[a-z_]*\.so(?:\.\d+)*", library.read_bytes())}
        if library.name.startswith("lib.cpython"):
            so_version = f"{dict(pins(SEARCH_REQUIREMENTS))['pyarrow'].split('.')[0]}00"
            assert {f"libarrow.so.{so_version}", f"libarrow_python.so.{so_version}"} <= linked
        assert linked <= present, (library.name, linked - present)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_iam_statement_grants_every_action_or_every_resource_unless_the_api_requires_it(synthesized, env):
    _, templates, _ = synthesized
    for stack, template in templates[env].items():
        for lid, res in template["Resources"].items():
            if res["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy"):
                continue
            props = res["Properties"]
            documents = [props.get("PolicyDocument")] + [p["PolicyDocument"] for p in props.get("Policies", [])]
            for statement in (s for d in documents if d for s in d["Statement"]):
                if statement["Effect"] != "Allow" or "Action" not in statement:
                    continue
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert "*" not in actions and not any(a.endswith(":*") for a in actions), (stack, lid, actions)
                targets = statement.get("Resource", [])
                targets = targets if isinstance(targets, list) else [targets]
                if "*" in targets:
                    assert set(actions) <= NO_RESOURCE_TYPE, (stack, lid, actions)


def test_synthesis_stops_when_the_wheelhouse_lacks_a_pinned_dependency(tmp_path):
    wheels = placeholder_wheelhouse(tmp_path / "wheels")
    next(wheels.glob("splink-*.whl")).unlink()
    with pytest.raises(ArtifactError, match=r"lacks splink==5\.0\.0.*make glue-wheels"):
        GlueArtifacts.checked(wheels)
    with pytest.raises(ArtifactError, match="no Glue wheelhouse"):
        GlueArtifacts.checked(Path(tmp_path / "absent"))


def test_environments_differ_as_declared(synthesized):
    stages, templates, _ = synthesized
    dev, test, prod = (stages[n] for n in ENVIRONMENTS)
    # prod: protected stacks, object lock, larger workers; dev: disposable.
    for stack in ("storage", "processing", "ingest", "catalog", "analytics", "monitoring"):
        assert getattr(prod, stack).termination_protection is True
        assert getattr(dev, stack).termination_protection is False and getattr(test, stack).termination_protection is False
    workers = {n: stages[n].config.glue_workers for n in ENVIRONMENTS}
    assert workers["prod"] > workers["test"] >= workers["dev"]
    assert prod.config.object_lock and not dev.config.object_lock and not test.config.object_lock
    for name in ENVIRONMENTS:
        kinds = [r["Type"] for r in templates[name]["storage"]["Resources"].values()]
        assert ("Custom::S3AutoDeleteObjects" in kinds) is (name == "dev")


def test_analytics_deploys_after_the_catalog_whose_views_its_datasets_read(synthesized):
    stages, _, _ = synthesized
    for stage in stages.values():
        assert stage.catalog in stage.analytics.dependencies


# -- person search ----------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_search_users_sign_in_with_mfa_in_the_three_groups(synthesized, env):
    _, templates, _ = synthesized
    search = templates[env]["search"]
    [pool] = resources(search, "AWS::Cognito::UserPool").values()
    assert pool["MfaConfiguration"] == "ON" and pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] >= 14
    assert {g["GroupName"] for g in resources(search, "AWS::Cognito::UserPoolGroup").values()} == {"officer", "analyst", "admin"}
    [client] = resources(search, "AWS::Cognito::UserPoolClient").values()
    assert client.get("GenerateSecret") in (None, False) and client["ExplicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    # The page signs in on the managed login with the code flow, back to its own address.
    assert client["AllowedOAuthFlows"] == ["code"] and client["AllowedOAuthScopes"] == ["openid"]
    [distribution_id] = resources(search, "AWS::CloudFront::Distribution")
    assert distribution_id in json.dumps(client["CallbackURLs"])
    assert len(resources(search, "AWS::Cognito::UserPoolDomain")) == 1
    [parameter] = resources(search, "AWS::SSM::Parameter").values()
    [function] = [f for f in resources(search, "AWS::Lambda::Function").values() if "USER_POOL_CLIENT_PARAMETER" in json.dumps(f)]
    assert function["Environment"]["Variables"]["USER_POOL_CLIENT_PARAMETER"] == parameter["Name"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_search_route_needs_a_cognito_token_and_a_purpose_behind_a_firewall(synthesized, env):
    _, templates, _ = synthesized
    search = templates[env]["search"]
    methods = resources(search, "AWS::ApiGateway::Method").values()
    assert len(methods) == 2
    for method in methods:
        assert method["HttpMethod"] == "GET" and method["AuthorizationType"] == "COGNITO_USER_POOLS"
        assert method["RequestParameters"]["method.request.querystring.purpose"] is True
        assert "RequestValidatorId" in method
    [acl] = resources(search, "AWS::WAFv2::WebACL").values()
    assert {r["Name"] for r in acl["Rules"]} >= {"AWSManagedRulesCommonRuleSet", "rate-per-address"}
    assert len(resources(search, "AWS::WAFv2::WebACLAssociation")) == 1


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_audit_log_is_locked_against_change_for_six_years(synthesized, env):
    stages, templates, _ = synthesized
    storage = templates[env]["storage"]
    locked = [b for b in resources(storage, "AWS::S3::Bucket").values()
              if b.get("ObjectLockEnabled") and "search-audit" in json.dumps(b["BucketName"])]
    assert len(locked) == 1
    rule = locked[0]["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert rule["Days"] == 6 * 365
    assert rule["Mode"] == ("GOVERNANCE" if stages[env].config.destroy_on_delete else "COMPLIANCE")
    assert locked[0]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_search_lambda_reads_the_index_the_publish_job_writes(synthesized, env):
    stages, templates, _ = synthesized
    prefix = stages[env].config.name_prefix
    processing, search = templates[env]["processing"], templates[env]["search"]
    [(index_id, index)] = [(k, t) for k, t in resources(processing, "AWS::DynamoDB::GlobalTable").items()
                           if t["TableName"] == f"{prefix}-search-index"]
    assert index["SSESpecification"]["SSEType"] == "KMS"
    publish = next(j for j in resources(processing, "AWS::Glue::Job").values() if j["Name"] == f"{prefix}-publish")
    assert publish["DefaultArguments"]["--search-table"] == {"Ref": index_id}
    [function] = [f for f in resources(search, "AWS::Lambda::Function").values() if f.get("FunctionName") == f"{prefix}-search"]
    assert index_id in json.dumps(function["Environment"]["Variables"]["SEARCH_TABLE"])  # imported from processing
    assert function["TracingConfig"]["Mode"] == "Active"
    actions = {a for p in resources(search, "AWS::IAM::Policy").values() for st in p["PolicyDocument"]["Statement"]
               for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]]) if a.startswith("dynamodb:")}
    assert actions and not {a for a in actions if a.split(":")[1].startswith(("Put", "Update", "Delete", "BatchWrite"))}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_page_is_served_over_tls_with_the_api_on_the_same_origin(synthesized, env):
    _, templates, _ = synthesized
    [distribution] = resources(templates[env]["search"], "AWS::CloudFront::Distribution").values()
    config = distribution["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    [api] = [b for b in config["CacheBehaviors"] if b["PathPattern"] == "/api/*"]
    assert api["ViewerProtocolPolicy"] == "https-only" and api["AllowedMethods"] == ["GET", "HEAD"]
    assert all("OriginAccessControlId" in o for o in config["Origins"] if "S3OriginConfig" in o)


def test_the_search_bundle_unpacks_its_wheels_beside_the_core_package(synthesized):
    _, _, out = synthesized
    bundle = next(d for d in out.rglob("asset.*") if (d / "handler.py").is_file()
                  and "Search Lambda" in (d / "handler.py").read_text())
    assert (bundle / "veracity" / "search" / "web" / "index.html").is_file()
    assert (bundle / "sources" / "intelligence.yaml").is_file()


def test_synthesis_stops_when_the_search_wheelhouse_lacks_a_pin(tmp_path):
    from stacks.search import SearchArtifacts
    from tests.cdk_app import placeholder_search_wheelhouse

    wheels = placeholder_search_wheelhouse(tmp_path / "wheels")
    next(wheels.glob("duckdb-*.whl")).unlink()
    with pytest.raises(ArtifactError, match=r"lacks duckdb==2\.0\.1.*make search-wheels"):
        SearchArtifacts.checked(wheels)
