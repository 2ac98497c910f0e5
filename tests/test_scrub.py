import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from veracity.scrub.scrub import scrub_batch
from veracity.sources import parse_config

EXTRACTED = datetime(2026, 11, 1, 6, tzinfo=UTC)

CSV_CONFIG = parse_config(
    {
        "source": "example", "format": "csv", "record_id": "ID",
        "fields": {
            "first_name": "FIRST", "last_name": "LAST",
            "date_of_birth": {"column": "DOB", "format": ["%d/%m/%Y", "%Y-%m-%d"]},
            "sex": {"column": "SEX", "values": {"1": "M", "2": "F"}},
            "postcode": "PC", "pnc_id": "PNC",
        },
    },
    "example.yaml",
)
HEADER = "ID,FIRST,LAST,DOB,SEX,PC,PNC\n"


def scrub(text: str, config=CSV_CONFIG, encoding="utf-8"):
    return scrub_batch(text.encode(encoding), config, "b1", EXTRACTED)


def test_clean_row_is_standardised():
    result = scrub(HEADER + "1, Dr  José ,O'Brien-Smith,01/02/1990,1,b12 9qt,01/0012345H\n")
    row = result.clean.to_pylist()[0]
    assert row["first_name"] == "JOSE"
    assert row["last_name"] == "OBRIEN SMITH"
    assert str(row["date_of_birth"]) == "1990-02-01" and row["birth_year"] == 1990
    assert row["sex"] == "M" and row["postcode"] == "B12 9QT"
    assert row["unique_id"] == "example:1"
    assert result.reconciles()


def test_second_date_format_is_tried():
    result = scrub(HEADER + "1,A,B,1990-02-01,2,,\n")
    assert str(result.clean.column("date_of_birth")[0].as_py()) == "1990-02-01"


def test_field_problems_flag_and_null_but_keep_the_record():
    result = scrub(HEADER + "1,Ann,Lee,01/01/1900,9,NOT A PC,01/0012345Z\n2,Bo,Ray,31/02/1990,,,\n3,Cy,Day,01/01/2030,,,\n")
    rows = {r["source_record_id"]: r for r in result.clean.to_pylist()}
    assert len(rows) == 3 and result.quarantine.num_rows == 0
    assert rows["1"]["date_of_birth"] is None and rows["1"]["postcode"] is None and rows["1"]["pnc_id"] is None
    assert set(rows["1"]["quality_flags"].split(";")) == {"dob_implausible", "sex_unrecognised", "postcode_invalid", "pnc_id_invalid"}
    assert rows["2"]["quality_flags"] == "dob_unparseable"
    assert rows["3"]["quality_flags"] == "dob_implausible"


def test_missing_and_duplicate_ids_are_quarantined_with_reasons():
    result = scrub(HEADER + "1,A,B,,,,\n,C,D,,,,\n2,E,F,,,,\n2,G,H,,,,\n")
    assert result.clean.column("source_record_id").to_pylist() == ["1"]
    reasons = result.quarantine.column("reason_codes").to_pylist()
    assert reasons == ["missing_record_id", "duplicate_record_id", "duplicate_record_id"]
    assert json.loads(result.quarantine.column("raw_record")[0].as_py())["FIRST"] == "C"
    assert result.quarantine.column("line_number").to_pylist() == [3, 4, 5]
    assert result.reconciles()


def test_ragged_lines_are_quarantined_not_dropped():
    result = scrub(HEADER + "1,A,B,,,,\n2,C\n3,E,F,,,,,EXTRA\n4,G,H,,,,\n")
    assert result.clean.column("source_record_id").to_pylist() == ["1", "4"]
    assert result.quarantine.column("reason_codes").to_pylist() == ["wrong_column_count"] * 2
    assert result.rows_in == 4 and result.reconciles()


def test_embedded_quotes_and_newlines_survive():
    result = scrub(HEADER + '1,"Mary\nAnn","O""Neil",,,,\n2,B,C,,,,\n')
    assert result.clean.num_rows == 2
    row = result.clean.to_pylist()[0]
    assert (row["first_name"], row["middle_names"]) == ("MARY", "ANN")
    assert result.clean.column("last_name")[0].as_py() == "O NEIL"  # the quote survived parsing


def test_utf8_bom_is_ignored():
    result = scrub("\ufeff" + HEADER + "1,A,B,,,,\n")
    assert result.clean.column("source_record_id").to_pylist() == ["1"]


def test_wrong_encoding_quarantines_the_bad_row_only():
    data = (HEADER + "1,A,B,,,,\n").encode() + "2,Zoë,B,,,,\n".encode("latin-1")
    result = scrub_batch(data, CSV_CONFIG, "b1", EXTRACTED)
    assert result.clean.column("source_record_id").to_pylist() == ["1"]
    assert result.quarantine.column("reason_codes").to_pylist() == ["undecodable"]
    assert "\\xeb" in result.quarantine.column("raw_record")[0].as_py()


def test_latin1_source_decodes_accents():
    config = parse_config(
        {"source": "example", "format": "csv", "encoding": "latin-1", "record_id": "ID", "fields": {"first_name": "FIRST"}},
        "example.yaml",
    )
    result = scrub_batch("ID,FIRST\n1,Zoë\n".encode("latin-1"), config, "b1", EXTRACTED)
    assert result.clean.column("first_name")[0].as_py() == "ZOE"


def test_missing_column_rejects_the_batch_with_a_clear_reason():
    result = scrub("ID,FIRST\n1,A\n")
    assert result.clean.num_rows == 0
    assert result.quarantine.column("reason_codes").to_pylist() == ["batch_rejected"]
    assert "example.yaml: fields.last_name: column 'LAST' is not in the extract (it has: ID, FIRST)" in result.batch_error


def test_empty_file_is_a_batch_error_and_header_only_is_empty():
    assert scrub("").batch_error is not None
    header_only = scrub(HEADER)
    assert header_only.batch_error is None and header_only.rows_in == 0 and header_only.reconciles()


def test_surname_first_full_name_and_age():
    config = parse_config(
        {"source": "cc", "format": "csv", "delimiter": ";", "record_id": "ID",
         "fields": {"full_name": {"column": "NAME", "order": "surname_first"}, "birth_year": {"column": "AGE", "from": "age"}}},
        "cc.yaml",
    )
    result = scrub_batch(b"ID;NAME;AGE\n1;SMITH, John Paul;30\n2;Jones;abc\n", config, "b1", EXTRACTED)
    rows = result.clean.to_pylist()
    assert (rows[0]["first_name"], rows[0]["middle_names"], rows[0]["last_name"], rows[0]["birth_year"]) == ("JOHN", "PAUL", "SMITH", 1996)
    assert rows[1]["last_name"] == "JONES" and rows[1]["first_name"] is None
    assert rows[1]["quality_flags"] == "birth_year_invalid"


def test_jsonl_nested_fields_and_bad_lines():
    config = parse_config(
        {"source": "j", "format": "jsonl", "record_id": "id",
         "fields": {"first_name": "name.given", "postcode": {"column": "addr.pc", "validate": False}, "aliases": {"column": "aka", "separator": ";"}}},
        "j.yaml",
    )
    data = b'{"id": 1, "name": {"given": "Ann"}, "addr": {"pc": "75001"}, "aka": ["Annie", "A. Smith"]}\n{broken\n[1,2]\n'
    result = scrub_batch(data, config, "b1", EXTRACTED)
    row = result.clean.to_pylist()[0]
    assert (row["source_record_id"], row["first_name"], row["postcode"], row["aliases"]) == ("1", "ANN", "75001", "ANNIE|A SMITH")
    assert result.quarantine.column("reason_codes").to_pylist() == ["unparseable_line", "unparseable_line"]
    assert result.quarantine.column("line_number").to_pylist() == [2, 3]


def test_fixed_width_slices_columns():
    config = parse_config(
        {"source": "fw", "format": "fixed_width", "record_id": "ID",
         "widths": {"ID": [0, 4], "NAME": [4, 10], "DOB": [14, 8]},
         "fields": {"first_name": "NAME", "date_of_birth": {"column": "DOB", "format": "%Y%m%d"}}},
        "fw.yaml",
    )
    result = scrub_batch(b"0001ALICE     19900201\n0002BOB\n\n", config, "b1", EXTRACTED)
    rows = result.clean.to_pylist()
    assert [r["first_name"] for r in rows] == ["ALICE", "BOB"]
    assert str(rows[0]["date_of_birth"]) == "1990-02-01" and rows[1]["date_of_birth"] is None


@pytest.mark.parametrize("payload", ["=cmd|' /C calc'!A0", "+SUM(1)", "@foo"])
def test_formula_like_text_is_kept_as_text(payload):
    config = parse_config({"source": "x", "format": "csv", "record_id": "ID", "fields": {"address": "ADDR"}}, "x.yaml")
    result = scrub_batch(f'ID,ADDR\n1,"{payload}"\n'.encode(), config, "b1", EXTRACTED)
    assert result.clean.column("address")[0].as_py() == payload.upper()


def test_names_are_transliterated_and_keyed():
    config = parse_config({"source": "x", "format": "csv", "record_id": "ID",
                           "fields": {"first_name": "F", "last_name": "L", "postcode": "PC"}}, "x.yaml")
    result = scrub_batch("ID,F,L,PC\n1,Michał,Wiśniewski,b12 9qt\n2,Bob,Smyth,\n3,Søren,Ørsted,\n".encode(), config, "b1", EXTRACTED)
    rows = {r["source_record_id"]: r for r in result.clean.to_pylist()}
    assert (rows["1"]["first_name"], rows["1"]["last_name"]) == ("MICHAL", "WISNIEWSKI")
    assert (rows["3"]["first_name"], rows["3"]["last_name"]) == ("SOREN", "ORSTED")
    assert "ROBERT" in rows["2"]["forename_canonical"].split("|") and rows["1"]["forename_canonical"] == "MICHAL"
    assert rows["2"]["last_name_metaphone"] == "SM0"
    assert (rows["1"]["postcode_sector"], rows["1"]["postcode_district"]) == ("B12 9", "B12")
    assert rows["2"]["postcode_sector"] is None


def test_chunk_size_does_not_change_the_result():
    import io

    from veracity.scrub.scrub import scrub_stream

    text = HEADER + "".join(f"{i},A{i},B,01/02/1990,1,B1 1AA,\n" for i in range(1, 40)) + "7,DUP,X,,,,\n,NOID,Y,,,,\n"
    outputs = []
    for chunk_rows in (3, 1000):
        clean, quarantine = [], []
        counts = scrub_stream(io.BytesIO(text.encode()), CSV_CONFIG, "b1", EXTRACTED, clean.append, quarantine.append, chunk_rows=chunk_rows)
        q = pa.concat_tables(quarantine)
        outputs.append((pa.concat_tables(clean), sorted(q.column("line_number").to_pylist()), counts.rows_in))
    assert outputs[0][0].equals(outputs[1][0])
    assert outputs[0][1:] == outputs[1][1:]
    assert outputs[0][1] == [8, 41, 42]  # both copies of id 7, and the row with no id


def test_gzip_extract_and_truncated_gzip():
    import gzip

    data = gzip.compress((HEADER + "1,A,B,,,,\n2,C,D,,,,\n").encode())
    assert scrub_batch(data, CSV_CONFIG, "b1", EXTRACTED, compressed=True).clean.num_rows == 2
    truncated = scrub_batch(data[: len(data) // 2], CSV_CONFIG, "b1", EXTRACTED, compressed=True)
    assert truncated.clean.num_rows == 0 and "truncated or corrupt" in truncated.batch_error


def test_a_10mb_field_quarantines_its_row_only():
    result = scrub(HEADER + "1,A,B,,,,\n2," + "X" * 10_000_000 + ",C,,,,\n3,D,E,,,,\n")
    assert result.clean.column("source_record_id").to_pylist() == ["1", "3"]
    assert result.quarantine.column("reason_codes").to_pylist() == ["oversized_field"]
    assert len(result.quarantine.column("raw_record")[0].as_py()) < 200_000


def test_extra_columns_are_ignored_or_rejected_as_configured():
    extra = HEADER.strip() + ",NEW_COLUMN\n1,A,B,,,,,x\n"
    assert scrub(extra).clean.num_rows == 1
    strict = parse_config({"source": "example", "format": "csv", "record_id": "ID", "extra_columns": "reject",
                           "fields": {"first_name": "FIRST"}}, "example.yaml")
    result = scrub_batch(b"ID,FIRST,NEW_COLUMN\n1,A,x\n", strict, "b1", EXTRACTED)
    assert result.clean.num_rows == 0 and "column 'NEW_COLUMN' is in the extract but not in example.yaml" in result.batch_error


def test_unknown_sex_is_not_a_problem_but_nonsense_is():
    result = scrub(HEADER + "1,A,B,,0,,\n2,C,D,,x,,\n")
    config = parse_config({"source": "s", "format": "csv", "record_id": "ID", "fields": {"sex": "SEX"}}, "s.yaml")
    plain = scrub_batch(b"ID,SEX\n1,Unknown\n2,Q\n3,female\n", config, "b1", EXTRACTED).clean.to_pylist()
    assert [r["sex"] for r in plain] == [None, None, "F"]
    assert [r["quality_flags"] for r in plain] == [None, "sex_unrecognised", None]
    assert result.clean.column("quality_flags").to_pylist() == ["sex_unrecognised", "sex_unrecognised"]


def test_several_kinds_of_field_problem_in_one_chunk():
    result = scrub(HEADER + "1,A,B,01/01/2030,,,\n2,C,D,,,NOT A PC,\n3,E,F,,,,\n4,G,H,01/01/1900,x,BAD,\n")
    flags = result.clean.column("quality_flags").to_pylist()
    assert flags[0] == "dob_implausible" and flags[1] == "postcode_invalid" and flags[2] is None
    assert set(flags[3].split(";")) == {"dob_implausible", "sex_unrecognised", "postcode_invalid"}


def test_phones_without_uk_validation_keep_only_digits_and_a_leading_plus():
    import pyarrow as pa

    from veracity.scrub.standardise import free_phone

    kept, flagged = free_phone(pa.array(["+49 176 948-7785", "+491769487785", "(0176) 948 7785", " +46 70 92", None, " ", "n/a"]))
    assert kept.to_pylist() == ["+491769487785", "+491769487785", "01769487785", "+467092", None, None, None]
    assert not any(flagged.to_pylist())  # nothing is refused for its shape
