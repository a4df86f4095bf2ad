"""Cells from masks and the cell-level scores, pinned on small masks worked out by hand."""
import math

import numpy as np
import pytest

from allseg.cells.scoring import (hausdorff95, match_cells, normalized_surface_dice, score_cells,
                                         split_and_merging_cells, summarize_cells)
from allseg.cells.instances import (SPLIT_HOLE_PX, cells_csv, fill_small_holes, label_cells,
                                     measure_cells)


def disc(shape, centre, radius):
    rows, cols = np.ogrid[:shape[0], :shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2


def square(shape, top, left, side):
    mask = np.zeros(shape, bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_two_touching_discs_are_one_region_and_two_cells_once_split():
    # Centres 22 px apart, radius 12: the discs overlap in a neck about 9 px wide, so the distance
    # map has two peaks of 12 joined by a saddle near 4.5.
    mask = disc((60, 100), (30, 30), 12) | disc((60, 100), (30, 52), 12)
    assert label_cells(mask, min_area=50).max() == 1
    split = label_cells(mask, min_area=50, split_depth=2)
    assert split.max() == 2
    assert np.array_equal(split > 0, mask)  # splitting never changes the mask
    left, right = np.count_nonzero(split == 1), np.count_nonzero(split == 2)
    assert abs(left - right) <= 0.02 * mask.sum()  # cut down the middle


def test_a_ring_stays_one_hollow_cell():
    ring = disc((40, 40), (20, 20), 15) & ~disc((40, 40), (20, 20), 9)
    labels = label_cells(ring, min_area=50, split_depth=2)
    assert labels.max() == 1
    (cell,) = measure_cells(labels, np.zeros((40, 40, 3), np.uint8))
    # area / convex area: about (15^2 - 9^2) / 15^2 = 0.64 for a hollow cell, 1 for a filled one
    assert 0.55 < cell["solidity"] < 0.72


def test_a_speckled_interior_does_not_split_a_cell():
    # A disc (radius 14) with a line of five 2x2 holes down its middle, as a thresholded truth
    # has them: the holes dent the distance map into a peak either side of the line.
    cell = disc((40, 40), (20, 20), 14)
    for top in range(8, 33, 5):
        cell &= ~square((40, 40), top, 19, 2)
    assert label_cells(cell, min_area=50, split_depth=2, split_hole_px=0).max() == 2
    labels = label_cells(cell, min_area=50, split_depth=2)
    assert SPLIT_HOLE_PX >= 4 and labels.max() == 1
    assert np.array_equal(labels > 0, cell)  # the holes stay background


def test_a_solid_prediction_of_a_speckled_true_cell_is_one_match():
    pred = disc((40, 40), (20, 20), 14)
    truth = pred.copy()
    for top in range(8, 33, 5):
        truth &= ~square((40, 40), top, 19, 2)
    old, *_ = score_cells(pred, truth, min_area=50, split_depth=2, split_hole_px=0)
    assert (old["n_true"], old["n_pred"], old["fn"]) == (2, 1, 1)  # two halves: one is missed
    row, *_ = score_cells(pred, truth, min_area=50, split_depth=2)
    assert (row["n_true"], row["n_pred"], row["tp"], row["fp"], row["fn"]) == (1, 1, 1, 0, 0)
    summary = summarize_cells([row], min_area=50, split_depth=2)
    assert summary["definition"]["split_hole_px"] == SPLIT_HOLE_PX


def test_only_small_enclosed_holes_are_filled():
    mask = square((30, 60), 2, 2, 14) & ~square((30, 60), 6, 6, 5)  # hole of 25 px
    mask |= square((30, 60), 2, 20, 14) & ~square((30, 60), 5, 23, 7)  # hole of 49 px
    mask |= square((30, 60), 16, 40, 14) & ~square((30, 60), 25, 44, 5)  # notch open to the edge
    filled = fill_small_holes(mask, 30)
    assert np.count_nonzero(filled & ~mask) == 25
    assert filled[8, 8] and not filled[8, 26] and not filled[29, 46]
    assert np.array_equal(fill_small_holes(mask, 0), mask)


def test_a_speck_is_not_a_cell():
    speck = square((20, 20), 5, 5, 3)  # 9 pixels
    assert label_cells(speck, min_area=50).max() == 0
    assert label_cells(speck, min_area=9).max() == 1


def test_measurements_of_a_rectangle_on_the_border():
    mask = np.zeros((30, 40), bool)
    mask[0:10, 5:25] = True  # 10 rows x 20 columns, on the top edge
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[mask] = (200, 10, 0)
    (cell,) = measure_cells(label_cells(mask, min_area=1), rgb)
    assert cell["area_px"] == 200
    assert (cell["bbox_row0"], cell["bbox_col0"], cell["bbox_row1"], cell["bbox_col1"]) == (0, 5, 10, 25)
    assert (cell["centroid_row"], cell["centroid_col"]) == (4.5, 14.5)
    assert cell["touches_border"] is True
    assert (cell["mean_red"], cell["mean_green"], cell["mean_blue"]) == (200.0, 10.0, 0.0)
    assert cell["equivalent_diameter_px"] == pytest.approx(math.sqrt(4 * 200 / math.pi), abs=0.01)
    assert cell["solidity"] == 1.0
    # Pixel variances along each side: (n^2 - 1) / 12, so eccentricity = sqrt(1 - 99/399).
    assert cell["eccentricity"] == pytest.approx(math.sqrt(1 - 99 / 399), abs=1e-4)
    p = cell["perimeter_px"]
    assert cell["circularity"] == pytest.approx(4 * math.pi * 200 / p ** 2, abs=1e-3)
    inner = measure_cells(label_cells(np.roll(mask, 5, axis=0), min_area=1), rgb)[0]
    assert inner["touches_border"] is False


def test_pinholes_do_not_make_a_round_cell_look_ragged():
    rows, cols = np.mgrid[:41, :41]
    disc = (rows - 20) ** 2 + (cols - 20) ** 2 <= 100
    holed = disc.copy()
    holed[20, 20] = holed[14, 22] = False  # two one-pixel holes, as a colour threshold leaves
    rgb = np.zeros((41, 41, 3), np.uint8)
    (solid,) = measure_cells(label_cells(disc, min_area=1), rgb)
    (cell,) = measure_cells(label_cells(holed, min_area=1), rgb)
    assert cell["area_px"] == solid["area_px"] - 2
    assert cell["perimeter_px"] == solid["perimeter_px"]
    assert cell["circularity"] == solid["circularity"] > 0.9


def test_matching_is_one_to_one_at_iou_one_half():
    shape = (40, 80)
    truth = label_cells(square(shape, 5, 5, 10) | square(shape, 5, 30, 10), min_area=1)
    # first true cell found exactly; second found shifted by 5 px (IoU 50/150 = 1/3, not a
    # match); a third predicted cell where there is none
    pred = label_cells(square(shape, 5, 5, 10) | square(shape, 5, 35, 10) | square(shape, 25, 60, 10),
                       min_area=1)
    m = match_cells(truth, pred)
    assert (m["n_true"], m["n_pred"], m["tp"], m["fp"], m["fn"]) == (2, 3, 1, 2, 1)
    assert m["pairs"] == [(1, 1, 1.0)]
    row, *_ = score_cells(pred > 0, truth > 0, min_area=1)
    assert row["precision"] == pytest.approx(1 / 3) and row["recall"] == pytest.approx(1 / 2)
    assert row["f1"] == pytest.approx(1 / (1 + 0.5 * 2 + 0.5 * 1))  # tp / (tp + fp/2 + fn/2) = 0.4
    assert row["panoptic_quality"] == pytest.approx(0.4)  # F1 x mean matched IoU (1.0)


def test_a_shifted_square_matches_with_its_iou_in_panoptic_quality():
    truth, pred = square((30, 30), 5, 5, 10), square((30, 30), 5, 7, 10)  # IoU 80 / 120
    row, *_ = score_cells(pred, truth, min_area=1)
    assert (row["tp"], row["fp"], row["fn"]) == (1, 0, 0)
    assert row["f1"] == 1.0 and row["panoptic_quality"] == pytest.approx(2 / 3)


def test_empty_cases_are_defined():
    empty = np.zeros((20, 20), bool)
    cell = square((20, 20), 2, 2, 10)
    row, *_ = score_cells(empty, empty, min_area=5)
    assert (row["precision"], row["recall"], row["f1"], row["panoptic_quality"]) == (1, 1, 1, 1)
    assert (row["dice"], row["nsd_2px"], row["hd95"]) == (1.0, 1.0, 0.0)
    missed, *_ = score_cells(empty, cell, min_area=5)
    assert (missed["precision"], missed["recall"], missed["f1"], missed["panoptic_quality"]) == (1, 0, 0, 0)
    assert (missed["dice"], missed["nsd_2px"], missed["hd95"]) == (0.0, 0.0, None)
    invented, *_ = score_cells(cell, empty, min_area=5)
    assert (invented["precision"], invented["recall"], invented["f1"]) == (0, 1, 0)
    summary = summarize_cells([row, missed, invented], min_area=5, split_depth=0)
    assert (summary["tp"], summary["fp"], summary["fn"]) == (0, 1, 1)
    assert summary["f1"] == 0.0 and summary["count_mae"] == pytest.approx(2 / 3)
    assert summary["count_bias"] == 0.0
    assert summary["hd95"] == 0.0 and summary["hd95_images"] == 1  # undefined twice, left out


def test_surface_scores_of_lines_two_pixels_apart():
    # One-pixel lines are their own boundary. truth: row 10; prediction: row 12, plus a 10 px
    # piece on row 30. Truth -> prediction: 100 distances of 2. Prediction -> truth: 100 of 2 and
    # 10 of 20.
    truth = np.zeros((40, 100), bool)
    truth[10] = True
    pred = np.zeros((40, 100), bool)
    pred[12] = True
    pred[30, :10] = True
    assert normalized_surface_dice(pred, truth, tolerance=2) == pytest.approx(200 / 210)
    assert normalized_surface_dice(pred, truth, tolerance=1) == 0.0
    assert hausdorff95(pred, truth) == 20.0  # 95th percentile of (100 x 2, 10 x 20) is 20
    assert hausdorff95(pred[:20], truth[:20]) == 2.0


def test_cell_scores_leave_specks_out_of_both_masks():
    truth = disc((50, 50), (25, 25), 10)
    truth[2:4, 2:4] = True  # a 4-pixel speck of the kind the colour threshold leaves
    pred = disc((50, 50), (25, 25), 10)
    row, *_ = score_cells(pred, truth, min_area=50)
    assert (row["n_true"], row["n_pred"], row["f1"]) == (1, 1, 1.0)
    assert (row["dice"], row["nsd_2px"], row["hd95"]) == (1.0, 1.0, 0.0)


def test_a_bridged_pair_against_two_cells_is_counted_as_a_split_or_a_merge():
    shape = (40, 80)
    apart = disc(shape, (20, 20), 10) | disc(shape, (20, 44), 10)   # 3 px of background between
    bridged = apart | square(shape, 18, 28, 10)                      # a 10 px square joins them
    split, *_ = score_cells(apart, bridged, min_area=50)
    assert (split["n_true"], split["n_pred"], split["split_true"], split["merged_pred"]) == (1, 2, 1, 0)
    assert (split["tp"], split["fp"], split["fn"]) == (0, 2, 1)   # each half has IoU under 0.5
    merged, *_ = score_cells(bridged, apart, min_area=50)
    assert (merged["n_true"], merged["n_pred"], merged["split_true"], merged["merged_pred"]) == (2, 1, 0, 1)
    same, *_ = score_cells(apart, apart, min_area=50)
    assert (same["split_true"], same["merged_pred"]) == (0, 0)
    summary = summarize_cells([split, merged, same], min_area=50, split_depth=0)
    assert (summary["split_true"], summary["merged_pred"]) == (1, 1)


def test_the_split_and_merging_cells_are_named_by_their_labels():
    shape = (40, 80)
    apart = disc(shape, (20, 20), 10) | disc(shape, (20, 44), 10)
    bridged = apart | square(shape, 18, 28, 10)
    one, two = label_cells(bridged, 50), label_cells(apart, 50)
    assert split_and_merging_cells(one, two) == ({1: 2}, {})   # true 1 holds predicted 1 and 2
    assert split_and_merging_cells(two, one) == ({}, {1: 2})   # predicted 1 holds true 1 and 2
    assert split_and_merging_cells(two, two) == ({}, {})


def test_with_a_pixel_size_cells_are_measured_in_micrometres_too():
    # A disc of radius 20 px at 0.35 um per pixel: a cell about 14 um across, a lymphoblast's size.
    labels = label_cells(disc((60, 60), (30, 30), 20), min_area=1)
    rgb = np.zeros((60, 60, 3), np.uint8)
    (in_px,) = measure_cells(labels, rgb)
    (cell,) = measure_cells(labels, rgb, pixel_size_um=0.35)
    assert "area_um2" not in in_px and {k: in_px[k] for k in in_px} == {k: cell[k] for k in in_px}
    assert cell["area_um2"] == pytest.approx(cell["area_px"] * 0.35 ** 2, abs=1e-3)
    assert cell["equivalent_diameter_um"] == pytest.approx(40 * 0.35, rel=0.02)
    assert cell["perimeter_um"] == pytest.approx(cell["perimeter_px"] * 0.35, abs=1e-3)
    header = cells_csv([{"file": "a.png", **cell}], physical=True).splitlines()[0]
    assert header.endswith("area_um2,perimeter_um,equivalent_diameter_um")
    assert "um" not in cells_csv([{"file": "a.png", **in_px}]).splitlines()[0]


def test_the_fast_peak_lowering_equals_skimage_reconstruction_bit_for_bit():
    # The split's seeds come from this array, so any difference would move cell counts.
    from scipy import ndimage
    from skimage import morphology

    from allseg.cells.instances import lowered_peaks
    rng = np.random.default_rng(7)
    for trial in range(60):
        blobs = ndimage.binary_opening(rng.random((50, 64)) < rng.uniform(0.4, 0.8))
        if trial % 10 == 0:
            blobs[:] = False  # an empty mask, and below one with only thin regions
        if trial % 10 == 1:
            blobs = np.zeros((50, 64), bool)
            blobs[10:13, 5:40] = True
        distance = ndimage.distance_transform_edt(blobs)
        depth = float(rng.choice([0.5, 1.0, 3.0, 6.0]))
        expected = morphology.reconstruction(distance - depth, distance, method="dilation")
        assert np.array_equal(lowered_peaks(distance, depth), expected), trial


def test_the_fast_distance_map_equals_scipys_bit_for_bit():
    from scipy import ndimage

    from allseg.cells.instances import euclidean_distance
    rng = np.random.default_rng(3)
    masks = [ndimage.binary_opening(rng.random((120, 90)) < p) for p in (0.3, 0.6, 0.9)]
    masks += [np.pad(np.ones((700, 700), bool), 1), np.zeros((5, 5), bool), np.ones((4, 6), bool)]
    for mask in masks:
        assert np.array_equal(euclidean_distance(mask), ndimage.distance_transform_edt(mask))


def test_solidity_and_eccentricity_agree_with_skimages_regionprops():
    from scipy import ndimage
    from skimage import measure

    from allseg.cells.instances import convex_hull, eccentricity, grid_points_in_convex
    rng = np.random.default_rng(5)
    labels = measure.label(ndimage.binary_opening(rng.random((160, 160)) < 0.6))
    line = np.zeros((3, 9), bool)
    line[1, 1:8] = True  # one pixel thick: Qhull and OpenCV must still agree
    regions = measure.regionprops(labels) + measure.regionprops(line.astype(int))
    assert len(regions) > 50
    hull_areas = grid_points_in_convex([convex_hull(region.image) for region in regions])
    assert hull_areas.tolist() == [region.area_convex for region in regions]
    for region in regions:
        assert eccentricity(region.image) == pytest.approx(region.eccentricity, abs=1e-12)


def test_the_learned_cell_size_is_the_median_diameter_of_every_cell_in_the_masks():
    from allseg.cells.instances import median_cell_diameter
    small = disc((60, 60), (15, 15), 5) | disc((60, 60), (45, 45), 5)
    large = disc((60, 60), (30, 30), 12)
    sizes = sorted(np.sqrt(4 * np.count_nonzero(d) / np.pi) for d in
                   (disc((60, 60), (15, 15), 5), disc((60, 60), (15, 15), 5), large))
    assert median_cell_diameter([small, large], min_area=20) == pytest.approx(sizes[1])
    assert median_cell_diameter([np.zeros((8, 8), bool)], min_area=20) == 0.0


def test_the_median_diameter_counts_every_labelled_cell_of_label_images_and_skips_unused_labels():
    from allseg.cells.instances import median_diameter
    labels = np.zeros((40, 40), np.int32)
    labels[:4, :4] = 1    # 16 px
    labels[10:15, 10:15] = 3  # 25 px; label 2 is used by no pixel
    other = np.zeros((20, 20), np.int32)
    other[:6, :6] = 7  # 36 px
    assert median_diameter([labels, other]) == pytest.approx(np.sqrt(4 * 25 / np.pi))
    assert median_diameter(iter([labels])) == pytest.approx(  # a generator: read once
        (np.sqrt(4 * 16 / np.pi) + np.sqrt(4 * 25 / np.pi)) / 2)
    assert median_diameter([np.zeros((8, 8), np.int32)]) == 0.0
    assert median_diameter([]) == 0.0
