"""The real-data levers: joint augmentation, batch norm, test-time flips, speck removal."""
import numpy as np
import pytest
import tensorflow as tf

from allseg.data.augment import augment
from allseg.model.architecture import build_unet
from allseg.cells.instances import remove_small_components
from allseg.infer.predict import predict_masks, predict_probabilities, to_mask


def test_flips_and_turns_move_image_and_mask_together():
    image = np.zeros((16, 16, 3), np.uint8)
    image[2:5, 9:14] = 255  # an off-centre, asymmetric block
    mask = (image[..., :1] > 0).astype(np.float32)
    ds = augment(tf.data.Dataset.from_tensors((image, mask)).repeat(12), seed=3, flips=True,
                 colour_strength=0.0, square=True)
    layouts = set()
    for aug_image, aug_mask in ds:
        aug_image, aug_mask = aug_image.numpy(), aug_mask.numpy()
        assert aug_mask.sum() == mask.sum()
        np.testing.assert_array_equal(aug_image[..., 0] > 0, aug_mask[..., 0] > 0.5)
        layouts.add(aug_mask.tobytes())
    assert len(layouts) > 2  # it really does vary


def test_colour_jitter_changes_the_image_but_never_the_mask():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (8, 8, 3)).astype(np.uint8)
    mask = (rng.random((8, 8, 1)) > 0.5).astype(np.float32)
    ds = augment(tf.data.Dataset.from_tensors((image, mask)).repeat(3), seed=1, flips=False,
                 colour_strength=1.0, square=True)
    for aug_image, aug_mask in ds:
        np.testing.assert_array_equal(aug_mask.numpy(), mask)
        assert not np.allclose(aug_image.numpy(), image)
        assert 0 <= aug_image.numpy().min() and aug_image.numpy().max() <= 255


def test_batch_norm_switch_adds_normalisation_layers():
    plain = build_unet(32, 32, base_filters=4, num_layers=2)
    normed = build_unet(32, 32, base_filters=4, num_layers=2, batch_norm=True)
    assert not any("BatchNormalization" in type(layer).__name__ for layer in plain.layers)
    assert sum("BatchNormalization" in type(layer).__name__ for layer in normed.layers) == 10


class _LeftHalf:
    """A stand-in model whose output depends on position: 1 on the left half of each image."""

    def predict_on_batch(self, x):
        out = np.zeros(x.shape[:3] + (1,), np.float32)
        out[:, :, : x.shape[2] // 2] = 1.0
        return out


def test_test_time_flips_average_predictions_mapped_back_to_the_original_frame():
    x = np.zeros((1, 4, 4, 3), np.float32)
    prob = predict_probabilities(_LeftHalf(), x, tta_flips=True)
    # two of the four views see the image mirrored, so each half gets 0.5 once mapped back
    np.testing.assert_allclose(prob, 0.5)
    np.testing.assert_allclose(predict_probabilities(_LeftHalf(), x)[0, :, :2], 1.0)


def test_speck_removal_keeps_large_regions_only():
    mask = np.zeros((20, 20), bool)
    mask[2:8, 2:8] = True  # 36 pixels
    mask[15, 15] = True    # a one-pixel speck
    cleaned = remove_small_components(mask, 5)
    assert cleaned.sum() == 36 and not cleaned[15, 15]
    assert remove_small_components(mask, 0).sum() == 37
    prob = mask.astype(np.float32)
    assert to_mask(prob, 40, 40, min_area=0).shape == (40, 40)


def test_decision_threshold_decides_which_pixels_are_blast():
    prob = np.array([[0.45, 0.55, 0.65]], np.float32)
    assert to_mask(prob, 1, 3).tolist() == [[False, True, True]]  # default 0.5
    assert to_mask(prob, 1, 3, threshold=0.6).tolist() == [[False, False, True]]


class _Unsure:
    """A stand-in model that gives every pixel a blast probability of 0.55."""

    def predict_on_batch(self, x):
        return np.full(x.shape[:3] + (1,), 0.55, np.float32)


@pytest.mark.parametrize("threshold, blast", [(0.5, True), (0.6, False)])
def test_config_threshold_reaches_the_masks_inference_writes(threshold, blast):
    from types import SimpleNamespace
    m = SimpleNamespace(image_height=8, image_width=8, tta_flips=False, min_area=0,
                        threshold=threshold)
    (mask,) = predict_masks(_Unsure(), [np.zeros((12, 10, 3), np.uint8)], m)
    assert mask.shape == (12, 10) and bool(mask.all()) is blast and bool(mask.any()) is blast



def test_border_weight_map_stresses_the_gap_between_two_cells():
    from allseg.data.weight_map import border_weights
    mask = np.zeros((20, 30), bool)
    mask[5:15, 2:12] = True   # two 10x10 cells with a 2-pixel gap (columns 12 and 13)
    mask[5:15, 14:24] = True
    w = border_weights(mask, w0=10.0, sigma=5.0, min_area=50)
    # gap column 12 lies 1 px from the left cell and 2 px from the right one:
    # 1 + 10 * exp(-(1 + 2)^2 / (2 * 5^2)); column 13 the other way round
    assert w[10, 12] == pytest.approx(1 + 10 * np.exp(-9 / 50), rel=1e-6)
    assert w[10, 13] == w[10, 12]
    assert (w[mask] == 1).all()             # cells keep weight 1
    assert w[0, 29] < w[10, 12] and w[0, 29] >= 1  # far from both cells: close to 1
    one_cell = border_weights(mask[:, :13], w0=10.0, sigma=5.0, min_area=50)
    assert (one_cell == 1).all()            # nothing to keep apart


def test_contact_weights_stress_where_touching_cells_meet():
    from allseg.data.weight_map import border_weights
    yy, xx = np.mgrid[:40, :60]
    mask = ((yy - 20) ** 2 + (xx - 18) ** 2 <= 100) | ((yy - 20) ** 2 + (xx - 37) ** 2 <= 100)
    # two discs of radius 10 whose rims overlap near column 27: one region, two cells once split
    w = border_weights(mask, w0=0.0, sigma=3.0, min_area=50, contact_w0=10.0, split_depth=1.0)
    neck = w[20, 26:29].max()
    assert neck == pytest.approx(11.0)                 # on the line where they meet: 1 + c0
    assert w[20, 10] == pytest.approx(1.0, abs=1e-3)   # a cell's far side: 1
    assert (w[~mask] == 1).all()                      # no gap term asked for
    unsplit = border_weights(mask, w0=0.0, sigma=3.0, min_area=50, contact_w0=10.0,
                             split_depth=0.0)
    assert (unsplit == 1).all()                       # no split, no line to stress
    plain = border_weights(mask, w0=10.0, sigma=3.0, min_area=50)
    both = border_weights(mask, w0=10.0, sigma=3.0, min_area=50, contact_w0=10.0, split_depth=1.0)
    assert np.array_equal(both[~mask], plain[~mask])  # the gap term stays as it was


def test_training_with_the_weight_map_feeds_per_pixel_weights(tmp_path, synthetic_master):
    from allseg.core.config import load_config
    from allseg.train.training import train
    from conftest import run_script, tiny_config_text
    run_script("split_master.py", "--master", synthetic_master, "--dest", tmp_path / "ALL",
               "--mini-test", tmp_path / "mini_test")
    config = tmp_path / "weighted.config"
    config.write_text(tiny_config_text(tmp_path, epochs="1").replace(
        'loss           = "bce_dice"',
        'loss           = "bce_dice"\nborder_weight  = 10.0\ncontact_weight = 10.0'))
    cfg = load_config(config)
    assert cfg.train.border_weight == 10.0 and cfg.train.border_sigma == 5.0
    assert cfg.train.contact_weight == 10.0
    result = train(cfg)
    assert result["epochs_run"] == 1 and np.isfinite(result["best_loss"])
    assert result["monitor"] == "val_loss"  # a config's run chooses its model by validation
