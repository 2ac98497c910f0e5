import hashlib
import math

import pyarrow.compute as pc
import pytest

from veracity import uk
from veracity.lake import Lake
from veracity.sources import load_sources
from veracity.synthetic import generate
from veracity.synthetic.errors import ErrorModel, typo
from veracity.synthetic.population import make_population
from veracity.synthetic.systems import SYSTEMS


def _landing_files(lake: Lake) -> dict[str, bytes]:
    return {
        f"{s}/{b}/{f}": lake.read_bytes("landing", s, b, f)
        for s in lake.list_dirs("landing")
        for b in lake.list_dirs("landing", s)
        for f in lake.list_files("landing", s, b)
    }


def test_same_seed_same_extracts_and_other_seed_differs(tmp_path):
    a, b, c = (Lake.open(str(tmp_path / n), create=True) for n in "abc")
    generate(a, 60, seed=3)
    generate(b, 60, seed=3)
    generate(c, 60, seed=4)
    assert _landing_files(a) == _landing_files(b)
    assert _landing_files(a) != _landing_files(c)


def test_every_system_lands_a_batch_with_a_true_manifest(small_lake):
    assert set(small_lake.list_dirs("landing")) == {s.name for s in SYSTEMS}
    for system in SYSTEMS:
        (batch,) = small_lake.list_dirs("landing", system.name)
        manifest = small_lake.read_json("landing", system.name, batch, "manifest.json")
        (entry,) = manifest["files"]
        data = small_lake.read_bytes("landing", system.name, batch, entry["name"])
        assert manifest["source"] == system.name and manifest["batch_id"] == batch
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)


def test_truth_covers_every_record_with_an_id(small_lake):
    truth = small_lake.read_table("truth", "records")
    keys = set(zip(truth.column("source_system").to_pylist(), truth.column("source_record_id").to_pylist(), strict=True))
    sources = load_sources()
    from veracity.scrub.readers import read_extract

    for system in SYSTEMS:
        (batch,) = small_lake.list_dirs("landing", system.name)
        name = small_lake.read_json("landing", system.name, batch, "manifest.json")["files"][0]["name"]
        raw = read_extract(small_lake.read_bytes("landing", system.name, batch, name), sources[system.name])
        assert not raw.rejects, f"{system.name} extract not readable by its YAML"
        ids = raw.table.column(sources[system.name].record_id[0])
        for rid in pc.drop_null(ids).to_pylist():
            assert (system.name, rid) in keys


def test_population_identifiers_are_valid():
    people = make_population(300, seed=11)
    pncs = [p.pnc_id for p in people if p.pnc_id]
    nis = [p.ni_number for p in people if p.ni_number]
    assert pncs and nis
    assert all(uk.normalise_pnc_id(v) == v for v in pncs)
    assert all(uk.normalise_ni_number(v) == v for v in nis)
    assert all(uk.normalise_postcode(r.address.postcode) == r.address.postcode for p in people for r in p.residences)
    assert all(uk.normalise_driving_licence(p.driving_licence) for p in people if p.driving_licence)


def test_common_surnames_are_common():
    people = make_population(3000, seed=5)
    counts: dict[str, int] = {}
    for p in people:
        counts[p.last_name] = counts.get(p.last_name, 0) + 1
    top = sorted(counts.values(), reverse=True)
    assert top[0] >= 20 and sum(top[:20]) > 0.1 * len(people)


def test_typo_changes_a_word_a_little():
    import random

    rng = random.Random(1)
    for _ in range(50):
        changed = typo(rng, "Robertson")
        assert abs(len(changed) - len("Robertson")) <= 1


@pytest.fixture(scope="module")
def medium_lake(tmp_path_factory) -> Lake:
    """About 27,000 records: enough to measure rates, trends and networks."""
    lake = Lake.open(str(tmp_path_factory.mktemp("medium")), create=True)
    generate(lake, 3000, seed=21)
    return lake


def test_output_does_not_depend_on_the_number_of_workers(tmp_path):
    one, two = (Lake.open(str(tmp_path / n), create=True) for n in ("one", "two"))
    generate(one, 2100, seed=9, workers=1)
    generate(two, 2100, seed=9, workers=2)
    assert _landing_files(one) == _landing_files(two)
    assert one.read_table("truth", "records").equals(two.read_table("truth", "records"))


def test_a_smaller_population_is_a_prefix_of_a_larger_one():
    small, large = make_population(1500, seed=4), make_population(2500, seed=4)
    assert small == large[:1500]


def test_hard_negatives_are_planted():
    people = make_population(5000, seed=8)
    by_id = {p.person_id: p for p in people}
    twins = [p for p in people if p.relation and p.relation.startswith("twin_of:")]
    sons = [p for p in people if p.relation and p.relation.startswith("son_of:")]
    namesakes = [p for p in people if p.relation and p.relation.startswith("namesake_of:")]
    assert twins and sons and namesakes
    for namesake in namesakes:
        other = by_id[namesake.relation.split(":", 1)[1]]
        assert (namesake.first_name, namesake.last_name, namesake.date_of_birth.year) == (other.first_name, other.last_name, other.date_of_birth.year)
    for twin in twins:
        sibling = by_id[twin.relation.split(":", 1)[1]]
        assert (twin.last_name, twin.date_of_birth, twin.residences) == (sibling.last_name, sibling.date_of_birth, sibling.residences)
        assert twin.first_name != sibling.first_name
    for son in sons:
        father = by_id[son.relation.split(":", 1)[1]]
        assert (son.first_name, son.last_name) == (father.first_name, father.last_name)
        assert son.residences[0].address == father.residences[-1].address
        assert son.date_of_birth > father.date_of_birth


UNCONDITIONAL_ERRORS = ("first_name_typo", "last_name_typo", "dob_missing", "postcode_missing", "sex_missing")


def test_error_rates_land_within_tolerance_of_the_configured_ones(medium_lake):
    truth = medium_lake.read_table("truth", "records").to_pylist()
    for system in SYSTEMS:
        rows = [r for r in truth if r["source_system"] == system.name]
        model = ErrorModel(system.quality, system.ocr)
        for error in UNCONDITIONAL_ERRORS:
            observed = sum(1 for r in rows if r["errors"] and error in r["errors"].split(";"))
            expected = model.rates[error] * len(rows)
            tolerance = 4 * math.sqrt(expected) + 2
            assert abs(observed - expected) <= tolerance, (system.name, error, observed, expected)


def test_most_people_appear_once_or_twice_and_a_few_very_often():
    people = make_population(5000, seed=2)
    activity = [p.activity for p in people]
    assert sum(a <= 2 for a in activity) / len(activity) > 0.35
    assert max(activity) >= 50
    assert 6 <= sum(activity) / len(activity) <= 14


def _crime_rows(lake: Lake) -> list[dict]:
    from veracity.scrub.readers import read_extract

    config = load_sources()["crime"]
    (batch,) = lake.list_dirs("landing", "crime")
    name = lake.read_json("landing", "crime", batch, "manifest.json")["files"][0]["name"]
    return read_extract(lake.read_bytes("landing", "crime", batch, name), config).table.to_pylist()


def test_planted_networks_offend_together(medium_lake):
    networks = medium_lake.read_table("truth", "networks").to_pylist()
    assert networks
    truth = {(r["source_system"], r["source_record_id"]): r["person_id"] for r in medium_lake.read_table("truth", "records").to_pylist()}
    people_by_event: dict[str, set[str]] = {}
    for row in _crime_rows(medium_lake):
        person = truth.get(("crime", row["CRIME_PERSON_ID"]))
        if person:
            people_by_event.setdefault(row["CRIME_REF"], set()).add(person)
    members: dict[str, set[str]] = {}
    for n in networks:
        members.setdefault(n["network_id"], set()).add(n["person_id"])
    for network_id, group in members.items():
        assert 5 <= len(group) <= 40
        together = [ps for ps in people_by_event.values() if len(ps & group) >= 2]
        assert together, network_id
        assert all(ps <= group for ps in together)  # co-offenders in these events are all members


def test_crime_trends_rise_and_fall_where_planted(medium_lake):
    from veracity.synthetic.events import NEIGHBOURHOODS

    trend = {name: t for name, _, t in NEIGHBOURHOODS}
    recent, earlier = {"up": 0, "down": 0}, {"up": 0, "down": 0}
    for row in _crime_rows(medium_lake):
        t = trend.get(row["NEIGHBOURHOOD"] or "", 0)
        if abs(t) < 0.15 or not row["OFFENCE_DATE"]:
            continue
        key = "up" if t > 0 else "down"
        if row["OFFENCE_DATE"] >= "2025-11-01":
            recent[key] += 1
        elif "2024-11-01" <= row["OFFENCE_DATE"] < "2025-11-01":
            earlier[key] += 1
    assert recent["up"] / earlier["up"] > 1.1
    assert recent["down"] / earlier["down"] < 0.95


def test_violence_peaks_in_summer(medium_lake):
    summer = winter = 0
    for row in _crime_rows(medium_lake):
        if row["HO_OFFENCE_GROUP"] == "Violence against the person" and row["OFFENCE_DATE"]:
            month = int(row["OFFENCE_DATE"][5:7])
            summer += month in (6, 7, 8)
            winter += month in (12, 1, 2)
    assert summer > 1.2 * winter


def test_names_span_origins_and_include_phonetic_variants(medium_lake):
    people = medium_lake.read_table("truth", "people").to_pylist()
    origins = {p["origin"] for p in people}
    assert {"english_welsh_scottish", "urdu_speaking", "punjabi", "polish", "somali", "chinese"} <= origins
    truth = medium_lake.read_table("truth", "records").to_pylist()
    assert any(r["errors"] and "phonetic_variant" in r["errors"] for r in truth)
    assert any(r["errors"] and "nickname" in r["errors"] for r in truth)


def test_every_error_is_documented():
    from pathlib import Path

    from veracity.synthetic.errors import BASE_RATES

    doc = (Path(__file__).resolve().parent.parent / "sources" / "README.md").read_text()
    for error in BASE_RATES:
        assert f"`{error}`" in doc, error
