"""Fine-tuning: a trained model (or a new one) fitted to a few of a lab's outlines through the one
training loop (allseg/train/training.py): random crops at the scale where the lab's cells are
about TRAIN_CELL_PX wide, the project's augmentation, a cosine schedule, the loop's logs, best
model and resume point. Which model is kept is decided above, on held-out images
(allseg/evaluate/fine_tune.py)."""
import copy
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import keras
import numpy as np

from allseg.cells.instances import median_cell_diameter, median_diameter
from allseg.core.config import load_config
from allseg.core.errors import UserError
from allseg.core.files import sha256_file
from allseg.data.lab_samples import crop_dataset, read_samples, split_held_out, with_classes
from allseg.model.architecture import build_unet
from allseg.model.shipped import SHIPPED_MODEL, checked_model_file
from allseg.model.unet import compile_for_training
from allseg.train.training import TrainingData, run_training

STEPS_PER_EPOCH = 25  # an epoch: this many batches of random crops, however few the images
# The lab's images are resized so that their cells are about this wide to train and predict
# (docs/fine-tuning.md says what other sizes gave)
TRAIN_CELL_PX = 70
TRAINING_DIR = "training"  # in the output folder: the loop's log, plots, checkpoints


@dataclass(frozen=True)
class FineTuneSettings:
    epochs: int = 60
    batch_size: int = 4
    learning_rate: float = 1e-3
    scale: float | None = None  # the lab's images resized by this to train and to predict;
                                # None: so that their cells are TRAIN_CELL_PX wide (never enlarged)
    held_out: float = 0.2       # of the images, at least one, scored and never trained on
    seed: int = 0
    colour: float = 0.5         # augment's colour strength (docs/fine-tuning.md: without it,
                                # 5 crops lost 0.015 whole-cell Dice)
    hue: bool = False           # the colour jitter moves hue and saturation too (else light:
                                # brightness, contrast, channel gain; docs/fine-tuning.md)
    cosine: bool = True         # the learning rate decays to 2% over the run (else constant)
    crop: int | None = 160      # the crops' side in pixels (a multiple of 2**num_layers);
                                # None: the model's input size


@dataclass(frozen=True)
class LabData:
    """A lab's samples as fine-tuning uses them: split, and the scale they train at."""
    train: list
    held_out: list
    classes: int     # 2 where the masks carry nuclei, else 1
    scale: float     # the images resized by this to train and to segment
    diameter: float  # the cells' diameter in px that chose it (0.0: unknown)


def prepare(images_dir, masks_dir, settings, cell_diameter=None, log=print):
    """The lab's images and masks read (masks_dir None: beside the images), a seeded fraction
    held out, and the scale that brings the cells (cell_diameter where the lab gives it, else
    the training masks' median) to TRAIN_CELL_PX, unless the settings fix one."""
    samples = read_samples(images_dir, masks_dir, log)
    classes = with_classes(samples)
    train, held_out = split_held_out(samples, settings.held_out, settings.seed)
    scale, diameter = chosen_scale(settings, train, cell_diameter)
    return LabData(train, held_out, classes, scale, diameter)


def chosen_scale(settings, train, cell_diameter=None):
    """(scale, the cells' diameter in px): the settings' scale, or the one that brings the
    cells (cell_diameter where the lab gives it, else the training masks' median) to
    TRAIN_CELL_PX."""
    diameter = cell_diameter or median_diameter([s.labels for s in train])
    return (settings.scale or training_scale(diameter)), diameter


def model_file(choice):
    """The .keras file --model names (None for "none": from scratch)."""
    return None if choice in (None, "none") else checked_model_file(choice)


def template_config(start):
    """The config whose [model] graph and [infer] cell keys a new model takes: the start
    model's own, or the shipped model's for one trained from scratch."""
    path = (start or SHIPPED_MODEL).with_suffix(".config")
    if not path.is_file():
        raise UserError(f"{start}: no config beside it ({path.name}); fine-tuning needs the "
                        "settings the model was made with")
    return load_config(path)


def start_model(start, cfg, classes, size):
    """The model training starts from, built for size x size crops (a U-Net takes any multiple
    of 2**num_layers): the start file's weights with a head of ``classes`` outputs (a new
    nucleus output begins as a copy of the whole-cell one: a nucleus lies inside its cell), or
    new weights, seeded."""
    keras.utils.set_random_seed(0)
    model = unet_like(cfg, classes, size, size)
    if start is not None:
        copy_weights(keras.models.load_model(start, compile=False), model, start)
    return model


def unet_like(cfg, classes, height, width):
    """A new U-Net of cfg's graph with ``classes`` outputs, for height x width inputs."""
    m = cfg.model
    return build_unet(height, width, m.image_channels, classes, m.base_filters, m.num_layers,
                      m.dropout_rate, m.activation, m.batch_norm, m.stain_normalize)


def at_input_size(model, cfg):
    """The trained model rebuilt for cfg's input size, as inference runs and saves it."""
    m = cfg.model
    sized = unet_like(cfg, m.num_classes, m.image_height, m.image_width)
    sized.set_weights(model.get_weights())
    return sized


def copy_weights(source, target, path):
    """source's weights into target, a graph like it; a one-output head goes into both outputs
    of a two-output one. A start whose graph is not its config's is refused, naming it."""
    have, want = (m.get_layer("mask").get_config()["filters"] for m in (source, target))
    if have not in (want, 1):
        raise UserError(f"{path} has {have} outputs; it can be fine-tuned to {have}, or from 1 "
                        "to 2 (whole cell and nucleus)")
    if len(source.layers) != len(target.layers):
        raise UserError(f"{path}: its graph is not the one its config describes; fine-tune "
                        "from the config it was trained with")
    for old, new in zip(source.layers, target.layers):  # one graph, built in one order
        weights = old.get_weights()
        if old.name == "mask" and have != want:
            weights = [np.concatenate([w, w], -1) for w in weights]
        if [w.shape for w in weights] != [tuple(w.shape) for w in new.weights]:
            raise UserError(f"{path}: layer {old.name} is not the one its config describes; "
                            "fine-tune from the config it was trained with")
        new.set_weights(weights)


def training_scale(diameter):
    """The factor that makes cells of this diameter TRAIN_CELL_PX wide, at most 1."""
    return min(1.0, TRAIN_CELL_PX / diameter) if diameter else 1.0


def fine_tune_config(template, settings, classes, train, scale, output, lab_infer=None):
    """A new config (the template is left as it is): the template's graph with ``classes``
    outputs and flips averaged, the size of cell learned at the training scale with the cell
    keys scaled alike, [train] set for the loop to write into output/training, and the lab's
    [infer] values (cell_diameter, pixel_size_um) from lab_infer."""
    cfg = copy.deepcopy(template)
    m, t, c = cfg.model, cfg.train, cfg.infer
    for key, value in (lab_infer or {}).items():
        setattr(c, key, value)
    # Flips averaged: on the CellaVision learning curve they added whole-cell Dice at every k
    # (docs/fine-tuning.md); tta_flips = False in the written config undoes it
    m.num_classes, m.tta_flips, m.learning_rate = classes, True, settings.learning_rate
    masks = [mask_at(s, scale) for s in train]
    learned = (median_cell_diameter(masks, c.cell_min_area, c.cell_split_depth,
                                    c.cell_split_hole_px) or template.model.cell_diameter_px)
    ratio = learned / template.model.cell_diameter_px if template.model.cell_diameter_px else 1.0
    m.cell_diameter_px = round(learned, 1)
    c.cell_min_area = max(1, round(c.cell_min_area * ratio ** 2))
    c.cell_split_depth = round(c.cell_split_depth * ratio, 2)
    c.cell_split_hole_px = round(c.cell_split_hole_px * ratio ** 2)
    t.epochs, t.patience, t.batch_size, t.seed = (settings.epochs, settings.epochs,
                                                  settings.batch_size, settings.seed)
    t.lr_schedule, t.loss = ("cosine" if settings.cosine else "constant"), "bce_dice"
    t.model_dir = t.eval_dir = str(Path(output) / TRAINING_DIR)
    t.strategy, t.steps_per_execution = "auto", 1
    cfg.template_path = template.path  # the file a written config starts from
    cfg.path = str(Path(output) / TRAINING_DIR / "fine_tune.config")  # named in the loop's messages
    return cfg


def mask_at(sample, scale):
    """The sample's whole-cell mask at the size its image has once resized by scale."""
    height, width = (max(1, round(n * scale)) for n in sample.labels.shape)
    cells = (sample.labels > 0).astype(np.uint8)
    return cv2.resize(cells, (width, height), interpolation=cv2.INTER_NEAREST) > 0


def data_identity(start, train, settings, scale):
    """What the run learns from beyond its config: the start model's bytes, the images and
    masks, the settings and scale; a killed run resumes only on the same."""
    digest = hashlib.sha256(sha256_file(start).encode() if start else b"scratch")
    for sample in train:
        digest.update(sample.name.encode())
        digest.update(sample.rgb.tobytes())
        digest.update(sample.labels.tobytes())
    digest.update(repr((sorted(asdict(settings).items()), scale)).encode())
    return digest.hexdigest()[:16]


def crop_size(settings, cfg):
    """The crops' side: the settings' (the model's input size without one), rounded down to a
    multiple of 2**num_layers, which a U-Net of that depth takes."""
    levels = 2 ** cfg.model.num_layers
    return max(levels, (settings.crop or cfg.model.image_height) // levels * levels)


def fine_tune_model(start, cfg, train, settings, scale):
    """The one loop's result (its "model" the fine-tuned model): the start model (None: a new
    one of cfg's graph) fitted to the train samples at scale, as cfg (fine_tune_config) says."""
    size = crop_size(settings, cfg)
    classes = cfg.model.num_classes
    keras.utils.set_random_seed(settings.seed)
    data = TrainingData(
        crop_dataset(train, classes, size, settings.batch_size, scale, settings.seed,
                     settings.colour, settings.hue),
        None, STEPS_PER_EPOCH, data_identity(start, train, settings, scale))
    print(f"Training {settings.epochs} epochs of {STEPS_PER_EPOCH} batches of "
          f"{settings.batch_size} random {size} px crops (learning rate "
          f"{settings.learning_rate:g}, images resized by {scale:.3g})")
    result = run_training(cfg, data, lambda rate: compile_for_training(
        start_model(start, cfg, classes, size), cfg, rate))
    return {**result, "model": at_input_size(result["model"], cfg)}
