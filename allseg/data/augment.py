"""Random augmentation applied jointly to an image and its mask, seeded for reproducibility: the
one augmentation of every training run (a config's pairs and a lab's fine-tuning alike)."""
import numpy as np
import tensorflow as tf
from skimage.color import hed_from_rgb, rgb_from_hed

# Ruifrok and Johnston's stain vectors as skimage's rgb2hed and hed2rgb use them. NumPy, not
# tf.constant: a tensor made at import would start TensorFlow's runtime before a multi-worker
# strategy can set it up.
HED_FROM_RGB = hed_from_rgb.astype(np.float32)
RGB_FROM_HED = rgb_from_hed.astype(np.float32)


def _geometry(image, mask, seed, square):
    """Flips and (for square images) 90-degree turns: exact, so the mask stays pixel-true."""
    both = tf.concat([image, mask], axis=-1)
    both = tf.image.stateless_random_flip_left_right(both, seed)
    both = tf.image.stateless_random_flip_up_down(both, seed + 1)
    if square:
        turns = tf.random.stateless_uniform([], seed + 2, 0, 4, dtype=tf.int32)
        both = tf.image.rot90(both, turns)
    return both[..., :3], both[..., 3:]


def _colour(image, seed, strength, hue):
    """Stain and light variation: brightness, contrast, a gain per colour channel (a camera's
    white balance) and, with hue, saturation and hue too, scaled by strength."""
    x = image / 255.0
    x = tf.image.stateless_random_brightness(x, 0.15 * strength, seed + 3)
    x = tf.image.stateless_random_contrast(x, 1 - 0.3 * strength, 1 + 0.3 * strength, seed + 4)
    if hue:
        x = tf.image.stateless_random_saturation(x, 1 - 0.3 * strength, 1 + 0.3 * strength,
                                                 seed + 5)
        x = tf.image.stateless_random_hue(x, 0.05 * strength, seed + 6)
    x = x * tf.random.stateless_uniform([3], seed + 7, 1 - 0.1 * strength, 1 + 0.1 * strength)
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0


def _stain(image, seed, sigma):
    """Tellez et al. 2019's HED jitter: the image split into its stains' optical densities
    (-ln of the light transmitted, through Ruifrok and Johnston's stain vectors, as skimage's
    rgb2hed did before it rescaled them), each stain scaled by U(1 - sigma, 1 + sigma) and
    shifted by U(-sigma, sigma), and put together again: another lab's stain strengths and
    hues, not a camera's. No jitter gives the image back."""
    density = -tf.math.log(tf.maximum(image / 255.0, 1e-6))
    stains = tf.tensordot(density, HED_FROM_RGB, 1)
    stains = (stains * tf.random.stateless_uniform([3], seed + 8, 1 - sigma, 1 + sigma)
              + tf.random.stateless_uniform([3], seed + 9, -sigma, sigma))
    rgb = tf.exp(-tf.tensordot(stains, RGB_FROM_HED, 1))
    return tf.clip_by_value(rgb, 0.0, 1.0) * 255.0


def _crop(image, mask, seed, size):
    """A size x size window at a random place, the same for the image and its mask."""
    both = tf.concat([tf.cast(image, tf.float32), mask], axis=-1)
    both = tf.image.stateless_random_crop(both, [size, size, both.shape[-1]], seed + 10)
    return both[..., :3], both[..., 3:]


def augment(ds, seed, flips, colour_strength, square, stain_sigma=0.0, crop=None, hue=True):
    """Maps (image, mask) to augmented (float image 0-255, mask); new draws every epoch.
    crop: the side of a random square window taken first (images at least that large);
    hue: False keeps the colour jitter to light (brightness, contrast, channel gain)."""
    if not flips and colour_strength <= 0 and stain_sigma <= 0 and not crop:
        return ds
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def apply(pair, seed_pair):
        image, mask = pair
        image = tf.cast(image, tf.float32)
        if crop:
            image, mask = _crop(image, mask, seed_pair, crop)
        if flips:
            image, mask = _geometry(image, mask, seed_pair, square)
        if colour_strength > 0:
            image = _colour(image, seed_pair, colour_strength, hue)
        if stain_sigma > 0:
            image = _stain(image, seed_pair, stain_sigma)
        return image, mask

    return tf.data.Dataset.zip((ds, seeds)).map(apply, num_parallel_calls=tf.data.AUTOTUNE)
