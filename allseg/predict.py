"""From images to masks at their own size: shared by evaluation and inference so they agree."""
import cv2
import numpy as np

from allseg.images import resize_image, resize_probability

THRESHOLD = 0.5


def predict_probabilities(model, images, tta_flips=False):
    """Foreground probabilities (N, H, W) at the model's size; with tta_flips, the mean over the
    image and its horizontal, vertical and double flips (each flipped back)."""
    images = np.asarray(images)
    if not tta_flips:
        return model.predict_on_batch(images)[..., 0]
    total = np.zeros(images.shape[:3], np.float32)
    for axes in ((), (2,), (1,), (1, 2)):  # as is, left-right, up-down, both
        prob = model.predict_on_batch(np.ascontiguousarray(np.flip(images, axes)))[..., 0]
        total += np.flip(prob, axes)
    return total / 4


def remove_small_components(mask, min_area):
    """Drops connected foreground regions smaller than min_area pixels (8-connected)."""
    if min_area <= 1 or not mask.any():
        return mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def to_mask(prob, height, width, min_area=0):
    """A probability map at the model's size -> a boolean mask at (height, width)."""
    mask = resize_probability(prob, height, width) > THRESHOLD
    return remove_small_components(mask, min_area)


def predict_masks(model, rgbs, m, batch_size=None):
    """Boolean masks, each at its own image's size, for RGB images of any size, using the
    [model] section ``m`` for the input size and the prediction settings. A batch shorter than
    batch_size is padded to it, so the compiled graph is reused instead of traced again."""
    x = np.stack([resize_image(rgb, m.image_height, m.image_width) for rgb in rgbs])
    if batch_size and len(x) < batch_size:
        x = np.concatenate([x, np.zeros((batch_size - len(x), *x.shape[1:]), x.dtype)])
    probs = predict_probabilities(model, x, m.tta_flips)
    return [to_mask(prob, *rgb.shape[:2], min_area=m.min_area) for rgb, prob in zip(rgbs, probs)]
