"""The command line: help for every command, one-line errors and non-zero exits on bad input."""

import json
import subprocess
import sys

import pytest

from veracity.cli import main

COMMANDS = ["generate", "run", "sql", "evaluate", "demo", "train", "explain", "report"]


def _one_line_error(capsys, code: int) -> str:
    captured = capsys.readouterr()
    assert code != 0
    assert "Traceback" not in captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "--lake" in capsys.readouterr().out


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "veracity", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "generate" in result.stdout


def test_missing_lake(capsys, tmp_path):
    line = _one_line_error(capsys, main(["run", "--lake", str(tmp_path / "nope")]))
    assert "does not exist" in line


def test_empty_landing(capsys, tmp_path):
    line = _one_line_error(capsys, main(["run", "--lake", str(tmp_path)]))
    assert "no batches" in line


def test_sql_before_any_run(capsys, tmp_path):
    line = _one_line_error(capsys, main(["sql", "--lake", str(tmp_path), "SELECT 1"]))
    assert "no published snapshot" in line


def test_bad_sql(capsys, resolved_lake):
    lake, _ = resolved_lake
    line = _one_line_error(capsys, main(["sql", "--lake", lake.root, "SELEC count(*) FROM person"]))
    assert "SQL" in line or "syntax" in line


def test_unknown_table_lists_the_tables(capsys, resolved_lake):
    lake, _ = resolved_lake
    line = _one_line_error(capsys, main(["sql", "--lake", lake.root, "SELECT * FROM persons"]))
    assert "persons" in line and "person_xref" in line


def test_unsupported_lake_scheme(capsys):
    line = _one_line_error(capsys, main(["run", "--lake", "gs://bucket/x"]))
    assert "s3://" in line


def test_sql_answers_over_person_xref(capsys, resolved_lake, tmp_path):
    lake, summary = resolved_lake
    out = tmp_path / "xref.csv"
    assert main(["sql", "--lake", lake.root, "--out", str(out),
                 "SELECT source_system, count(*) AS n FROM person_xref GROUP BY 1 ORDER BY 1"]) == 0
    rows = out.read_text().splitlines()
    assert rows[0] == '"source_system","n"' and len(rows) == 12
    assert sum(int(r.split(",")[1]) for r in rows[1:]) == summary.totals.records_clean


def test_athena_functions_are_transpiled(capsys, resolved_lake):
    lake, _ = resolved_lake
    code = main(["sql", "--lake", lake.root,
                 "SELECT approx_distinct(person_id) AS persons, date_format(max(last_seen), '%Y-%m') AS month FROM person"])
    assert code == 0
    assert "2026-11" in capsys.readouterr().out


def test_evaluate_json(capsys, resolved_lake):
    lake, _ = resolved_lake
    assert main(["evaluate", "--lake", lake.root, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pairwise"]["f1"] >= 0.9 and result["bcubed"]["f1"] >= 0.9


def test_generate_refuses_a_lake_with_extracts(capsys, small_lake):
    line = _one_line_error(capsys, main(["generate", "--lake", small_lake.root, "--people", "5"]))
    assert "already holds extracts" in line


def test_bad_people_count_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "--lake", str(tmp_path), "--people", "0"])
    assert exit_.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_csv_export_neutralises_formulas(tmp_path):
    import pyarrow as pa

    from veracity.cli import _neutralise_formulas

    table = _neutralise_formulas(pa.table({"a": ["=cmd|' /C calc'!A0", "plain", "@SUM(1)"]}))
    assert table.column("a").to_pylist() == ["'=cmd|' /C calc'!A0", "plain", "'@SUM(1)"]


def test_demo_refuses_a_directory_it_did_not_make(capsys, tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    line = _one_line_error(capsys, main(["demo", "--lake", str(tmp_path), "--people", "10"]))
    assert "not a demo lake" in line
    assert (tmp_path / "precious.txt").exists()
