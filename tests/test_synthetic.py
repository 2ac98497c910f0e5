import hashlib

import pyarrow.compute as pc

from veracity import uk
from veracity.lake import Lake
from veracity.sources import load_sources
from veracity.synthetic import generate
from veracity.synthetic.errors import typo
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
    assert all(uk.normalise_postcode(a.postcode) == a.postcode for p in people for a in p.addresses)
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
