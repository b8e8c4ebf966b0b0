import pytest

from cancerllm.errors import InputError
from cancerllm.metrics import (
    accuracy_at_coverage,
    coverage_curve,
    expected_calibration_error,
    reliability_table,
)


def test_perfectly_calibrated_and_overconfident():
    conf = [0.25] * 4 + [0.75] * 4
    ok = [True, False, False, False] + [True, True, True, False]
    assert expected_calibration_error(conf, ok) == 0.0
    assert expected_calibration_error([0.95] * 10, [True] * 5 + [False] * 5) == pytest.approx(0.45)
    table = reliability_table(conf, ok, bins=4)
    assert [(r["n"], r["accuracy"]) for r in table] == [(4, 0.25), (4, 0.75)]
    assert reliability_table([1.0], [True], bins=10)[-1]["high"] == 1.0  # 1.0 falls in the last bin


def test_accuracy_at_coverage_keeps_the_most_confident():
    conf, ok = [0.1, 0.9, 0.5, 0.8, 0.2], [False, True, False, True, True]
    assert accuracy_at_coverage(conf, ok, 0.4) == 1.0  # 0.9 and 0.8
    assert accuracy_at_coverage(conf, ok, 0.6) == pytest.approx(2 / 3, abs=1e-4)
    assert accuracy_at_coverage(conf, ok, 1.0) == 0.6
    curve = coverage_curve(conf, ok, thresholds=(0.0, 0.5, 0.95))
    assert [(c["coverage"], c["accuracy"]) for c in curve] == [(1.0, 0.6), (0.6, pytest.approx(2 / 3, abs=1e-4)), (0.0, None)]


@pytest.mark.parametrize("conf, ok", [([0.5], []), ([1.5], [True]), ([None], [True]), ([float("nan")], [True])])
def test_bad_inputs(conf, ok):
    with pytest.raises(InputError):
        expected_calibration_error(conf, ok)
