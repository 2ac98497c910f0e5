"""The AWS entry points are thin shells over the core package."""

import importlib.util
from pathlib import Path

from veracity.lake import Lake
from veracity.synthetic import generate

ROOT = Path(__file__).resolve().parent.parent


def _load(relative: str):
    spec = importlib.util.spec_from_file_location(relative.replace("/", "_"), ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_glue_job_runs_the_pipeline_and_ignores_glue_arguments(tmp_path, capsys):
    lake = Lake.open(str(tmp_path), create=True)
    generate(lake, 40, seed=3)
    job = _load("glue_jobs/run_pipeline.py")
    assert job.main(["--lake", str(tmp_path), "--JOB_NAME", "veracity-run"]) == 0
    assert "published" in capsys.readouterr().out
    assert lake.exists("curated", "CURRENT.json")


def test_glue_generate_job_lands_synthetic_extracts(tmp_path, capsys):
    job = _load("glue_jobs/generate.py")
    assert job.main(["--lake", str(tmp_path), "--people", "30", "--seed", "5", "--JOB_NAME", "veracity-generate"]) == 0
    lake = Lake.open(str(tmp_path))
    assert len(lake.list_dirs("landing")) == 11
    assert job.main(["--lake", str(tmp_path), "--people", "0"]) == 1
    assert "--people must be at least 1" in capsys.readouterr().err


def test_glue_publish_job_without_a_staged_match_is_a_clear_error(tmp_path, capsys):
    job = _load("glue_jobs/publish.py")
    assert job.main(["--lake", str(tmp_path)]) == 1
    assert "no staged match" in capsys.readouterr().err


def test_glue_publish_job_refuses_a_staged_match_older_than_the_snapshot(tmp_path, capsys):
    lake = Lake.open(str(tmp_path), create=True)
    generate(lake, 30, seed=4)
    assert _load("glue_jobs/run_pipeline.py").main(["--lake", str(tmp_path)]) == 0
    published = lake.read_json("curated", "CURRENT.json")["run_id"]
    lake.write_json({"run_id": "20000101T000000000000Z"}, "staging", "match", "20000101T000000000000Z", "summary.json")
    capsys.readouterr()
    assert _load("glue_jobs/publish.py").main(["--lake", str(tmp_path)]) == 1
    assert "not newer than the published snapshot" in capsys.readouterr().err
    assert lake.read_json("curated", "CURRENT.json")["run_id"] == published  # nothing published over it
