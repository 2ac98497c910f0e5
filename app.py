#!/usr/bin/env python3
"""CDK entry point: one Veracity stage per environment, checked by cdk-nag.

The Glue jobs' wheelhouse comes from ``make glue-wheels`` and the search Lambda's from
``make search-wheels`` (contexts ``glue_wheels_dir`` and ``search_wheels_dir``
override where they are); synthesis fails, saying so, when one is missing or incomplete.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.config import ENVIRONMENTS, load
from stacks.processing import GlueArtifacts
from stacks.search import SearchArtifacts
from stacks.stage import VeracityStage

ROOT = Path(__file__).resolve().parent
DEFAULT_WHEELS_DIR = ROOT / "build" / "glue-wheels"
DEFAULT_SEARCH_WHEELS_DIR = ROOT / "build" / "search-wheels"


def build_app(**app_kwargs) -> App:
    """Build the app without synthesizing it; tests pass ``context`` or ``outdir`` here."""
    app = App(**app_kwargs)
    artifacts = GlueArtifacts.checked(Path(app.node.try_get_context("glue_wheels_dir") or DEFAULT_WHEELS_DIR))
    search = SearchArtifacts.checked(Path(app.node.try_get_context("search_wheels_dir") or DEFAULT_SEARCH_WHEELS_DIR))
    for name in ENVIRONMENTS:
        VeracityStage(app, f"Veracity-{name}", config=load(app.node, name), artifacts=artifacts, search_artifacts=search)
    # cdk-nag 3 packs are policy-validation plugins, not aspects
    # (Aspects.of(app).add(...) breaks synth); an unacknowledged error fails synthesis.
    # Acknowledge one with stacks.nag.acknowledge(construct, "AwsSolutions-XX", "why").
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
