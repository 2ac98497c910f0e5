"""Trained models as versioned artifacts in the lake.

``models/<version>/model.json`` is Splink's model (settings with m, u and λ) and
``models/<version>/training_summary.json`` says how it was trained.
``models/CURRENT.json`` names the version routine runs use. A model is reused only
while the declared model (``model.fingerprint()``) is unchanged; otherwise the next
run trains a new version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from veracity.lake import Lake
from veracity.matching import model

CURRENT = ("models", "CURRENT.json")


@dataclass(frozen=True)
class TrainedModel:
    version: str
    model_json: dict
    summary: dict


def new_version(now: datetime | None = None) -> str:
    return "v" + (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")


def save(lake: Lake, model_json: dict, summary: dict) -> TrainedModel:
    version = new_version()
    summary = {**summary, "version": version, "fingerprint": model.fingerprint()}
    lake.write_json(model_json, "models", version, "model.json")
    lake.write_json(summary, "models", version, "training_summary.json")
    lake.write_json({"version": version, "fingerprint": summary["fingerprint"]}, *CURRENT)
    return TrainedModel(version, model_json, summary)


def load(lake: Lake, version: str) -> TrainedModel:
    return TrainedModel(
        version,
        lake.read_json("models", version, "model.json"),
        lake.read_json("models", version, "training_summary.json"),
    )


def current(lake: Lake) -> TrainedModel | None:
    """The model routine runs use, or None when there is none for today's declaration."""
    if not lake.exists(*CURRENT):
        return None
    pointer = lake.read_json(*CURRENT)
    if pointer.get("fingerprint") != model.fingerprint():
        return None
    return load(lake, pointer["version"])
