from pathlib import Path

import pytest

from veracity.errors import ConfigError
from veracity.sources import load_config, load_sources, parse_config
from veracity.synthetic.systems import SYSTEMS

MINIMAL = {"source": "example", "format": "csv", "record_id": "ID", "fields": {"first_name": "FIRST"}}


def test_every_synthetic_system_has_a_config():
    assert set(load_sources()) == {s.name for s in SYSTEMS}


def test_minimal_config_parses_with_defaults():
    config = parse_config(MINIMAL, "example.yaml")
    assert config.delimiter == "," and config.encoding == "utf-8" and config.header
    assert config.fields["first_name"].columns == ("FIRST",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"delimeter": ","}, "example.yaml: delimeter: unknown key"),
        ({"format": "xml"}, "format: 'xml' is not supported"),
        ({"encoding": "klingon"}, "encoding: 'klingon' is not a known codec"),
        ({"fields": {"forename": "F"}}, "fields.forename: not a canonical field"),
        ({"fields": {"date_of_birth": "DOB"}}, "fields.date_of_birth.format: missing"),
        ({"fields": {"date_of_birth": {"column": "DOB", "format": "dd/mm/yyyy"}}}, "is not a strptime format"),
        ({"fields": {"full_name": {"column": "N", "order": "backwards"}}}, "is not a name order"),
        ({"fields": {"first_name": {"column": "F", "colour": "red"}}}, "fields.first_name.colour: unknown key"),
        ({"format": "fixed_width"}, "widths: missing for a fixed_width source"),
        ({"format": "fixed_width", "widths": {"ID": [0, 5]}}, "no width for column 'FIRST'"),
        ({"delimiter": "||"}, "is not a single character"),
        ({"record_id": []}, "record_id: empty"),
        ({"events": "crime"}, "events: expected a mapping"),
        ({"events": {"kind": "crime", "date": {"column": "D", "format": "%Y"}, "colour": "x"}}, "events.colour: unknown key"),
        ({"events": {"kind": "Crime!", "date": {"column": "D", "format": "%Y"}}}, "events.kind: 'Crime!' is not a valid kind"),
        ({"events": {"kind": "crime"}}, "events.date: needs a column and a format"),
        ({"events": {"kind": "crime", "date": {"column": "D"}}}, "events.date.format: None is not a strptime format"),
        ({"events": {"kind": "crime", "date": {"column": "D", "format": "%Y"}, "ref": 7}}, "events.ref: 7 is not a column name"),
        ({"format": "fixed_width", "widths": {"ID": [0, 5], "FIRST": [5, 5]},
          "events": {"kind": "crime", "date": {"column": "D", "format": "%Y"}}}, "no width for column 'D'"),
    ],
)
def test_bad_config_names_the_file_key_and_fix(change, message):
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, **change}, "example.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("example.yaml: ")


def test_an_events_block_names_the_columns_an_event_is_read_from():
    config = parse_config({**MINIMAL, "events": {"kind": "crime", "ref": "REF", "date": {"column": "D", "format": "%d/%m/%Y"},
                                                 "area": "BEAT", "role": "PART"}}, "example.yaml")
    assert config.events.kind == "crime" and config.events.date_formats == ("%d/%m/%Y",)
    assert config.events.category is None
    assert config.referenced_columns == {"ID", "FIRST", "REF", "D", "BEAT", "PART"}
    assert parse_config(MINIMAL, "example.yaml").events is None


def test_missing_required_key():
    raw = dict(MINIMAL)
    del raw["record_id"]
    with pytest.raises(ConfigError, match="record_id: missing"):
        parse_config(raw, "example.yaml")


def test_file_name_must_match_source(tmp_path: Path):
    path = tmp_path / "other.yaml"
    path.write_text("source: example\nformat: csv\nrecord_id: ID\nfields: {first_name: F}\n")
    with pytest.raises(ConfigError, match="name the file example.yaml"):
        load_config(path)


def test_invalid_yaml_is_reported(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("source: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_empty_sources_directory(tmp_path: Path):
    with pytest.raises(ConfigError, match="no source configs"):
        load_sources(tmp_path)


def test_every_synthetic_system_is_documented():
    doc = (Path(__file__).resolve().parent.parent / "sources" / "README.md").read_text()
    for system in SYSTEMS:
        assert f"| `{system.name}` |" in doc
