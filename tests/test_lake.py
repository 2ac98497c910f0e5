import pyarrow as pa
import pytest

from veracity.errors import LakeError
from veracity.lake import Lake


@pytest.fixture(params=["local", "s3"])
def lake(request, tmp_path) -> Lake:
    if request.param == "local":
        return Lake.open(str(tmp_path / "lake"), create=True)
    bucket = request.getfixturevalue("s3_bucket")
    return Lake.open(f"s3://{bucket}/root")


def test_bytes_json_and_listing_round_trip(lake):
    lake.write_bytes(b"abc", "landing", "crime", "b1", "x.csv")
    lake.write_json({"a": 1}, "landing", "crime", "b1", "manifest.json")
    lake.write_bytes(b"", "landing", "custody", "b2", "y.csv")
    assert lake.read_bytes("landing", "crime", "b1", "x.csv") == b"abc"
    assert lake.read_json("landing", "crime", "b1", "manifest.json") == {"a": 1}
    assert lake.list_dirs("landing") == ["crime", "custody"]
    assert lake.list_files("landing", "crime", "b1") == ["manifest.json", "x.csv"]
    assert lake.list_dirs("nowhere") == [] and not lake.exists("nowhere")


def test_total_size_counts_every_file_under_a_folder_at_any_depth(lake):
    lake.write_bytes(b"abc", "landing", "crime", "b1", "x.csv")
    lake.write_bytes(b"defgh", "landing", "crime", "b1", "sub", "y.csv")
    lake.write_bytes(b"ij", "landing", "custody", "b2", "z.csv")
    assert lake.total_size("landing", "crime", "b1") == 8
    assert lake.total_size("landing") == 10
    assert lake.total_size("nowhere") == 0


def test_tables_from_a_file_or_a_directory(lake):
    lake.write_table(pa.table({"n": [1, 2]}), "t", "a.parquet")
    lake.write_table(pa.table({"n": [3]}), "t", "sub", "b.parquet")
    assert sorted(lake.read_table("t").column("n").to_pylist()) == [1, 2, 3]
    assert lake.read_table("t", "a.parquet").num_rows == 2


def test_missing_table_with_schema_is_empty_without_is_an_error(lake):
    schema = pa.schema([("n", pa.int64())])
    assert lake.read_table("absent", schema=schema).num_rows == 0
    with pytest.raises(LakeError, match="does not exist"):
        lake.read_table("absent")


def test_local_writes_leave_no_temporary_files(tmp_path):
    lake = Lake.open(str(tmp_path), create=True)
    lake.write_bytes(b"1", "a", "f.json")
    lake.write_bytes(b"2", "a", "f.json")
    assert lake.list_files("a") == ["f.json"] and lake.read_bytes("a", "f.json") == b"2"


def test_missing_bucket_is_a_clear_error(moto_endpoint):
    with pytest.raises(LakeError, match="does not exist; create it first"):
        Lake.open("s3://no-such-bucket/x")


@pytest.mark.parametrize("uri", ["", "s3://", "gs://bucket/x"])
def test_unusable_uris(uri):
    with pytest.raises(LakeError):
        Lake.open(uri)


def test_display_paths(tmp_path, s3_bucket):
    assert Lake.open(str(tmp_path)).display("curated") == str(tmp_path / "curated")
    assert Lake.open(f"s3://{s3_bucket}/p").display("curated") == f"s3://{s3_bucket}/p/curated"


def test_zones_in_buckets_of_their_own(s3_bucket):
    import boto3
    other = f"{s3_bucket[:40]}-landing"
    boto3.client("s3", region_name="eu-west-2").create_bucket(
        Bucket=other, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    uri = f"s3://{s3_bucket}/p?landing=s3://{other}"
    lake = Lake.open(uri)
    lake.write_bytes(b"x", "landing", "crime", "b1", "x.csv")
    lake.write_bytes(b"y", "curated", "CURRENT.json")
    assert lake.display("landing", "crime") == f"s3://{other}/landing/crime"
    assert lake.display("curated") == f"s3://{s3_bucket}/p/curated"
    assert Lake.open(lake.uri).read_bytes("landing", "crime", "b1", "x.csv") == b"x"  # the URI names the whole lake
    assert not Lake.open(f"s3://{s3_bucket}/p").exists("landing")


@pytest.mark.parametrize(("query", "message"), [
    ("lnding=s3://b", "unknown zone 'lnding'"),
    ("landing=/tmp/x", "must be at s3://bucket"),
    ("landing", "zones are given as zone=s3://"),
])
def test_bad_zones_are_clear_errors(query, message):
    with pytest.raises(LakeError, match=message):
        Lake.open(f"s3://some-bucket/p?{query}")


def test_zone_buckets_must_exist(s3_bucket):
    with pytest.raises(LakeError, match="'no-such-zone-bucket' of lake"):
        Lake.open(f"s3://{s3_bucket}/p?clean=s3://no-such-zone-bucket")


def test_local_lakes_take_no_zones(tmp_path):
    with pytest.raises(LakeError, match="s3:// lakes only"):
        Lake.open(f"{tmp_path}?landing=s3://b")
