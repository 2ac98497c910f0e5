"""The linkage model, declared once: comparisons, blocking rules and the training plan.

Engines (Splink's DuckDBAPI locally, SparkAPI on Glue) build their settings from
this declaration; custom SQL is written in DuckDB's dialect and Splink transpiles it.
"""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
import pyarrow.compute as pc
import splink.comparison_level_library as cll
import splink.comparison_library as cl
import sqlglot
from splink import SettingsCreator, block_on
from sqlglot import exp

from veracity.errors import ModelMismatchError

BASE_DIALECT = "duckdb"
UNIQUE_ID = "unique_id"

# Records at or above this probability are linked into one person.
LINK_THRESHOLD = 0.95
# Pairs above this probability are kept in match_pairs as evidence and for review.
REVIEW_FLOOR = 0.2

# Pairs never linked however high they score (DuckDB SQL over the two records, aliased
# l and r):
# - two different forenames that are neither typos, nicknames of one name, an alias nor
#   a forename/surname swap, with no shared identifier. Twins share a surname, a date of
#   birth and a home; this is what tells them apart.
# - names alone: no agreement on birth year, postcode (or its sector) or any identifier. Common
#   names would otherwise chain strangers together.
# - a generation apart: birth years more than five apart with no shared identifier
#   (a father and son with one name and one address).
_SHARED_IDENTIFIER = """(
    coalesce(l.pnc_id = r.pnc_id, false) OR coalesce(l.ni_number = r.ni_number, false)
    OR coalesce(l.driving_licence = r.driving_licence, false) OR coalesce(l.cro_number = r.cro_number, false)
    OR coalesce(l.phone = r.phone, false) OR coalesce(l.email = r.email, false)
    OR coalesce(l.other_id = r.other_id, false)
)"""
CANNOT_LINK_SQL = f"""
    (NOT {_SHARED_IDENTIFIER} AND coalesce(abs(l.birth_year - r.birth_year) > 5, false))
    OR (NOT {_SHARED_IDENTIFIER}
     AND NOT coalesce(abs(l.birth_year - r.birth_year) <= 1, false)
     AND NOT coalesce(l.postcode_sector = r.postcode_sector OR l.postcode = r.postcode, false))
    OR (l.first_name IS NOT NULL AND r.first_name IS NOT NULL
    AND length(l.first_name) >= 3 AND length(r.first_name) >= 3
    AND jaro_winkler_similarity(l.first_name, r.first_name) < 0.75
    AND NOT coalesce(list_has_any(l.forename_set, r.forename_set), false)
    AND NOT coalesce(list_contains(r.given_names, l.first_name) OR list_contains(l.given_names, r.first_name), false)
    AND l.first_name IS DISTINCT FROM r.last_name AND r.first_name IS DISTINCT FROM l.last_name
    AND NOT coalesce(strpos(r.aliases, l.first_name) > 0, false)
    AND NOT coalesce(strpos(l.aliases, r.first_name) > 0, false)
    AND NOT {_SHARED_IDENTIFIER})
"""


def _words(text: pa.ChunkedArray, pattern: str) -> pa.ChunkedArray:
    """Split into a list of words; null when there are none."""
    text = pc.utf8_trim_whitespace(pc.fill_null(text, ""))
    return pc.split_pattern_regex(pc.if_else(pc.equal(text, ""), None, text), pattern)


def prepare(records: pa.Table) -> pa.Table:
    """Clean records with the derived columns the model compares on, for any engine.
    They are arrays, so agreement is an array test in every engine's SQL:

    - ``forename_set``: the full forms a forename may stand for (nicknames);
    - ``given_names``: forename and middle names (people go by a second given name);
    - ``surname_parts``: the words of a compound or double-barrelled surname.
    """
    given = pc.binary_join_element_wise(pc.fill_null(records.column("first_name"), ""),
                                        pc.fill_null(records.column("middle_names"), ""), " ")
    return (
        records.append_column("forename_set", _words(records.column("forename_canonical"), r"\|"))
        .append_column("given_names", _words(given, " +"))
        .append_column("surname_parts", _words(records.column("last_name"), "[ -]+"))
    )


def _name(column: str, other: str, *, nickname: bool) -> cl.CustomComparison:
    metaphone = f"{column}_metaphone"
    levels = [
        cll.NullLevel(column),
        cll.ExactMatchLevel(column).configure(tf_adjustment_column=column, tf_adjustment_weight=1.0),
    ]
    if nickname:
        levels.append(cll.ArrayIntersectLevel("forename_set", 1).configure(label_for_charts="nickname or full form"))
    levels += [
        cll.JaroWinklerLevel(column, 0.92),
        cll.CustomLevel(f"{metaphone}_l = {metaphone}_r", "sounds alike (Double Metaphone)", BASE_DIALECT),
        cll.ColumnsReversedLevel(column, other, symmetrical=True).configure(label_for_charts="forename and surname swapped"),
    ]
    if nickname:
        levels.append(cll.CustomLevel(
            "list_contains(given_names_r, first_name_l) OR list_contains(given_names_l, first_name_r)",
            "goes by another of their given names", BASE_DIALECT,
        ))
    else:
        levels.append(cll.ArrayIntersectLevel("surname_parts", 1).configure(label_for_charts="shares a surname part"))
    levels += [
        cll.JaroWinklerLevel(column, 0.8),
    ]
    if not nickname:
        # A surname changed on marriage is often recorded as an alias of the other record.
        levels.append(cll.CustomLevel(
            f"strpos(aliases_r, {column}_l) > 0 OR strpos(aliases_l, {column}_r) > 0", "one surname is in the other's aliases",
            BASE_DIALECT,
        ))
    levels += [
        cll.ElseLevel(),
    ]
    return cl.CustomComparison(
        output_column_name=column,
        comparison_levels=levels,
        comparison_description=(
            f"{column}: exact (frequency adjusted), {'nickname, ' if nickname else ''}Jaro-Winkler >= 0.92, "
            "sounds alike, swapped with the other name, "
            f"{'another given name, ' if nickname else 'a shared surname part, '}Jaro-Winkler >= 0.8, "
            f"{'' if nickname else 'in the aliases, '}else"
        ),
    )


def _home() -> cl.CustomComparison:
    # One comparison for postcode and address: they are not independent evidence.
    return cl.CustomComparison(
        output_column_name="postcode",
        comparison_levels=[
            cll.NullLevel("postcode"),
            cll.And(cll.ExactMatchLevel("postcode"), cll.JaroWinklerLevel("address", 0.9)).configure(
                label_for_charts="same postcode and address"
            ),
            cll.ExactMatchLevel("postcode"),
            cll.ExactMatchLevel("postcode_sector"),
            cll.ExactMatchLevel("postcode_district"),
            cll.ElseLevel(),
        ],
        comparison_description="home: postcode and address, postcode, sector, district, else",
    )


def _date_of_birth() -> cl.CustomComparison:
    def either_dob_null() -> str:
        return "(date_of_birth_l IS NULL OR date_of_birth_r IS NULL)"

    return cl.CustomComparison(
        output_column_name="date_of_birth",
        comparison_levels=[
            cll.CustomLevel("birth_year_l IS NULL OR birth_year_r IS NULL", "null").configure(is_null_level=True),
            cll.CustomLevel("date_of_birth_l = date_of_birth_r", "exact date", BASE_DIALECT),
            cll.CustomLevel(
                "year(date_of_birth_l) = year(date_of_birth_r) AND month(date_of_birth_l) = day(date_of_birth_r) "
                "AND day(date_of_birth_l) = month(date_of_birth_r)",
                "day and month swapped", BASE_DIALECT,
            ),
            cll.CustomLevel(
                "damerau_levenshtein(CAST(date_of_birth_l AS VARCHAR), CAST(date_of_birth_r AS VARCHAR)) <= 1",
                "one digit different", BASE_DIALECT,
            ),
            cll.CustomLevel(f"{either_dob_null()} AND abs(birth_year_l - birth_year_r) <= 1", "birth year only, within 1", BASE_DIALECT),
            cll.CustomLevel("abs(birth_year_l - birth_year_r) <= 1", "year within 1", BASE_DIALECT),
            cll.ElseLevel(),
        ],
        comparison_description="date of birth: exact, day/month swap, one digit, year-only match, year +-1, else",
    )


def _identifier(column: str) -> cl.ExactMatch:
    # Two different valid identifiers are strong evidence against: EM learns a tiny m
    # for the else level.
    return cl.ExactMatch(column)


def comparisons() -> list:
    return [
        _name("first_name", "last_name", nickname=True),
        _name("last_name", "first_name", nickname=False),
        _date_of_birth(),
        _home(),
        cl.ExactMatch("sex"),
        _identifier("pnc_id"),
        _identifier("cro_number"),
        _identifier("ni_number"),
        _identifier("driving_licence"),
        cl.ExactMatch("phone"),
        cl.ExactMatch("email"),
        _identifier("other_id"),
    ]


# Blocking: pairs are scored when they agree exactly on every column of at least one
# rule. Declared as columns so the same rules drive Splink and the recall report.
PREDICTION_BLOCKING_COLUMNS: tuple[tuple[str, ...], ...] = (
    # Full names only within a birth year or a postcode district: common names (JOHN
    # SMITH) would otherwise make comparisons grow with the square of the population.
    ("first_name", "last_name", "birth_year"),
    ("first_name", "last_name", "postcode_district"),
    ("last_name", "date_of_birth"),
    ("first_name", "date_of_birth"),
    ("date_of_birth", "postcode"),
    ("last_name", "postcode"),
    ("first_name", "postcode"),
    # Sound-alike names within a birth year or a district, or a shared home within a
    # birth year: reaches records with typos in both names and age-only records.
    ("first_name_metaphone", "last_name_metaphone", "birth_year"),
    ("last_name_metaphone", "birth_year", "postcode_district"),
    ("first_name_metaphone", "last_name", "postcode_district"),
    ("postcode", "birth_year"),
    ("pnc_id",),
    ("ni_number",),
    ("driving_licence",),
    ("cro_number",),
    ("phone",),
    ("email",),
    ("other_id",),
)


def prediction_blocking_rules() -> list:
    return [block_on(*columns) for columns in PREDICTION_BLOCKING_COLUMNS]


# Training plan: EM over several blocking rules, so every comparison gets its m
# estimated from at least one session in which it is not blocked on.
EM_BLOCKING_RULES = (
    block_on("first_name", "last_name"),
    block_on("date_of_birth"),
    block_on("postcode"),
)
DETERMINISTIC_RULES = (
    block_on("pnc_id"),
    block_on("first_name", "last_name", "date_of_birth"),
)
DETERMINISTIC_RECALL = 0.8
U_MAX_PAIRS = 2_000_000


def settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name=UNIQUE_ID,
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=prediction_blocking_rules(),
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=False,
        additional_columns_to_retain=[],
        max_iterations=20,
        em_convergence=0.001,
    )


# Parameters a trained model carries from one engine's settings to another's.
_LEVEL_PARAMETERS = ("m_probability", "u_probability", "tf_minimum_u_value")


def settings_dict(dialect: str, trained: dict | None = None) -> dict:
    """The declared settings in one engine's SQL dialect, carrying a trained model's
    m and u per comparison level and its λ when ``trained`` (a saved model) is given.

    A model saved on one engine holds that engine's SQL, so it is never loaded as is
    by another: the SQL always comes from this declaration.
    """
    declared = settings().create_settings_dict(dialect)
    if trained is None:
        return declared
    by_name = {c["output_column_name"]: c for c in trained["comparisons"]}
    if set(by_name) != {c["output_column_name"] for c in declared["comparisons"]}:
        raise ModelMismatchError("the saved model's comparisons differ from the declared model: run 'veracity train'")
    for comparison in declared["comparisons"]:
        trained_levels = by_name[comparison["output_column_name"]]["comparison_levels"]
        if len(trained_levels) != len(comparison["comparison_levels"]):
            raise ModelMismatchError(
                f"comparison {comparison['output_column_name']} has changed since the model was trained: run 'veracity train'"
            )
        for level, trained_level in zip(comparison["comparison_levels"], trained_levels, strict=True):
            for key in _LEVEL_PARAMETERS:
                if key in trained_level:
                    level[key] = trained_level[key]
    declared["probability_two_random_records_match"] = trained["probability_two_random_records_match"]
    return declared


def fingerprint() -> str:
    """Identifies the declaration (not its parameters): a saved model is reused only
    while this is unchanged."""
    declared = settings().create_settings_dict(BASE_DIALECT)
    declared.pop("linker_uid", None)
    return hashlib.sha256(json.dumps(declared, sort_keys=True, default=str).encode()).hexdigest()[:16]


def compared_columns() -> tuple[str, ...]:
    """Every prepared column the model reads — its comparisons, blocking rules and
    cannot-link rules. Two records equal in all of them are the same record to the
    model: they score alike against every other record."""
    used = {c.name.strip('"') for c in settings().get_settings(BASE_DIALECT)._columns_used_by_comparisons}
    used.update(column for rule in PREDICTION_BLOCKING_COLUMNS for column in rule)
    cannot_link = sqlglot.parse_one(f"SELECT {CANNOT_LINK_SQL}", read=BASE_DIALECT)
    used.update(c.name for c in cannot_link.find_all(exp.Column) if c.table in ("l", "r"))
    used.discard(UNIQUE_ID)
    return tuple(sorted(used))
