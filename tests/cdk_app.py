"""The CDK app as tests build it: cdk.json's context, and a wheelhouse of empty wheel
files named as ``make glue-wheels`` names them (the templates only refer to the zip)."""

from __future__ import annotations

import json
from pathlib import Path

from stacks.processing import GLUE_REQUIREMENTS, _pins

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]


def placeholder_wheelhouse(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, version in [("veracity", "0.1.0"), *_pins(GLUE_REQUIREMENTS)]:
        (directory / f"{name.replace('-', '_')}-{version}-py3-none-any.whl").write_bytes(b"")
    return directory


def app_context(tmp_dir: Path) -> dict:
    return {**CONTEXT, "glue_wheels_dir": str(placeholder_wheelhouse(tmp_dir / "glue-wheels"))}
