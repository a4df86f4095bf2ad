"""Inference safety checks that need no model."""
import cv2
import numpy as np
import pytest

from allseg.cells import cell_areas, count_row
from allseg.errors import UserError
from allseg.inference import _check_folders


def test_inference_refuses_outputs_inside_the_input_folder(tmp_path):
    images = tmp_path / "mini_test"
    images.mkdir()
    csv_path = tmp_path / "counts.csv"
    _check_folders(images, tmp_path / "out", tmp_path / "overlay", tmp_path / "montage.png", csv_path)
    for out, overlay, montage, counts in (
            (images, tmp_path / "o", tmp_path / "m.png", csv_path),
            (tmp_path / "o", images / "sub", tmp_path / "m.png", csv_path),
            (tmp_path / "o", tmp_path / "p", images / "m.png", csv_path),
            (tmp_path / "o", tmp_path / "p", tmp_path / "m.png", images / "c.csv")):
        with pytest.raises(UserError, match="inside images_dir"):
            _check_folders(images, out, overlay, montage, counts)


def test_cells_are_regions_of_at_least_the_minimum_area():
    mask = np.zeros((100, 100), bool)
    mask[10:30, 10:30] = True      # 400 px
    mask[50:60, 50:65] = True      # 150 px
    mask[29:31, 29:31] = True      # touches the first: one region, 400 + 3 px
    mask[90, 90] = True            # a speck
    assert cell_areas(mask, 50) == [403, 150]
    assert cell_areas(mask, 1) == [403, 150, 1]
    assert cell_areas(np.zeros((5, 5), bool), 1) == []
    row = count_row("a.jpg", mask, 50)
    assert row["cells"] == 2 and row["cell_areas_px"] == "403 150"
    assert row["foreground_fraction"] == pytest.approx(554 / 10000)


def test_tiled_prediction_of_a_2x2_mosaic_matches_the_single_image_away_from_tile_borders():
    from types import SimpleNamespace

    import keras

    from allseg.model import build_unet
    from allseg.predict import predict_masks, predict_tiled
    from allseg.synthetic import make_smear

    keras.utils.set_random_seed(5)
    size = 64
    model = build_unet(size, size, base_filters=4, num_layers=2, dropout_rate=0.0)
    m = SimpleNamespace(image_height=size, image_width=size, tta_flips=False, min_area=0)
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
