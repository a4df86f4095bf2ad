import numpy as np
import pytest

from allseg.cells.scoring import confusion, dice, iou, pixel_scores, summarize


def test_dice_and_iou_from_counts():
    pred = np.array([[1, 1, 0], [0, 0, 0]], bool)
    truth = np.array([[1, 0, 0], [1, 0, 0]], bool)
    assert confusion(pred, truth) == (1, 1, 1, 3)
    assert dice(1, 1, 1) == pytest.approx(0.5)
    assert iou(1, 1, 1) == pytest.approx(1 / 3)


def test_both_empty_counts_as_perfect_and_one_empty_as_zero():
    empty = np.zeros((4, 4), bool)
    full = np.ones((4, 4), bool)
    assert pixel_scores("a", empty, empty)["dice"] == 1.0
    assert pixel_scores("b", empty, full)["dice"] == 0.0
    assert pixel_scores("c", full, empty)["iou"] == 0.0


def test_summary_pools_counts_and_averages_per_image():
    rows = [pixel_scores("a", np.ones((2, 2), bool), np.ones((2, 2), bool)),
            pixel_scores("b", np.zeros((2, 2), bool), np.ones((2, 2), bool))]
    s = summarize(rows, loss=0.3, binary_accuracy=0.5)
    assert s["mean_dice"] == pytest.approx(0.5)
    assert s["pooled_dice"] == pytest.approx(2 * 4 / (2 * 4 + 4))
    assert s["precision"] == 1.0 and s["recall"] == pytest.approx(0.5)
    assert s["pixel_accuracy"] == pytest.approx(0.5)
    assert [r["file"] for r in s["per_image"]] == ["a", "b"]


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        confusion(np.zeros((2, 2), bool), np.zeros((3, 2), bool))
