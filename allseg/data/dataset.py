"""Original/segmented image pairs, checked up front, streamed through tf.data."""
import numpy as np
import tensorflow as tf

from allseg.cells.instances import remove_small_components
from allseg.core.errors import DataError, UserError, first_few
from allseg.data.augment import augment
from allseg.data.images import read_rgb, resize_image, resize_mask
from allseg.data.lab_masks import read_cell_and_nucleus
from allseg.data.pairing import check_readable, find_category_pairs
from allseg.data.truth_audit import training_truth
from allseg.data.weight_map import border_weights


def load_pair(image_path, mask_path, height, width, truth_min_area=0, truth="mask", classes=1):
    """(uint8 HxWx3 image, float32 HxWxclasses mask) at the model's size; with truth_min_area,
    the mask's regions under that many pixels (the colour threshold's specks) are left out; truth
    says what the mask is made of (Pair.truth). classes = 2: whole cells and their nuclei, from
    a mask that carries both (lab_masks.read_cell_and_nucleus)."""
    rgb = read_rgb(image_path)
    image = resize_image(rgb, height, width)
    if classes == 2:
        planes = read_cell_and_nucleus(image_path, mask_path, rgb.shape[:2])
        cell, nucleus = (resize_mask(planes[..., i], height, width) for i in range(2))
    else:
        cell, nucleus = resize_mask(training_truth(rgb, mask_path, truth), height, width), None
    if truth_min_area:
        cell = remove_small_components(cell, truth_min_area)
    planes = [cell] if nucleus is None else [cell, nucleus & cell]
    return image, np.stack(planes, axis=-1).astype(np.float32)


def load_weighted_pair(image_path, mask_path, height, width, border, truth_min_area=0,
                       truth="mask"):
    """(image, mask and border weight map as two channels); border = border_weights' arguments
    after the mask (w0, sigma, min_area, contact_w0, split_depth, split_hole_px)."""
    image, mask = load_pair(image_path, mask_path, height, width, truth_min_area, truth)
    weights = border_weights(mask[..., 0] > 0.5, *border)
    return image, np.concatenate([mask, weights[..., None]], axis=-1)


def pair_dataset(pairs, height, width, batch_size, shuffle_seed=None, cache=False,
                 flips=False, colour=0.0, repeat=False, border=None, truth_min_area=0,
                 stain=0.0, classes=1):
    """Batches of (image, mask); files are read lazily, so memory stays flat without cache.
    With shuffle_seed set (training), order, flips and colour jitter are drawn from that seed and
    change every epoch; repeat=True makes the stream endless (one epoch after another).
    border = (w0, sigma, min_area, contact_w0, split_depth, split_hole_px) adds the border weight
    map as per-pixel sample weights:
    batches of (image, mask, weights); it rides along as a second mask channel until then, so
    flips and turns move it with the mask. truth_min_area > 0 trains on the truth without its
    regions under that area. classes = 2: masks of whole cells and nuclei (no border map)."""
    images = [str(p.image) for p in pairs]
    masks = [str(p.mask) for p in pairs]
    truths = [p.truth for p in pairs]
    ds = tf.data.Dataset.from_tensor_slices((images, masks, truths))
    if shuffle_seed is not None and not cache:
        ds = ds.shuffle(len(pairs), seed=shuffle_seed, reshuffle_each_iteration=True)

    def read(i, m, t):
        if border:
            return load_weighted_pair(i.decode(), m.decode(), height, width, border,
                                      truth_min_area, t.decode())
        return load_pair(i.decode(), m.decode(), height, width, truth_min_area, t.decode(),
                         classes)

    def load(image_path, mask_path, truth):
        image, mask = tf.numpy_function(read, [image_path, mask_path, truth],
                                        [tf.uint8, tf.float32], stateful=False)
        image.set_shape((height, width, 3))
        mask.set_shape((height, width, 2 if border else classes))
        return image, mask

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
        if shuffle_seed is not None:
            ds = ds.shuffle(len(pairs), seed=shuffle_seed, reshuffle_each_iteration=True)
    if shuffle_seed is not None:
        ds = augment(ds, shuffle_seed, flips, colour, square=height == width, stain_sigma=stain)
    # float32 from here on (augment already gives it): Keras averages a first batch across
    # workers under tf.distribute, which integer images cannot go through.
    if border:
        ds = ds.map(lambda image, mask: (tf.cast(image, tf.float32), mask[..., :1], mask[..., 1]))
    else:
        ds = ds.map(lambda image, mask: (tf.cast(image, tf.float32), mask))
    ds = ds.batch(batch_size)
    return (ds.repeat() if repeat else ds).prefetch(tf.data.AUTOTUNE)


def check_nuclei(pairs):
    """check_readable for a model of whole cells and nuclei: every mask reads, has its image's
    size and carries nuclei, or the run stops now, naming the files."""
    problems = []
    for pair in pairs:
        try:
            read_cell_and_nucleus(pair.image, pair.mask)
        except UserError as exc:
            problems.append(str(exc))
    if problems:
        raise DataError(f"{len(problems)} unusable file(s): {first_few(problems, 3)}")


class ALLDataset:
    """The pairs under ``<image_datapath>/<category>`` and ``<mask_datapath>/<category>``, for
    each category the config names."""

    def __init__(self, image_datapath, mask_datapath, category, height, width, classes=1):
        self.height, self.width, self.classes = height, width, classes
        self.pairs = find_category_pairs(image_datapath, mask_datapath, category)
        (check_nuclei if classes == 2 else check_readable)(self.pairs)

    @classmethod
    def from_config(cls, cfg, section):
        part = getattr(cfg, section)
        return cls(part.image_datapath, part.mask_datapath, part.category,
                   cfg.model.image_height, cfg.model.image_width, cfg.model.num_classes)

    def __len__(self):
        return len(self.pairs)

    def dataset(self, pairs=None, batch_size=4, shuffle_seed=None, cache=False, flips=False,
                colour=0.0, repeat=False, border=None, truth_min_area=0, stain=0.0):
        return pair_dataset(self.pairs if pairs is None else pairs, self.height, self.width,
                            batch_size, shuffle_seed, cache, flips, colour, repeat, border,
                            truth_min_area, stain, self.classes)
