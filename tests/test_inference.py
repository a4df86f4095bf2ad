"""Inference safety checks that need no model."""
import cv2
import numpy as np
import pytest

from allseg.cells.instances import count_row, label_cells
from allseg.core.errors import UserError
from allseg.infer.inference import _check_folders


def test_inference_refuses_outputs_inside_the_input_folder(tmp_path):
    from types import SimpleNamespace
    images = tmp_path / "mini_test"
    images.mkdir()
    outside = {"output_dir": tmp_path / "out", "overlay_dir": tmp_path / "overlay",
               "labels_dir": tmp_path / "labels", "montage": tmp_path / "montage.png",
               "cell_counts": tmp_path / "counts.csv", "cells_csv": tmp_path / "cells.csv",
               "geojson_dir": tmp_path / "geojson", "nuclei_dir": tmp_path / "nuclei"}
    _check_folders(SimpleNamespace(images_dir=images, **outside))
    for name in outside:
        inside = images / "sub" if name.endswith("_dir") else images / "file.out"
        with pytest.raises(UserError, match=f"{name} = .* is inside images_dir"):
            _check_folders(SimpleNamespace(images_dir=images, **{**outside, name: inside}))


def test_cell_counts_are_the_cells_of_a_label_image():
    mask = np.zeros((100, 100), bool)
    mask[10:30, 10:30] = True      # 400 px
    mask[50:60, 50:65] = True      # 150 px
    mask[29:31, 29:31] = True      # touches the first: one region, 400 + 3 px
    mask[90, 90] = True            # a speck
    row = count_row("a.jpg", label_cells(mask, 50), mask)
    assert row["cells"] == 2 and row["cell_areas_px"] == "403 150"
    assert row["foreground_fraction"] == pytest.approx(554 / 10000)
    assert count_row("b.jpg", label_cells(mask, 1), mask)["cell_areas_px"] == "403 150 1"
    empty = np.zeros((5, 5), bool)
    assert count_row("c.jpg", label_cells(empty, 1), empty)["cells"] == 0


def build_tiny_unet(size):
    from allseg.model.architecture import build_unet

    return build_unet(size, size, base_filters=4, num_layers=2, dropout_rate=0.0)


def test_tiled_prediction_of_a_2x2_mosaic_matches_the_single_image_away_from_tile_borders():
    from types import SimpleNamespace

    import keras

    from allseg.model.architecture import build_unet
    from allseg.infer.predict import predict_masks, predict_tiled
    from allseg.data.synthetic import make_smear

    keras.utils.set_random_seed(5)
    size = 64
    model = build_unet(size, size, base_filters=4, num_layers=2, dropout_rate=0.0)
    m = SimpleNamespace(image_height=size, image_width=size, tta_flips=False, min_area=0,
                        threshold=0.5)
    image = cv2.resize(make_smear(np.random.default_rng(1), "Early")[0], (size, size),
                       interpolation=cv2.INTER_AREA)
    single = predict_tiled(model, image, m)  # one tile: the plain prediction
    assert np.allclose(single, model.predict_on_batch(image[None].astype("float32"))[0, ..., 0],
                       atol=1e-5)
    assert 0.02 < (single > 0.5).mean() < 0.98  # a mask with something in it to compare

    mosaic = np.tile(image, (2, 2, 1))
    tiled = predict_masks(model, [mosaic], m, batch_size=4, tiled=True)[0]
    assert tiled.shape == mosaic.shape[:2]
    margin = 12  # beyond the network's view of the padding at tile and image edges
    for qy in (0, size):
        for qx in (0, size):
            got = tiled[qy + margin:qy + size - margin, qx + margin:qx + size - margin]
            want = single[margin:-margin, margin:-margin] > 0.5
            assert (got == want).mean() > 0.97


def test_montage_titles_keep_the_cell_count_and_fit_their_tile():
    from allseg.infer.outputs import LABEL_FONT, LABEL_SCALE, MONTAGE_TILE, fit_label

    for text in ("synthetic_benign: 3 cells", "WBC-Malignant-Early-041: 12 cells", "a: 1 cells"):
        title = fit_label(text, MONTAGE_TILE - 8)
        assert title.endswith(text.rpartition(": ")[2]), title
        assert cv2.getTextSize(title, LABEL_FONT, LABEL_SCALE, 1)[0][0] <= MONTAGE_TILE - 8
        assert title == text or title.startswith(text[:6]) and ".." in title


def test_a_scan_is_thresholded_strip_by_strip_as_the_whole_probability_map_would_be():
    """predict_mask_in_strips gives the mask of predict_tiled's full float map, bit for bit,
    while holding floats for one strip of tiles: its peak allocation stays under a single
    float map of the image."""
    import tracemalloc
    from types import SimpleNamespace

    import keras

    from allseg.data.synthetic import make_smear
    from allseg.infer.predict import predict_mask_in_strips, predict_tiled

    keras.utils.set_random_seed(5)
    size = 32
    model = build_tiny_unet(size)
    m = SimpleNamespace(image_height=size, image_width=size, tta_flips=False, min_area=0,
                        threshold=0.5)
    smear = make_smear(np.random.default_rng(2), "Early")[0]
    image = np.tile(cv2.resize(smear, (100, 100), interpolation=cv2.INTER_AREA), (10, 7, 1))
    image = image[:997, :683]  # neither side a multiple of the tile's step
    want = predict_tiled(model, image, m, batch_size=8) > m.threshold
    assert 0.02 < want.mean() < 0.98
    model.predict_on_batch(np.zeros((8, size, size, 3), np.float32))  # traced before measuring
    tracemalloc.start()
    got = predict_mask_in_strips(model, image, m, batch_size=8)[..., 0]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.array_equal(got, want)
    assert peak < image.shape[0] * image.shape[1] * 4, peak  # less than one float32 map
