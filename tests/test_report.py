"""The HTML report: one self-contained page, its charts' data right, drawn offline."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from veracity.cli import main
from veracity.lake import Lake
from veracity.report import TOP_NETWORKS, charts, write_report
from veracity.sql import query

CHARTS = ("records", "quarantine", "reduction", "probability", "sizes", "trends", "networks")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Anything a browser would fetch: scripts, styles, images, frames, fonts, imports.
EXTERNAL = re.compile(r"""<(script|img|iframe|link|source|embed)\b[^>]*\b(src|href)\s*=\s*["']?(https?:|//)|"""
                      r"""url\(\s*["']?(https?:|//)|@import""", re.IGNORECASE)


@pytest.fixture(scope="module")
def report(resolved_lake, tmp_path_factory) -> tuple[Lake, str, str]:
    lake, _ = resolved_lake
    path = write_report(lake, str(tmp_path_factory.mktemp("report") / "report.html"))
    with open(path, encoding="utf-8") as f:
        return lake, path, f.read()


def test_the_report_is_one_page_that_loads_nothing(report):
    _, _, page = report
    assert page.startswith("<!DOCTYPE html>")
    assert not EXTERNAL.search(page)
    assert "cdn.jsdelivr" not in page and "<script src" not in page
    assert page.count("<script>") == 4  # vega, vega-lite, vega-embed, the charts
    for name in CHARTS:
        assert f'<div id="chart-{name}"' in page and f'vegaEmbed("#chart-{name}"' in page


def test_the_headline_figures_are_the_snapshots(report):
    lake, _, page = report
    persons = query(lake, "SELECT count(*) AS n FROM person").to_pylist()[0]["n"]
    records = query(lake, "SELECT count(*) AS n FROM person_xref").to_pylist()[0]["n"]
    assert f"<th>persons</th><td>{persons:,}</td>" in page
    assert f"<th>records resolved</th><td>{records:,}</td>" in page


def test_each_chart_draws_the_snapshots_figures(resolved_lake):
    lake, summary = resolved_lake
    specs = charts(lake)
    assert set(specs) == set(CHARTS)
    values = {name: spec["data"]["values"] for name, spec in specs.items()}
    records_in = sum(r["count"] for r in values["records"] if r["measure"] == "records in")
    assert records_in == summary.records_resolved
    quarantined = query(lake, "SELECT count(*) AS n FROM quarantine").to_pylist()[0]["n"]
    assert sum(r["rows_quarantined"] for r in values["quarantine"]) == quarantined
    assert sum(r["persons"] for r in values["sizes"]) == summary.persons
    pairs = query(lake, "SELECT count(*) AS n FROM match_pairs").to_pylist()[0]["n"]
    assert sum(r["pairs"] for r in values["probability"]) == pairs
    assert all(0 <= r["bin"] <= 1 for r in values["probability"])
    crimes = query(lake, "SELECT sum(offences) AS n FROM crime_trends").to_pylist()[0]["n"]
    assert sum(r["offences"] for r in values["trends"]) == crimes
    members = [r["members"] for r in values["networks"]]
    assert members == sorted(members, reverse=True) and 0 < len(members) <= TOP_NETWORKS


def test_report_command_writes_the_page_and_needs_a_snapshot(resolved_lake, tmp_path, capsys):
    lake, _ = resolved_lake
    out = tmp_path / "r.html"
    assert main(["report", "--lake", lake.root, "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>") and str(out) in capsys.readouterr().out
    empty = Lake.open(str(tmp_path / "empty"), create=True)
    assert main(["report", "--lake", empty.root]) != 0
    assert "no published snapshot" in capsys.readouterr().err


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_headless_chromium_draws_every_chart_offline(report, tmp_path):
    _, path, _ = report
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=10000"]
    dom = subprocess.run([*flags, "--dump-dom", f"file://{path}"], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    drawn = re.findall(r'<div id="chart-(\w+)"[^>]*>.*?<svg', dom.stdout, re.DOTALL)
    assert set(drawn) == set(CHARTS)
    shot = tmp_path / "report.png"
    subprocess.run([*flags, "--window-size=1280,4200", f"--screenshot={shot}", f"file://{path}"],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
