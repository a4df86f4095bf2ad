"""A lab's outlined images as training samples: read once into memory, split into images to train
on and images held out, and streamed as random crops at the training scale through the project's
one augmentation (allseg/data/augment.py)."""
from dataclasses import dataclass

import cv2
import numpy as np
import tensorflow as tf

from allseg.core.errors import DataError, UserError
from allseg.data.augment import augment
from allseg.data.images import read_rgb, resize_by
from allseg.data.lab_masks import read_lab_masks, summary_line


@dataclass(frozen=True, eq=False)
class LabSample:
    name: str
    rgb: np.ndarray             # uint8, at the image's own size
    labels: np.ndarray          # int32 cells
    nucleus: np.ndarray | None  # bool, or None where the masks carry no nuclei


def read_samples(images_dir, masks_dir=None, log=print):
    """Every image of the folder with its cells; masks_dir None: the masks sit beside the images
    (Cellpose's layout). Masks without a single cell give nothing to learn: refused."""
    lab = read_lab_masks(images_dir, masks_dir)
    log(summary_line(lab))
    if not any(m.cells for m in lab):
        raise DataError(f"{masks_dir or images_dir}: none of the {len(lab)} masks holds a cell, "
                        "so there is nothing to learn; outline the cells of a few images")
    return [LabSample(m.image.name, read_rgb(m.image), m.labels, m.nucleus) for m in lab]


def split_held_out(samples, fraction, seed):
    """(train, held out): a seeded fraction of the images, at least one, held out; the images
    to train on include at least one with cells."""
    if len(samples) < 2:
        raise UserError(f"{len(samples)} image: fine-tuning needs at least 2 (one to train on, "
                        "one to check the result on)")
    order = np.random.default_rng(seed).permutation(len(samples))
    held = max(1, round(fraction * len(samples)))
    train = [samples[i] for i in sorted(order[held:])]
    if not any(s.labels.any() for s in train):
        raise DataError("every image with cells was held out to check the result, so none is "
                        "left to learn from; outline the cells of a few more images")
    return train, [samples[i] for i in sorted(order[:held])]


def with_classes(samples):
    """2 (whole cell and nucleus) when any sample's masks carry nuclei, else 1."""
    return 2 if any(s.nucleus is not None for s in samples) else 1


def targets(sample, classes):
    """(H, W, classes) float32: whole cell, and the nucleus for a two-class model."""
    planes = [sample.labels > 0]
    if classes == 2:
        planes.append(sample.nucleus if sample.nucleus is not None else np.zeros_like(planes[0]))
    return np.stack(planes, axis=-1).astype(np.float32)


def at_scale(sample, classes, scale, size):
    """(uint8 image, float32 0/1 targets) resized by scale, mirror-padded to at least size."""
    rgb = resize_by(sample.rgb, scale)
    y = cv2.resize(targets(sample, classes), rgb.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    y = (y.reshape(*rgb.shape[:2], classes) > 0.5).astype(np.float32)
    pad = [(0, max(0, size - n)) for n in rgb.shape[:2]] + [(0, 0)]
    return np.pad(rgb, pad, "reflect"), np.pad(y, pad, "reflect")


def crop_dataset(samples, classes, size, batch_size, scale, seed, colour, hue=True):
    """Endless, seeded batches of size x size crops of the samples at the training scale, each
    turned, maybe mirrored and its colour jittered (augment's colour strength and hue)."""
    pairs = [at_scale(s, classes, scale, size) for s in samples]

    def draws():  # which image each crop comes from: seeded, so a resumed run replays it
        rng = np.random.default_rng(seed)
        while True:
            yield pairs[rng.integers(len(pairs))]

    ds = tf.data.Dataset.from_generator(draws, output_signature=(
        tf.TensorSpec((None, None, 3), tf.uint8), tf.TensorSpec((None, None, classes), tf.float32)))
    ds = augment(ds, seed, flips=True, colour_strength=colour, square=True, crop=size,
                 hue=hue)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
