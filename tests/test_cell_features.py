"""A cell's shape and texture numbers: one row per cell, and unmoved by what a lab changes
without changing the cell (how strongly it stains, how far it magnifies)."""
import cv2
import numpy as np
import pytest

from allseg.cells.cell_features import FEATURE_NAMES, cell_features


def smear(side=200, radius=30, seed=0):
    """Two white cells on pale glass: a dark, grainy nucleus in a paler rim, and a small round
    one; label image 1 and 2."""
    rng = np.random.default_rng(seed)
    rgb = np.full((side, side, 3), (235, 228, 240), np.uint8)
    labels = np.zeros((side, side), np.int32)
    centre = (side * 7 // 20, side * 2 // 5)
    cv2.circle(labels, centre, radius, 1, -1)
    cv2.circle(labels, (side * 3 // 4, side * 7 // 10), radius // 2, 2, -1)
    transmitted = np.ones((side, side, 3), np.float32)
    transmitted[labels > 0] = (0.55, 0.45, 0.75)
    nucleus = np.zeros((side, side), np.uint8)
    cv2.ellipse(nucleus, (centre[0] + radius // 8, centre[1] - radius // 8),
                (radius * 2 // 3, radius // 2), 20, 0, 360, 1, -1)
    grain = rng.uniform(0.75, 1.0, (side, side))
    transmitted[nucleus > 0] = np.array([0.3, 0.2, 0.5]) * grain[nucleus > 0, None]
    rgb = np.where(labels[..., None] > 0, transmitted * 255, rgb)
    return rgb.astype(np.uint8), labels


def test_one_row_per_cell_in_label_order():
    rgb, labels = smear()
    ids, features = cell_features(rgb, labels)
    assert ids.tolist() == [1, 2]
    assert features.shape == (2, len(FEATURE_NAMES)) and np.isfinite(features).all()
    assert not np.allclose(features[0], features[1])  # the grainy cell and the plain one differ


def test_a_stronger_stain_leaves_the_numbers_alone():
    """Twice the stain (Beer-Lambert: every transmitted fraction squared) doubles each pixel's
    optical density; the cell's shape and its density's texture stay put."""
    rgb, labels = smear()
    stained = (255 * (rgb / 255.0) ** 2).round().astype(np.uint8)
    _, plain = cell_features(rgb, labels)
    _, strong = cell_features(stained, labels)
    np.testing.assert_allclose(strong, plain, atol=0.02)


def test_a_cell_magnified_twice_reads_about_the_same_but_for_its_size():
    rgb, labels = smear(side=100, radius=15)
    big_rgb = cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    big_labels = cv2.resize(labels, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    _, small = cell_features(rgb, labels)
    _, big = cell_features(big_rgb, big_labels)
    shape_and_density = slice(0, 8)
    np.testing.assert_allclose(big[0, shape_and_density], small[0, shape_and_density], atol=0.15)
    # the texture of the grainy cell, at one size, against the plain small cell's
    texture = slice(0, FEATURE_NAMES.index("log_diameter_px"))
    assert np.abs(big[0, texture] - small[0, texture]).sum() < \
        np.abs(small[0, texture] - small[1, texture]).sum()
    # its size, the one number magnification moves: twice as large
    size = FEATURE_NAMES.index("log_diameter_px")
    assert big[0, size] - small[0, size] == pytest.approx(np.log(2), abs=0.03)


def test_no_cells_give_an_empty_table():
    rgb, labels = smear()
    ids, features = cell_features(rgb, np.zeros_like(labels))
    assert ids.size == 0 and features.shape == (0, len(FEATURE_NAMES))


def test_a_cells_numbers_do_not_depend_on_the_other_cells_in_the_image():
    """The cells of an image are measured together on one sheet: each must read as it would
    alone, wherever the sheet put it."""
    rgb, labels = smear()
    crowd = labels.copy()
    for k, (row, col) in enumerate([(20, 20), (180, 30), (20, 170), (185, 185)], start=3):
        cv2.circle(crowd, (col, row), 9 + 2 * k, k, -1)
    _, alone = cell_features(rgb, np.where(labels == 1, 1, 0))
    _, together = cell_features(rgb, crowd)
    np.testing.assert_allclose(together[0], alone[0], rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Applying `local_binary_pattern` to floating-point")
def test_co_occurrence_and_patterns_are_skimages():
    """The sheet's co-occurrence statistics and uniform local binary patterns are those skimage
    computes for one patch (which the call was first fitted with)."""
    from skimage.feature import graycomatrix, graycoprops, local_binary_pattern

    from allseg.cells.cell_features import (GREY_LEVELS, PAIR_OFFSETS, _cooccurrence_stats,
                                            uniform_patterns)
    from allseg.cells.cell_sheet import Sheet
    rng = np.random.default_rng(3)
    levels = rng.integers(0, GREY_LEVELS, (23, 31)).astype(np.uint8)
    sheet = Sheet([(5, 5), levels.shape, (9, 4)])
    painted = sheet.paint([np.full((5, 5), 7), levels, np.full((9, 4), 2)], np.uint8)
    matrices = sheet.pair_counts(painted, PAIR_OFFSETS, GREY_LEVELS).astype(float)
    matrices /= matrices.sum(axis=(2, 3), keepdims=True)
    ours = [stat[1] for stat in _cooccurrence_stats(matrices)]
    theirs = graycomatrix(levels, [1, 2], [0, np.pi / 2], levels=GREY_LEVELS, symmetric=True,
                          normed=True)
    expected = [graycoprops(theirs, name).mean()
                for name in ("contrast", "homogeneity", "energy", "correlation")]
    np.testing.assert_allclose(ours, expected, rtol=1e-10)
    smooth = rng.random((40, 40)) * 10  # no ties: skimage's interpolation cannot tip one
    inner = np.flatnonzero(np.pad(np.ones((38, 38), bool), 1))
    np.testing.assert_array_equal(uniform_patterns(smooth, inner),
                                  local_binary_pattern(smooth, 8, 1, "uniform").ravel()[inner])
