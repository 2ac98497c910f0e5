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


def _event(bucket: str, key: str) -> dict:
    return {"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": bucket}, "object": {"key": key}}}


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


def test_ingest_handler_verdicts_on_moto(s3_bucket):
    handler = _load("lambdas/ingest/handler.py")
    lake = Lake.open(f"s3://{s3_bucket}/force")
    generate(lake, 20, seed=3)
    (batch,) = lake.list_dirs("landing", "crime")
    name = lake.read_json("landing", "crime", batch, "manifest.json")["files"][0]["name"]
    ready = handler.handle(_event(s3_bucket, f"force/landing/crime/{batch}/{name}"))
    assert ready == {"status": "ready", "batch": f"crime/{batch}"}

    lake.write_bytes(b"X|Y\n", "landing", "crime", "late", "extract.csv")
    waiting = handler.handle(_event(s3_bucket, "force/landing/crime/late/extract.csv"))
    assert waiting["status"] == "waiting" and waiting["reason"] == "missing_manifest"

    lake.write_bytes(b"tampered", "landing", "crime", batch, name)
    rejected = handler.handle(_event(s3_bucket, f"force/landing/crime/{batch}/{name}"))
    assert rejected["status"] == "rejected" and rejected["reason"] == "checksum_mismatch"


def test_ingest_handler_ignores_other_keys():
    handler = _load("lambdas/ingest/handler.py")
    assert handler.handle(_event("b", "force/curated/CURRENT.json"))["status"] == "ignored"
    assert handler.handle({"detail": {}})["status"] == "ignored"
