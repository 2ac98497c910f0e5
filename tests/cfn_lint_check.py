"""cfn-lint over synthesized templates, through cfn-lint 1.x's Python API."""

from __future__ import annotations

from pathlib import Path

import yaml
from cfnlint.api import ManualArgs, lint_file

# The settings `make lint` uses too, read here so no working directory matters.
SETTINGS = Path(__file__).resolve().parent.parent / ".cfnlintrc.yaml"


def lint_findings(template: Path, regions: list[str]) -> list[str]:
    """The errors and warnings cfn-lint finds in one template, a line each.

    Informational rules run only when asked for (include_checks=["I"]); any
    informational match is left out all the same, as advice rather than a fault.
    """
    ignored = yaml.safe_load(SETTINGS.read_text()).get("ignore_checks", [])
    matches = lint_file(template, config=ManualArgs(regions=sorted(regions), ignore_checks=ignored))
    return [
        f"{match.rule.id} {template.name}:{match.linenumber} {match.message}"
        for match in matches
        if match.rule.severity != "informational"
    ]
