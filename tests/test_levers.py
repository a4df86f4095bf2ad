"""The real-data levers: joint augmentation, batch norm, test-time flips, speck removal."""
import numpy as np
import tensorflow as tf

from allseg.augment import augment
from allseg.model import build_unet
from allseg.predict import predict_probabilities, remove_small_components, to_mask


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

