"""From images to masks at their own size: shared by evaluation and inference so they agree."""
import cv2
import numpy as np

from allseg.cells.instances import remove_small_components
from allseg.data.images import resize_image, resize_probability

THRESHOLD = 0.5  # the [model] threshold key's default
# Images whose tiles are predicted together, at most this many pixels in all: small images share
# batches, while a slide scan still goes alone (each image holds two float32 maps of its size).
TILED_PIXELS = 8 * 2 ** 20


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


def to_mask(prob, height, width, min_area=0, threshold=THRESHOLD):
    """A probability map at the model's size -> a boolean mask at (height, width)."""
    mask = resize_probability(prob, height, width) > threshold
    return remove_small_components(mask, min_area)


def _pad_batch(x, batch_size):
    """A batch shorter than batch_size padded with blank images, so the compiled graph is
    reused instead of traced (and, with XLA, compiled) again for a new shape."""
    if batch_size and len(x) < batch_size:
        x = np.concatenate([x, np.zeros((batch_size - len(x), *x.shape[1:]), x.dtype)])
    return x


def predict_masks(model, rgbs, m, batch_size=None, tiled=False, scale=1.0):
    """Boolean masks, each at its own image's size, for RGB images of any size, using the
    [model] section ``m`` for the input size and the prediction settings. tiled=True segments
    images larger than the model's input at their own resolution, tile by tile. scale != 1
    (scale.resampling's factor): each image resized by it, predicted tile by tile, the
    probabilities resized back to the image's size; min_area counts pixels at the model's scale."""
    if tiled or scale != 1.0:
        probs = []
        for group in pixel_groups(rgbs, scale):
            probs += predict_tiled_many(model, [resize_by(rgb, scale) for rgb in group], m,
                                        batch_size)
        min_area = round(m.min_area / scale ** 2)
        return [remove_small_components(resize_probability(prob, *rgb.shape[:2]) > m.threshold,
                                        min_area) for rgb, prob in zip(rgbs, probs)]
    x = np.stack([resize_image(rgb, m.image_height, m.image_width) for rgb in rgbs])
    probs = predict_probabilities(model, _pad_batch(x, batch_size), m.tta_flips)
    return [to_mask(prob, *rgb.shape[:2], m.min_area, m.threshold) for rgb, prob in zip(rgbs, probs)]


def pixel_groups(rgbs, scale=1.0, limit=TILED_PIXELS):
    """The images in order, in runs of at most limit pixels once resized by scale (an image
    larger than that on its own)."""
    groups, total = [], limit
    for rgb in rgbs:
        pixels = rgb.shape[0] * rgb.shape[1] * scale ** 2
        if total + pixels > limit:
            groups.append([])
            total = 0
        groups[-1].append(rgb)
        total += pixels
    return groups


def resize_by(rgb, scale):
    """The image resized by scale (at least 1 px a side); itself at scale 1."""
    height, width = rgb.shape[:2]
    return resize_image(rgb, max(1, round(height * scale)), max(1, round(width * scale)))


def tile_starts(length, tile):
    """Tile offsets along one side: half-overlapping, the last one flush with the end."""
    if length <= tile:
        return [0]
    return list(range(0, length - tile, tile // 2)) + [length - tile]


def tile_window(height, width):
    """A smooth bump over a tile, small but non-zero at its edges: where tiles overlap, each
    pixel is mostly decided by the tile that sees it nearest its centre, so no seams show."""
    wy, wx = np.hanning(height + 2)[1:-1], np.hanning(width + 2)[1:-1]
    return np.outer(wy, wx).astype(np.float32)


def predict_tiled(model, rgb, m, batch_size=None):
    """Foreground probability at the image's own size from overlapping model-size tiles,
    blended with tile_window; an image smaller than a tile is mirror-padded first."""
    return predict_tiled_many(model, [rgb], m, batch_size)[0]


def predict_tiled_many(model, rgbs, m, batch_size=None):
    """predict_tiled for several images, their tiles predicted together in full batches (a
    folder of small images then costs one model call a batch, not one an image)."""
    th, tw = m.image_height, m.image_width
    padded = [cv2.copyMakeBorder(rgb, 0, max(0, th - rgb.shape[0]), 0, max(0, tw - rgb.shape[1]),
                                 cv2.BORDER_REFLECT_101) for rgb in rgbs]
    boxes = [(i, y, x) for i, image in enumerate(padded)
             for y in tile_starts(image.shape[0], th) for x in tile_starts(image.shape[1], tw)]
    window = tile_window(th, tw)
    totals = [np.zeros(image.shape[:2], np.float32) for image in padded]
    weights = [np.zeros(image.shape[:2], np.float32) for image in padded]
    step = batch_size or 1
    for start in range(0, len(boxes), step):
        chunk = boxes[start:start + step]
        tiles = np.stack([padded[i][y:y + th, x:x + tw] for i, y, x in chunk])
        probs = predict_probabilities(model, _pad_batch(tiles, batch_size), m.tta_flips)
        for (i, y, x), prob in zip(chunk, probs):
            totals[i][y:y + th, x:x + tw] += prob * window
            weights[i][y:y + th, x:x + tw] += window
    return [(total / weight)[:rgb.shape[0], :rgb.shape[1]]
            for total, weight, rgb in zip(totals, weights, rgbs)]
