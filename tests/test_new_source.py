"""A source of an unfamiliar shape works from a new YAML file alone, with no code change."""

import hashlib
import json
import shutil

from veracity.lake import Lake
from veracity.pipeline import run
from veracity.sources import DEFAULT_SOURCES_DIR
from veracity.sql import query
from veracity.synthetic import generate

# A European partner's extract: one "Forename SURNAME" field, 8-digit yyyymmdd dates,
# non-UK postcodes, semicolons, and its own id scheme.
YAML = """\
source: partner_force
description: A partner force's wanted persons list (not UK-shaped).
format: csv
delimiter: ";"
record_id: [REGION, NUMBER]
fields:
  full_name: {column: NAME, order: forename_first}
  date_of_birth: {column: BORN, format: "%Y%m%d"}
  postcode: {column: ZIP, validate: false}
  town: CITY
"""
EXTRACT = """\
REGION;NUMBER;NAME;BORN;ZIP;CITY
NL;001;Jan de VRIES;19850312;1012 AB;Amsterdam
NL;002;Émile DUBOIS;19900101;75001;Paris
NL;003;Jan de VRIES;19850312;1012 AB;Amsterdam
NL;004;Ana;20011301;;Lisboa
"""


def test_unfamiliar_source_runs_from_yaml_alone(tmp_path):
    sources = tmp_path / "sources"
    shutil.copytree(DEFAULT_SOURCES_DIR, sources)
    (sources / "partner_force.yaml").write_text(YAML)
    lake = Lake.open(str(tmp_path / "lake"), create=True)
    generate(lake, 300, seed=5)  # the partner's records are resolved among the force's own
    data = EXTRACT.encode()
    lake.write_bytes(data, "landing", "partner_force", "b1", "wanted.csv")
    lake.write_json({"source": "partner_force", "batch_id": "b1", "extracted_at": "2026-11-01T06:00:00+00:00",
                     "schema_version": 1, "files": [{"name": "wanted.csv", "kind": "extract", "rows": 4,
                                                     "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]},
                    "landing", "partner_force", "b1", "manifest.json")
    summary = run(lake, str(sources))
    assert summary.per_source["partner_force"].records_clean == 4
    rows = {r["source_record_id"]: r for r in query(lake, "SELECT * FROM clean_person").to_pylist()}
    assert (rows["NL-001"]["first_name"], rows["NL-001"]["middle_names"], rows["NL-001"]["last_name"]) == ("JAN", "DE", "VRIES")
    assert rows["NL-002"]["first_name"] == "EMILE" and rows["NL-002"]["postcode"] == "75001"
    assert str(rows["NL-002"]["date_of_birth"]) == "1990-01-01"
    assert rows["NL-004"]["date_of_birth"] is None and rows["NL-004"]["quality_flags"] == "dob_unparseable"
    assert rows["NL-004"]["last_name"] == "ANA" and rows["NL-004"]["first_name"] is None
    same = query(lake, "SELECT count(DISTINCT person_id) AS n FROM person_xref WHERE source_record_id IN ('NL-001', 'NL-003')")
    assert same.column("n")[0].as_py() == 1  # the two identical records resolve to one person


def test_data_quality_reports_rates_and_reasons(resolved_lake):
    lake, summary = resolved_lake
    dq = query(lake, "SELECT * FROM data_quality_checks").to_pylist()
    custody = {r["name"]: r for r in dq if r["source_system"] == "custody" and r["check_type"] == "field"}
    assert custody["first_name"]["rate"] > 0.9 and custody["email"]["count"] == 0
    assert custody["pnc_id"]["distinct_values"] > 0
    assert 0 <= custody["date_of_birth"]["invalid_rate"] < 0.1
    reasons = {(r["source_system"], r["name"]) for r in dq if r["check_type"] == "quarantine"}
    assert ("custody", "missing_record_id") in reasons
    assert sum(r["count"] for r in dq if r["check_type"] == "quarantine") == summary.totals.records_quarantined
    assert json.dumps(dq, default=str)
