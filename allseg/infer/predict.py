"""From images to masks at their own size: shared by evaluation and inference so they agree."""
import cv2
import numpy as np
from keras.utils import Progbar

from allseg.cells.instances import remove_small_components
from allseg.data.images import resize_by, resize_image, resize_probability

THRESHOLD = 0.5  # the [model] threshold key's default
# Images whose tiles are predicted together, at most this many pixels in all: small images share
# batches, while a slide scan still goes alone (each image holds two float32 maps of its size).
TILED_PIXELS = 8 * 2 ** 20
# Neighbouring tiles share this fraction of a tile's side (28 px of 224). Half (the first
# choice) predicted every pixel of a large image four times; an eighth, twice at most and
# 1.3 times on average, with cells cut by a seam still whole (measured by the retired
# 2a30f9a:benchmarks/infer_stages.py --scan; docs/performance.md, "A slide scan").
TILE_OVERLAP = 1 / 8


def predict_probabilities(model, images, tta_flips=False):
    """Foreground (whole-cell) probabilities (N, H, W) at the model's size; with tta_flips, the
    mean over the image and its horizontal, vertical and double flips (each flipped back)."""
    return predict_channels(model, images, tta_flips)[..., 0]


def predict_channels(model, images, tta_flips=False):
    """predict_probabilities for every output channel, (N, H, W, C): the whole cell first, then
    the nucleus for a model that learned both."""
    images = np.asarray(images)
    if not tta_flips:
        return np.asarray(model.predict_on_batch(images))
    total = None
    for axes in ((), (2,), (1,), (1, 2)):  # as is, left-right, up-down, both
        prob = np.flip(np.asarray(model.predict_on_batch(
            np.ascontiguousarray(np.flip(images, axes)))), axes)
        total = prob if total is None else total + prob
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


def needs_tiles(rgb, m, tiled="auto", scale=1.0):
    """Whether an image is predicted tile by tile at its own resolution (once resized by scale)
    rather than resized to the model's input: [infer] tiled = True always, False never (unless
    resampled), "auto" when it is larger than the input."""
    if scale != 1.0 or tiled is True:
        return True
    if tiled is False:
        return False
    return rgb.shape[0] > m.image_height or rgb.shape[1] > m.image_width


def predict_masks(model, rgbs, m, batch_size=None, tiled="auto", scale=1.0, show_tiles=False):
    """Boolean whole-cell masks, each at its own image's size: predict_cells' first channel."""
    return [cells[..., 0] for cells in predict_cells(model, rgbs, m, batch_size, tiled, scale,
                                                     show_tiles)]


def predict_cells(model, rgbs, m, batch_size=None, tiled="auto", scale=1.0, show_tiles=False):
    """Boolean masks (H, W, C), each at its own image's size, for RGB images of any size, using
    the [model] section ``m`` for the input size and the prediction settings: channel 0 the whole
    cells, channel 1 (a model with two classes) their nuclei, kept inside them. Images that
    need_tiles are segmented at their own resolution, tile by tile; the others are resized to
    the model's input and their masks back. scale != 1 (scale.resampling's factor): each image
    resized by it, predicted tile by tile, the probabilities resized back to the image's size;
    min_area counts pixels at the model's scale. show_tiles: a progress bar over the tiles of
    an image too large to share its batch."""
    masks = [None] * len(rgbs)
    whole = [i for i, rgb in enumerate(rgbs) if not needs_tiles(rgb, m, tiled, scale)]
    if whole:
        x = np.stack([resize_image(rgbs[i], m.image_height, m.image_width) for i in whole])
        probs = predict_channels(model, _pad_batch(x, batch_size), m.tta_flips)
        for i, prob in zip(whole, probs):
            masks[i] = _cells(prob, rgbs[i].shape[:2], m.threshold, m.min_area)
    min_area = max(0, round(m.min_area / scale ** 2))
    rest = [i for i, mask in enumerate(masks) if mask is None]
    for group in pixel_groups([rgbs[i] for i in rest], scale):
        indices = [rest[k] for k in group]
        if len(indices) == 1 and scale == 1.0 and _pixels(rgbs[indices[0]]) > TILED_PIXELS:
            # A scan: thresholded strip by strip, never a full-size float map (bounded memory)
            found = predict_mask_in_strips(model, rgbs[indices[0]], m, batch_size, show_tiles)
            masks[indices[0]] = _cells(found, found.shape[:2], None, min_area)
            continue
        probs = predict_tiled_many(model, [resize_by(rgbs[i], scale) for i in indices], m,
                                   batch_size)
        for i, prob in zip(indices, probs):
            masks[i] = _cells(prob, rgbs[i].shape[:2], m.threshold, min_area)
    return masks


def _cells(prob, shape, threshold, min_area):
    """(H, W, C) masks from (h, w, C) probabilities (threshold None: masks already, changed in
    place): each channel brought to shape and thresholded, specks under min_area dropped from
    the cells, and the nuclei kept inside what is left of them."""
    masks = prob if threshold is None else np.empty((*shape, prob.shape[-1]), bool)
    for c in range(prob.shape[-1]):
        channel = prob[..., c] if threshold is None else resize_probability(
            prob[..., c], *shape) > threshold
        masks[..., c] = remove_small_components(channel, min_area) if c == 0 else channel
    if masks.shape[-1] > 1:
        masks[..., 1:] &= masks[..., :1]
    return masks


def _pixels(rgb, scale=1.0):
    return rgb.shape[0] * rgb.shape[1] * scale ** 2


def pixel_groups(rgbs, scale=1.0, limit=TILED_PIXELS):
    """The images' indices in order, in runs of at most limit pixels once resized by scale (an
    image larger than that on its own)."""
    groups, total = [], limit
    for index, rgb in enumerate(rgbs):
        pixels = _pixels(rgb, scale)
        if total + pixels > limit:
            groups.append([])
            total = 0
        groups[-1].append(index)
        total += pixels
    return groups


def tile_starts(length, tile, overlap=None):
    """Tile offsets along one side: neighbours share ``overlap`` pixels (TILE_OVERLAP of a tile
    by default), the last tile flush with the end."""
    if length <= tile:
        return [0]
    overlap = round(tile * TILE_OVERLAP) if overlap is None else overlap
    return list(range(0, length - tile, tile - overlap)) + [length - tile]


def tile_window(height, width, overlap=None):
    """A tile's blending weight: 1 in its middle, falling as sin^2 to near 0 across the
    ``overlap`` pixels at each edge. Two neighbours' ramps sum to 1 where they overlap, so each
    pixel near a seam is a smooth mix of the two tiles and no seam shows; every weight is above
    0, so a pixel that only one tile sees (at the image's edge) keeps that tile's value."""
    def ramp(length):
        edge = max(1, round(length * TILE_OVERLAP) if overlap is None else overlap)
        weight = np.ones(length, np.float32)
        rise = np.sin(np.pi / 2 * (np.arange(min(edge, length)) + 0.5) / edge) ** 2
        weight[:len(rise)] = rise
        weight[length - len(rise):] = np.minimum(weight[length - len(rise):], rise[::-1])
        return weight
    return np.outer(ramp(height), ramp(width)).astype(np.float32)


def _pad_to_tile(rgb, th, tw):
    """The image mirror-padded at its bottom and right to at least one tile (itself if it is)."""
    if rgb.shape[0] >= th and rgb.shape[1] >= tw:
        return rgb
    return cv2.copyMakeBorder(rgb, 0, max(0, th - rgb.shape[0]), 0, max(0, tw - rgb.shape[1]),
                              cv2.BORDER_REFLECT_101)


def tile_boxes(image, th, tw):
    """(y, x) of every tile of a (padded) image, row by row."""
    return [(y, x) for y in tile_starts(image.shape[0], th) for x in tile_starts(image.shape[1], tw)]


def predict_tiles(model, images, boxes, m, batch_size=None):
    """(box, probabilities (th, tw, C)) for each box (i, y, x): the model-size tile of images[i] at (y, x),
    predicted in full batches, in the order given."""
    th, tw = m.image_height, m.image_width
    step = batch_size or 1
    for start in range(0, len(boxes), step):
        chunk = boxes[start:start + step]
        tiles = np.stack([images[i][y:y + th, x:x + tw] for i, y, x in chunk])
        yield from zip(chunk, predict_channels(model, _pad_batch(tiles, batch_size),
                                               m.tta_flips))


def predict_tiled(model, rgb, m, batch_size=None):
    """Foreground probability at the image's own size from overlapping model-size tiles,
    blended with tile_window; an image smaller than a tile is mirror-padded first."""
    return predict_tiled_many(model, [rgb], m, batch_size)[0][..., 0]


def predict_tiled_many(model, rgbs, m, batch_size=None):
    """Every channel's probabilities (H, W, C) for several images, as predict_tiled blends
    them, their tiles predicted together in full batches (a folder of small images then costs
    one model call a batch, not one an image)."""
    th, tw = m.image_height, m.image_width
    padded = [_pad_to_tile(rgb, th, tw) for rgb in rgbs]
    boxes = [(i, y, x) for i, image in enumerate(padded) for y, x in tile_boxes(image, th, tw)]
    window = tile_window(th, tw)[..., None]
    totals, weights = [None] * len(padded), [np.zeros(image.shape[:2] + (1,), np.float32)
                                             for image in padded]
    for (i, y, x), prob in predict_tiles(model, padded, boxes, m, batch_size):
        if totals[i] is None:
            totals[i] = np.zeros(padded[i].shape[:2] + prob.shape[-1:], np.float32)
        totals[i][y:y + th, x:x + tw] += prob * window
        weights[i][y:y + th, x:x + tw] += window
    return [(total / weight)[:rgb.shape[0], :rgb.shape[1]]
            for total, weight, rgb in zip(totals, weights, rgbs)]


def predict_mask_in_strips(model, rgb, m, batch_size=None, show_tiles=False):
    """The masks (H, W, C) of predict_tiled_many's probabilities > m.threshold, for an image of
    any size in memory for one strip of tiles: tiles are blended into a buffer one tile high,
    and the rows that no later tile reaches are thresholded and leave it. A 116 MP scan then
    holds its RGB image, its boolean masks and a few MB of floats, not 1 GB of them."""
    th, tw = m.image_height, m.image_width
    image = _pad_to_tile(rgb, th, tw)
    height, width = rgb.shape[:2]
    boxes = [(0, y, x) for y, x in tile_boxes(image, th, tw)]
    window = tile_window(th, tw)[..., None]
    mask, total = None, None
    top = 0  # the image row of the buffers' first row
    weight = np.zeros((th, image.shape[1], 1), np.float32)
    progress = Progbar(len(boxes), unit_name="tile") if show_tiles else None

    def finish(rows):  # rows [top, top + rows) are final: threshold them into the mask
        done = slice(top, min(top + rows, height))
        mask[done] = (total[:rows] / weight[:rows])[:done.stop - done.start, :width] > m.threshold

    def shifted(buffer, rows):  # the buffer moved up by rows, zeros below
        return np.concatenate([buffer[rows:], np.zeros_like(buffer[:rows])])

    for count, ((_, y, x), prob) in enumerate(predict_tiles(model, [image], boxes, m,
                                                            batch_size), start=1):
        if total is None:
            total = np.zeros(weight.shape[:2] + prob.shape[-1:], np.float32)
            mask = np.zeros((height, width, prob.shape[-1]), bool)
        if y > top:  # a new row of tiles: no tile starts above y any more
            finish(y - top)
            total, weight, top = shifted(total, y - top), shifted(weight, y - top), y
        total[:, x:x + tw] += prob * window
        weight[:, x:x + tw] += window
        if progress is not None and (count % (batch_size or 1) == 0 or count == len(boxes)):
            progress.update(count)
    finish(th)
    return mask
