"""The paired bootstrap interval that decides whether a lever's gain is more than noise."""
import numpy as np
import pytest

from allseg.evaluate.compare import paired_interval


def mean_error(rows):
    return float(np.mean([r["error"] for r in rows]))


def test_the_same_scores_on_both_sides_differ_by_exactly_nothing():
    rows = [{"error": e} for e in (0, 1, 0, 2, 1)]
    assert paired_interval(rows, rows, mean_error) == (0.0, 0.0, 0.0)


def test_one_image_in_a_hundred_scoring_better_is_not_a_clear_gain():
    a = [{"error": 1}] * 100
    b = [{"error": 0}] + [{"error": 1}] * 99
    diff, low, high = paired_interval(a, b, mean_error)
    assert diff == pytest.approx(-0.01)
    assert low < diff and high == 0.0  # the interval reaches zero: not a clear gain


def test_every_image_scoring_better_is_a_clear_gain():
    a = [{"error": e} for e in np.arange(50) % 3 + 1]
    b = [{"error": r["error"] - 1} for r in a]
    assert paired_interval(a, b, mean_error) == pytest.approx((-1.0, -1.0, -1.0))


def test_sides_that_score_different_images_are_refused():
    with pytest.raises(ValueError, match="same images"):
        paired_interval([{"error": 0}], [], mean_error)
