"""A cell's shape and texture numbers: one row per cell, and unmoved by what a lab changes
without changing the cell (how strongly it stains, how far it magnifies)."""
import cv2
import numpy as np

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


def test_a_cell_magnified_twice_reads_about_the_same():
    rgb, labels = smear(side=100, radius=15)
    big_rgb = cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    big_labels = cv2.resize(labels, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    _, small = cell_features(rgb, labels)
    _, big = cell_features(big_rgb, big_labels)
    shape_and_density = slice(0, 8)
    np.testing.assert_allclose(big[0, shape_and_density], small[0, shape_and_density], atol=0.15)
    # the texture of the grainy cell, at one size, against the plain small cell's
    assert np.abs(big[0] - small[0]).sum() < np.abs(small[0] - small[1]).sum()


def test_no_cells_give_an_empty_table():
    rgb, labels = smear()
    ids, features = cell_features(rgb, np.zeros_like(labels))
    assert ids.size == 0 and features.shape == (0, len(FEATURE_NAMES))
