from datetime import date

import pytest

from veracity import uk


def test_pnc_id_check_letter_round_trips():
    pnc = uk.format_pnc_id(1, 12345)
    assert pnc.startswith("01/0012345")
    assert uk.normalise_pnc_id(pnc) == pnc


def test_pnc_id_with_wrong_check_letter_is_invalid():
    pnc = uk.format_pnc_id(19, 7654321)
    wrong = pnc[:-1] + ("A" if pnc[-1] != "A" else "B")
    assert uk.normalise_pnc_id(wrong) is None


def test_pnc_id_accepts_four_digit_year_and_short_serial():
    pnc = uk.format_pnc_id(5, 42)
    assert uk.normalise_pnc_id("2005/42" + pnc[-1]) == pnc
    assert uk.normalise_pnc_id(" 05/0000042" + pnc[-1].lower()) == pnc


def test_cro_number_check_letter():
    cro = uk.format_cro_number(123456, 87)
    assert uk.normalise_cro_number(cro) == cro
    assert uk.normalise_cro_number(cro[:-1] + "I") is None


@pytest.mark.parametrize("value", ["AB123456C", "ab 12 34 56 c", "JZ000000D"])
def test_valid_ni_numbers(value):
    assert uk.normalise_ni_number(value) == value.upper().replace(" ", "")


@pytest.mark.parametrize("value", ["GB123456A", "DA123456A", "AO123456A", "AB123456E", "AB12345C", "ZZ123456A"])
def test_invalid_ni_numbers(value):
    assert uk.normalise_ni_number(value) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("b12 9qt", "B12 9QT"), ("B129QT", "B12 9QT"), ("  cv1  2ab ", "CV1 2AB"), ("WS13 7PP", "WS13 7PP")],
)
def test_postcodes_normalise(raw, expected):
    assert uk.normalise_postcode(raw) == expected


@pytest.mark.parametrize("raw", ["B12 9QC", "12 9QT", "B12", "", None, "BIRMINGHAM"])
def test_invalid_postcodes(raw):
    assert uk.normalise_postcode(raw) is None


def test_driving_licence_stem_follows_dvla_rules():
    assert uk.driving_licence_stem("Mason", "S", date(1997, 6, 20), female=True) == "MASON956207S9"
    assert uk.driving_licence_stem("Li", "JP", date(1980, 1, 5), female=False) == "LI999801050JP"


def test_phone_to_e164():
    assert uk.normalise_uk_phone("07700 900123") == "+447700900123"
    assert uk.normalise_uk_phone("+44 7700 900123") == "+447700900123"
    assert uk.normalise_uk_phone("12345") is None
