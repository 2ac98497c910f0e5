"""Every template the CDK app synthesizes passes cfn-lint (errors and warnings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import build_app
from stacks.config import ENVIRONMENTS, EnvironmentConfig
from tests.cdk_app import CONTEXT, app_context
from tests.cfn_lint_check import lint_findings

REGIONS = sorted(
    {
        EnvironmentConfig.from_dict(name, CONTEXT["environments"][name]).region
        for name in ENVIRONMENTS
    }
)


@pytest.fixture(scope="module")
def cloud_assembly(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("cdk")
    outdir = work / "out"
    app = build_app(context=app_context(work), outdir=str(outdir))
    try:
        app.synth()
    except RuntimeError as error:
        # cdk-nag fails synthesis only after every template is written; its
        # findings are test_stacks.py's business, so lint the templates anyway.
        if "Validation failed" not in str(error):
            raise
    return outdir


def test_every_environment_has_templates(cloud_assembly):
    for env in ENVIRONMENTS:
        assert list((cloud_assembly / f"assembly-Veracity-{env}").glob("*.template.json")), env


def test_every_template_passes_cfn_lint(cloud_assembly):
    templates = sorted(cloud_assembly.glob("assembly-*/*.template.json"))
    assert templates
    findings = {
        str(template.relative_to(cloud_assembly)): lint_findings(template, REGIONS)
        for template in templates
    }
    assert {name: found for name, found in findings.items() if found} == {}


def test_the_linter_does_find_faults(tmp_path):
    # Guards the check above against passing because nothing was linted.
    template = tmp_path / "Broken.template.json"
    template.write_text(
        json.dumps(
            {
                "Resources": {
                    "Queue": {
                        "Type": "AWS::SQS::Queue",
                        "Properties": {"VisibilityTimeout": "soon"},
                    }
                }
            }
        )
    )
    [finding] = lint_findings(template, REGIONS)
    assert finding.startswith("E3012 Broken.template.json")
