"""The CDK app as tests build it: cdk.json's context, and a wheelhouse of empty wheel
files named as ``make glue-wheels`` names them (the templates only refer to the zip)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from stacks.processing import GLUE_REQUIREMENTS, pins
from stacks.search import SEARCH_REQUIREMENTS

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]


def placeholder_wheelhouse(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, version in [("veracity", "0.1.0"), *pins(GLUE_REQUIREMENTS)]:
        (directory / f"{name.replace('-', '_')}-{version}-py3-none-any.whl").write_bytes(b"")
    return directory


def placeholder_search_wheelhouse(directory: Path) -> Path:
    """Empty (but valid) wheel archives named as ``make search-wheels`` names them."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, version in pins(SEARCH_REQUIREMENTS):
        with zipfile.ZipFile(directory / f"{name.replace('-', '_')}-{version}-py3-none-any.whl", "w"):
            pass
    return directory


def app_context(tmp_dir: Path) -> dict:
    return {**CONTEXT, "glue_wheels_dir": str(placeholder_wheelhouse(tmp_dir / "glue-wheels")),
            "search_wheels_dir": str(placeholder_search_wheelhouse(tmp_dir / "search-wheels"))}


def nag_errors(outdir: Path) -> list[str]:
    """cdk-nag's unacknowledged errors in a synthesized cloud assembly's validation report."""
    report = json.loads((outdir / "validation-report.json").read_text())
    return [
        f"{v['ruleName']} at {c['constructPath']}"
        for plugin in report["pluginReports"]
        for v in plugin["violations"]
        if v["severity"] == "error"
        for c in v["violatingConstructs"]
    ]
