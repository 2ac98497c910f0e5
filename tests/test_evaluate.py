import pyarrow as pa
import pytest

from veracity.evaluate import score_tables


def _t(pairs):
    return pa.table({"record_key": [k for k, _ in pairs], "cluster": [c for _, c in pairs]})


def test_perfect_resolution_scores_one():
    truth = _t([("a", "1"), ("b", "1"), ("c", "2")])
    result = score_tables(_t([("a", "x"), ("b", "x"), ("c", "y")]), truth)
    assert result.pairwise.f1 == 1.0 and result.bcubed.f1 == 1.0


def test_overmerge_costs_precision_not_recall():
    truth = _t([("a", "1"), ("b", "1"), ("c", "2"), ("d", "2")])
    result = score_tables(_t([(k, "x") for k in "abcd"]), truth)
    assert result.pairwise.precision == pytest.approx(2 / 6)
    assert result.pairwise.recall == 1.0
    assert result.bcubed.precision == pytest.approx(0.5) and result.bcubed.recall == 1.0


def test_split_costs_recall_not_precision():
    truth = _t([("a", "1"), ("b", "1"), ("c", "1")])
    result = score_tables(_t([("a", "x"), ("b", "x"), ("c", "y")]), truth)
    assert result.pairwise.precision == 1.0
    assert result.pairwise.recall == pytest.approx(1 / 3)
    assert result.bcubed.recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3) / 3)
    assert result.true_persons == 1 and result.predicted_persons == 2
